"""Where the test PostgreSQL keeps its data (tests/pg.py): in memory when there is room, else the
usual temporary folder, or where TEST_PG_TMPDIR says."""

from __future__ import annotations

from tests import pg


def test_the_named_folder_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("TEST_PG_TMPDIR", str(tmp_path))
    assert pg.data_parent() == str(tmp_path)


def test_a_missing_or_full_memory_folder_falls_back_to_the_temporary_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("TEST_PG_TMPDIR", raising=False)
    monkeypatch.setattr(pg, "RAM_DIR", tmp_path / "no-such-folder")
    assert pg.data_parent() is None
    monkeypatch.setattr(pg, "RAM_DIR", tmp_path)
    monkeypatch.setattr(pg, "RAM_NEEDED", 1 << 62)  # more room than any disk has
    assert pg.data_parent() is None
    monkeypatch.setattr(pg, "RAM_NEEDED", 1)
    assert pg.data_parent() == str(tmp_path)
