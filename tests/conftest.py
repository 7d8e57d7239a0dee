"""Fixtures: the database under test (SQLite, or a real PostgreSQL when TEST_DB=postgres),
the SP-API stand-in on loopback, and a workspace driving the real CLI."""

from __future__ import annotations

import itertools
import os
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from caturactl.core import clock
from tests.pg import PostgresServer

DB_KIND = os.environ.get("TEST_DB", "sqlite")
IN_CI = bool(os.environ.get("CI"))
# Fixtures that bring a database, a stand-in or a server: a test using one is an integration test
# (marked so below); the rest is the fast tier, `make check`.
INTEGRATION_FIXTURES = frozenset({
    "database_url", "migrated_database_url", "workspace", "bare_workspace", "standin", "shop_standin",
    "postgres_server",
    "sshd", "sftp_standin", "ftp_server", "ftps_server", "smtp_server"})


# Fixtures that bring a database: these tests run again on PostgreSQL (make test-postgres).
DATABASE_FIXTURES = frozenset({"database_url", "migrated_database_url", "workspace", "bare_workspace",
                               "postgres_server"})


# Files of pure date rules (the clock, DATEV periods, accounting dates, deadlines in the lifecycles):
# marked "dates", they run again in the PostgreSQL tier, whose machine clock stands elsewhere.
DATE_RULE_FILES = frozenset({"test_clock.py", "test_datev.py", "test_accounting.py", "test_states.py"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if item.path.name in DATE_RULE_FILES:
            item.add_marker(pytest.mark.dates)
        if INTEGRATION_FIXTURES & fixtures:
            item.add_marker(pytest.mark.integration)
        if DATABASE_FIXTURES & fixtures:
            item.add_marker(pytest.mark.database)
    # The slow tests first (a stable sort keeps the rest in order): pytest-xdist hands tests out in
    # this order, so the long races start at once beside the short tests instead of ending the run
    # alone on one worker while the other core idles.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
_counter = itertools.count()


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    # python-amazon-sp-api lets this variable override the marketplace we pass (and reach the real
    # Amazon); our own variables must not leak in from the developer's shell.
    for name in list(os.environ):
        if name == "SP_API_DEFAULT_MARKETPLACE" or (name.startswith("CATURACTL_") and name not in
                                                    ("TEST_DB", "TEST_PG_BIN")):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _app_clock():
    """Each test starts on the system clock; a stand-in or the test sets another, and it goes
    back afterwards (with the CATURACTL_CLOCK it exported for child processes)."""
    clock.install(None)
    yield
    clock.install(None)
    os.environ.pop(clock.ENV, None)


@pytest.fixture(scope="session")
def postgres_server():
    server = PostgresServer()
    if not server.available:
        if IN_CI:
            pytest.fail("PostgreSQL (initdb/pg_ctl) is not installed: CI must test on a real PostgreSQL")
        pytest.skip("PostgreSQL is not installed here (CI installs it)")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def database_url(request, tmp_path):
    """A fresh, empty database of the kind under test, dropped afterwards."""
    if DB_KIND == "sqlite":
        yield f"sqlite:///{tmp_path / 'caturactl.db'}"
        return
    yield from _pg_database(request.getfixturevalue("postgres_server"))


@pytest.fixture(scope="session")
def migrated_template(request, tmp_path_factory):
    """One database migrated to head per test session: SQLite a file to copy, PostgreSQL a
    template database (CREATE DATABASE ... TEMPLATE). Migrating once instead of per test."""
    from caturactl.migrations.apply import upgrade
    if DB_KIND == "sqlite":
        path = tmp_path_factory.mktemp("template") / "caturactl.db"
        engine = create_engine(f"sqlite:///{path}")
        upgrade(engine)
        engine.dispose()
        yield path
        return
    server = request.getfixturevalue("postgres_server")
    name = f"template_{os.getpid()}"
    admin = create_engine(server.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(server.url(name))
    upgrade(engine)
    engine.dispose()  # a template must have no connections when it is copied
    yield name
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def migrated_database_url(request, tmp_path, migrated_template):
    """A fresh database of the kind under test, already migrated to head (a copy of the
    session's template), dropped afterwards."""
    if DB_KIND == "sqlite":
        target = tmp_path / "caturactl.db"
        shutil.copyfile(migrated_template, target)
        yield f"sqlite:///{target}"
        return
    yield from _pg_database(request.getfixturevalue("postgres_server"), template=migrated_template)


def _pg_database(server, template: str | None = None):
    """A new database on the test server (a copy of ``template`` when given), its URL yielded,
    dropped afterwards."""
    name = f"t{os.getpid()}_{next(_counter)}"
    admin = create_engine(server.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    yield server.url(name)
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def standin():
    """The SP-API stand-in; its clock is the app's clock for the test (one clock, as in the demo)."""
    from standins.amazon import AmazonStandin
    s = AmazonStandin(orders=250, seed=11, day="2026-11-24", rate_scale=500.0).start()
    clock.install(s.clock)
    yield s
    s.stop()


@pytest.fixture
def shop_standin(request):
    """The Shopware Admin API stand-in; on the Amazon stand-in's clock when a test has both, else
    its own clock is the app's clock for the test."""
    from standins.shopware import ShopwareStandin
    amazon = request.getfixturevalue("standin") if "standin" in request.fixturenames else None
    s = ShopwareStandin(orders=120, seed=7, day="2026-11-24", clock=amazon.clock if amazon else None).start()
    if amazon is None:
        clock.install(s.clock)
    yield s
    s.stop()


@dataclass
class Result:
    code: int
    out: str
    err: str


class Workspace:
    """A merchant's folder: caturactl.toml + database, pointed at the stand-in."""

    def __init__(self, path: Path, database_url: str, standin, capsys, monkeypatch):
        self.path, self.database_url, self.standin = path, database_url, standin
        self._capsys, self._mp = capsys, monkeypatch
        if standin is not None:
            clock.install(standin.clock)  # caturactl and "Amazon" read one clock
        self.config = path / "caturactl.toml"
        self.write_config()
        monkeypatch.setenv("CATURACTL_AMAZON_CLIENT_SECRET", "standin-secret")
        monkeypatch.setenv("CATURACTL_AMAZON_REFRESH_TOKEN", "standin-refresh")
        monkeypatch.chdir(path)

    def write_config(self, amazon_extra: str = "", extra: str = "", rate_scale: float | None = None,
                     company: str = '[company]\nname = "Test Handel GmbH"\n') -> None:
        s = self.standin
        rate = rate_scale if rate_scale is not None else (s.rate_scale if s else 1.0)
        self.config.write_text(textwrap.dedent(company).strip() + "\n" + textwrap.dedent(f"""\
            [database]
            url = "{self.database_url}"
            [amazon]
            endpoint = "{s.url if s else 'http://127.0.0.1:9'}"
            lwa_url = "{s.lwa_url if s else 'http://127.0.0.1:9/auth/o2/token'}"
            client_id = "standin-client"
            marketplaces = ["DE", "FR", "IT", "ES"]
            first_import_days = 3
            rate_scale = {rate}
            max_retries = 4
            backoff_seconds = 0.01
            backoff_max_seconds = 0.05
            timeout_seconds = 5
            {amazon_extra}
            {extra}
            """), encoding="utf-8")

    def run(self, *args: str) -> Result:
        from caturactl.cli import main
        self._capsys.readouterr()
        code = main(list(args))
        captured = self._capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def ok(self, *args: str) -> str:
        r = self.run(*args)
        assert r.code == 0, f"caturactl {' '.join(args)} exited {r.code}: {r.err}{r.out}"
        return r.out

    def app(self):
        from caturactl.app import App
        from caturactl.config import load
        return App(load(self.config))

    def load_catalogue(self) -> None:
        (self.path / "products.csv").write_text(self.standin.catalogue_csv(), encoding="utf-8")
        self.ok("products", "import", "products.csv")


@pytest.fixture
def workspace(tmp_path, migrated_database_url, standin, capsys, monkeypatch):
    """A merchant's folder on a database migrated to head (tests of the migrations themselves
    use ``database_url``, an empty one)."""
    return Workspace(tmp_path, migrated_database_url, standin, capsys, monkeypatch)


@pytest.fixture
def bare_workspace(tmp_path, migrated_database_url, capsys, monkeypatch):
    """A workspace with no stand-in (for commands that need no Amazon)."""
    return Workspace(tmp_path, migrated_database_url, None, capsys, monkeypatch)


# --- transports: real servers on loopback (tests/servers.py, standins/servers.py) ---------------


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """OpenSSH sshd for the whole run; tests use their own folder below ``sshd.root``."""
    from tests.servers import SshdServer
    if not SshdServer.available():
        if IN_CI:
            pytest.fail("OpenSSH sshd is not installed: CI must test SFTP against a real sshd")
        pytest.skip("OpenSSH sshd is not installed here (CI installs openssh-server)")
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("the sshd tests need root: CI runs them as root")
        pytest.skip("the sshd tests need root")
    server = SshdServer(tmp_path_factory.mktemp("sshd-root")).start()
    yield server
    server.close()


@pytest.fixture
def sftp_standin(tmp_path):
    from standins.servers import SftpStandin
    s = SftpStandin(tmp_path / "sftp-root", password="sftp-secret").start()
    yield s
    s.stop()


@pytest.fixture
def ftp_server(tmp_path):
    from standins.servers import FtpStandin
    s = FtpStandin(tmp_path / "ftp-root").start()
    yield s
    s.stop()


@pytest.fixture
def ftps_server(tmp_path):
    from standins.servers import FtpStandin
    s = FtpStandin(tmp_path / "ftps-root", tls=True).start()
    yield s
    s.stop()


@pytest.fixture
def smtp_server():
    from standins.servers import SmtpStandin
    s = SmtpStandin().start()
    yield s
    s.stop()
