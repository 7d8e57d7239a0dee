"""Where the test PostgreSQL keeps its data (tests/pg.py): in memory when there is room, else the
usual temporary folder, or where TEST_PG_TMPDIR says; and the server the tests run on is there."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests import pg
from tests.conftest import DB_KIND


def test_the_named_folder_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("TEST_PG_TMPDIR", str(tmp_path))
    assert pg.data_parent() == str(tmp_path)


def test_a_missing_or_full_folder_falls_back_to_the_temporary_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("TEST_PG_TMPDIR", raising=False)
    assert pg.data_parent(tmp_path / "no-such-folder") is None
    assert pg.data_parent(tmp_path, needed=1 << 62) is None  # more room than any disk has
    assert pg.data_parent(tmp_path, needed=1) == str(tmp_path)


@pytest.mark.skipif(DB_KIND != "postgres", reason="the server runs in the PostgreSQL tier")
def test_the_servers_data_is_where_data_parent_says(database_url):
    engine = create_engine(database_url)
    try:
        with engine.connect() as c:
            data = Path(c.execute(text("SHOW data_directory")).scalar())
    finally:
        engine.dispose()
    parent = Path(pg.data_parent() or tempfile.gettempdir()).resolve()
    assert data.resolve().is_relative_to(parent), (data, parent)
