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


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    import pytest

    from islandhub.errors import StoreError

    junk = tmp_path / "islandhub.db"
    junk.write_bytes(b"junk, not SQLite\n" * 100)
    with pytest.raises(StoreError) as caught:
        open_store(f"sqlite:///{junk}")
    assert str(caught.value) == f"cannot open the store at sqlite:///{junk}: file is not a database"
    assert caught.value.exit_code == 1


def test_a_new_sqlite_store_has_large_pages_and_an_old_one_keeps_its_own(tmp_path):
    import sqlite3

    from islandhub.store.db import PAGE_SIZE

    new = tmp_path / "new.db"
    open_store(f"sqlite:///{new}").dispose()
    with sqlite3.connect(new) as conn:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE == 16_384
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:  # a store made before: SQLite's 4 KiB pages
        conn.execute("PRAGMA page_size=4096")
        conn.execute("CREATE TABLE kept (x)")
        conn.execute("INSERT INTO kept VALUES (1)")
    store = open_store(f"sqlite:///{old}")
    with store.connect() as conn:
        assert conn.exec_driver_sql("SELECT x FROM kept").scalar_one() == 1
    store.dispose()
    with sqlite3.connect(old) as conn:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == 4096
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
