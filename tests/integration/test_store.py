"""The store's schema comes from its migrations, on both backends, and matches the tables."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from islandhub.store import open_store
from islandhub.store.db import _head
from islandhub.store.tables import metadata


def test_migrations_create_every_table_and_match_the_code(store_url):
    store = open_store(store_url)
    with store.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert context.get_current_revision() == _head()
        differences = compare_metadata(context, metadata)
    assert differences == []
    names = set(sa.inspect(store.engine).get_table_names())
    assert set(metadata.tables) <= names


def test_opening_twice_is_a_no_op(store_url):
    open_store(store_url).dispose()
    store = open_store(store_url)
    with store.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == _head()


def test_an_unreachable_store_is_a_clear_error():
    from islandhub.errors import StoreError

    try:
        open_store("postgresql+psycopg://nobody:secret@127.0.0.1:1/none")
    except StoreError as exc:
        assert "cannot open the store at postgresql+psycopg://nobody:***@127.0.0.1:1/none" in str(
            exc
        )
        assert "secret" not in str(exc)
    else:
        raise AssertionError("expected StoreError")
