"""The hub's store: tables, migrations, and the connection every step uses."""

from islandhub.store.db import Store, open_store

__all__ = ["Store", "open_store"]
