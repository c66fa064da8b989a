"""Protection of personal data: masking, audit log, and (later) encryption and erasure."""
