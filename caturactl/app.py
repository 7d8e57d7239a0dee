"""The composition root: reads the configuration and wires adapters to ports.

Services never import an adapter; the CLI and the job runner ask this module for what they need.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import inspect, select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from caturactl import config as config_mod
from caturactl.config import Config
from caturactl.errors import ConfigError, RemoteError
from caturactl.model import RateBudget
from caturactl.model.base import make_engine, make_sessionmaker


class App:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.engine = make_engine(cfg.database.url)
        self._sessions = make_sessionmaker(self.engine)

    @classmethod
    def from_config(cls, path: str | None = None) -> "App":
        return cls(config_mod.load(path))

    def check_database(self) -> None:
        """Raise a one-line error when the database is unreachable or not migrated."""
        try:
            with self.engine.connect() as conn:
                if not inspect(conn).has_table("orders"):
                    raise ConfigError("the database has no tables yet: run 'caturactl db upgrade'",
                                      where=_safe_url(self.cfg.database.url))
                from caturactl.migrations import head, current
                if current(conn) != head():
                    raise ConfigError("the database schema is not current: run 'caturactl db upgrade'",
                                      where=_safe_url(self.cfg.database.url))
        except (OperationalError, DBAPIError) as exc:
            raise RemoteError(f"cannot open the database: {str(exc.orig).strip().splitlines()[0]}",
                              where=_safe_url(self.cfg.database.url)) from None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session; the caller commits. Rolled back and closed on any error."""
        s = self._sessions()
        try:
            yield s
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def amazon(self, session: Session):
        """The Amazon marketplace adapter, with the rate budgets the last run left behind."""
        from connectors.amazon.client import SpApi
        from connectors.amazon.orders import AmazonMarketplace

        budgets = {b.operation: (b.tokens, b.at) for b in session.scalars(select(RateBudget))}
        return AmazonMarketplace(self.cfg.amazon, SpApi(self.cfg.amazon, budgets=budgets))

    def dispose(self) -> None:
        self.engine.dispose()


def _safe_url(url: str) -> str:
    """The database URL without its password, for messages."""
    from sqlalchemy.engine import make_url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for a message; never leak the raw URL
        return "database.url"


__all__ = ["App"]
