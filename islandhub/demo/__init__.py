"""The demo archipelago: a synthetic bilingual municipality and its simulated islands."""
