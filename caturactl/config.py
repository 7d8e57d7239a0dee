"""caturactl.toml: load, validate, override from the environment, and read secrets.

Errors name the file and the key (``caturactl.toml: amazon.marketplaces[2]: ...``). Secrets
(the LWA client secret and refresh token) never come from caturactl.toml: they come from
``CATURACTL_AMAZON_CLIENT_SECRET`` / ``CATURACTL_AMAZON_REFRESH_TOKEN`` or from a secrets file
that only its owner can read.
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from caturactl.errors import ConfigError

CONFIG_NAME = "caturactl.toml"
ENV_PREFIX = "CATURACTL_"
# CATURACTL_* variables that are not configuration values.
ENV_NOT_CONFIG = {"CATURACTL_CONFIG", "CATURACTL_DEBUG"}

# Amazon's EU marketplaces (reference/amazon/README.md §6): country -> (marketplace id, name).
AMAZON_MARKETPLACES: dict[str, tuple[str, str]] = {
    "DE": ("A1PA6795UKMFR9", "Amazon.de"),
    "FR": ("A13V1IB3VIYZZH", "Amazon.fr"),
    "IT": ("APJ6JRA9NG5V4", "Amazon.it"),
    "ES": ("A1RKKUPIHCS9HS", "Amazon.es"),
    "UK": ("A1F83G8C2ARO7P", "Amazon.co.uk"),
    "NL": ("A1805IZSGTT6HS", "Amazon.nl"),
    "PL": ("A1C3SOZRARQ6R3", "Amazon.pl"),
    "SE": ("A2NODRKZP88ZB9", "Amazon.se"),
    "BE": ("AMEN7PMS3EDWL", "Amazon.com.be"),
    "IE": ("A28R8C7NBKEWEA", "Amazon.ie"),
}
_BY_ID = {mid: country for country, (mid, _) in AMAZON_MARKETPLACES.items()}
SECRET_KEYS = {"client_secret", "refresh_token"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class CompanyConfig(_Section):
    name: str = "My Company GmbH"
    street: str = ""
    postal_code: str = ""
    city: str = ""
    country: str = "DE"
    vat_id: str = ""  # USt-IdNr.
    tax_number: str = ""  # Steuernummer
    email: str = ""


class DatabaseConfig(_Section):
    url: str = "sqlite:///caturactl.db"


class AmazonConfig(_Section):
    enabled: bool = True
    endpoint: str = "https://sellingpartnerapi-eu.amazon.com"
    lwa_url: str = "https://api.amazon.com/auth/o2/token"
    client_id: str = ""
    marketplaces: list[str] = Field(default_factory=lambda: ["DE"])
    first_import_days: int = Field(default=7, ge=1, le=90)
    rate_scale: float = Field(default=1.0, gt=0)  # stand-ins and benchmarks only
    max_retries: int = Field(default=6, ge=0, le=20)
    backoff_seconds: float = Field(default=2.0, ge=0)
    backoff_max_seconds: float = Field(default=120.0, ge=0)
    timeout_seconds: float = Field(default=30.0, gt=0)
    secrets_file: str = ""
    client_secret: SecretStr | None = None  # environment or secrets file only
    refresh_token: SecretStr | None = None  # environment or secrets file only

    @field_validator("marketplaces")
    @classmethod
    def _known_marketplaces(cls, values: list[str]) -> list[str]:
        ids = []
        for i, v in enumerate(values):
            key = v.strip().upper() if len(v.strip()) == 2 else v.strip()
            if key in AMAZON_MARKETPLACES:
                ids.append(AMAZON_MARKETPLACES[key][0])
            elif key in _BY_ID:
                ids.append(key)
            else:
                known = ", ".join(AMAZON_MARKETPLACES)
                raise ValueError(f"[{i}] unknown Amazon marketplace {v!r} (use a country code: {known}, or a marketplace id)")
        if not ids:
            raise ValueError("at least one marketplace is needed")
        return sorted(set(ids))

    @field_validator("endpoint", "lwa_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("https://", "http://")):
            raise ValueError(f"not an http(s) URL: {v!r}")
        return v.rstrip("/")


class MatchingConfig(_Section):
    address_threshold: float = Field(default=90.0, ge=50, le=100)  # rapidfuzz score, 0..100
    name_threshold: float = Field(default=85.0, ge=50, le=100)


class TriageConfig(_Section):
    delivery_instructions: bool = True
    gift_message: bool = True
    business_tax_id: bool = True
    unknown_sku: bool = True
    pickup_incomplete: bool = True
    broken_address: bool = True
    cancel_request: bool = True
    max_line_length: int = Field(default=35, ge=10, le=200)
    ship_to_countries: list[str] = Field(
        default_factory=lambda: ["DE", "AT", "FR", "IT", "ES", "NL", "BE", "LU", "PL", "DK", "SE", "CZ"])


class DisplayConfig(_Section):
    timezone: str = "Europe/Berlin"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v


class Config(_Section):
    company: CompanyConfig = Field(default_factory=CompanyConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    amazon: AmazonConfig = Field(default_factory=AmazonConfig)
    matching: MatchingConfig = Field(default_factory=MatchingConfig)
    triage: TriageConfig = Field(default_factory=TriageConfig)
    display: DisplayConfig = Field(default_factory=DisplayConfig)
    path: Path | None = Field(default=None, exclude=True)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.display.timezone)

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()


def find_config(explicit: str | os.PathLike | None = None) -> Path:
    """The config file: ``explicit``, else $CATURACTL_CONFIG, else ./caturactl.toml; raises ConfigError."""
    candidate = explicit or os.environ.get(ENV_PREFIX + "CONFIG") or CONFIG_NAME
    path = Path(candidate).expanduser()
    if not path.is_file():
        raise ConfigError(f"no configuration file at {path} (run 'caturactl init' or pass --config)")
    return path.resolve()


def load(path: str | os.PathLike | None = None, *, environ: dict[str, str] | None = None) -> Config:
    """Read, override and validate the configuration; raises ConfigError naming file and key."""
    cfg_path = find_config(path)
    env = os.environ if environ is None else environ
    try:
        raw = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=cfg_path.name) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", where=str(cfg_path)) from None
    for section, values in raw.items():
        if isinstance(values, dict):
            for key in SECRET_KEYS & set(values):
                raise ConfigError(
                    "secrets do not belong in caturactl.toml in clear; set "
                    f"{ENV_PREFIX}{section.upper()}_{key.upper()} or use {section}.secrets_file (mode 0600)",
                    where=f"{cfg_path.name}: {section}.{key}")
    _apply_env(raw, env)
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        raise ConfigError(msg, where=f"{cfg_path.name}: {loc}") from None
    cfg.path = cfg_path
    _resolve_sqlite_path(cfg)
    _read_secrets_file(cfg, env)
    return cfg


def _apply_env(raw: dict[str, Any], env: dict[str, str]) -> None:
    sections = Config.model_fields
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name in ENV_NOT_CONFIG:
            continue
        rest = name[len(ENV_PREFIX):].lower()
        for section, field in sections.items():
            if section == "path" or not rest.startswith(section + "_"):
                continue
            key = rest[len(section) + 1:]
            model = field.annotation
            if key not in model.model_fields:
                raise ConfigError(f"{name} names no key {section}.{key}", where="environment")
            is_list = "list" in str(model.model_fields[key].annotation)
            raw.setdefault(section, {})[key] = [v.strip() for v in value.split(",")] if is_list else value
            break
        else:
            raise ConfigError(f"{name} names no configuration section", where="environment")


def _resolve_sqlite_path(cfg: Config) -> None:
    url = cfg.database.url
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://" and ":memory:" not in url:
        cfg.database.url = prefix + str((cfg.base_dir / url[len(prefix):]).resolve())


def _read_secrets_file(cfg: Config, env: dict[str, str]) -> None:
    if not cfg.amazon.secrets_file:
        return
    path = Path(cfg.amazon.secrets_file).expanduser()
    if not path.is_absolute():
        path = cfg.base_dir / path
    try:
        st = path.stat()
    except OSError as exc:
        raise ConfigError(f"cannot read secrets file {path}: {exc.strerror}", where="amazon.secrets_file") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"secrets file {path} is readable by others (mode {stat.S_IMODE(st.st_mode):04o}); "
                          f"run: chmod 600 {path}", where="amazon.secrets_file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"secrets file is not readable TOML: {exc}", where=str(path)) from None
    section = data.get("amazon", {})
    unknown = set(section) - SECRET_KEYS
    if unknown or set(data) - {"amazon"}:
        raise ConfigError(f"unknown keys in secrets file: {sorted(unknown or set(data) - {'amazon'})}", where=str(path))
    for key in SECRET_KEYS:
        # The environment wins over the file, so an operator can override one value.
        if key in section and getattr(cfg.amazon, key) is None:
            setattr(cfg.amazon, key, SecretStr(str(section[key])))
