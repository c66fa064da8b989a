"""Identity resolution: which source records are one resident, and their golden record."""
