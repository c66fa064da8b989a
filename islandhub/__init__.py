"""islandhub: connects a municipality's digital islands into one unified resident record."""

__version__ = "0.1.0"
