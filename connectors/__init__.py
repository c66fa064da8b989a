"""Connector kinds: how the hub reaches each island. Registered under `islandhub.connectors`."""
