"""caturactl.toml validation, environment overrides and secrets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from caturactl.config import load
from caturactl.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "caturactl.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_the_template_written_by_init_loads(tmp_path):
    from importlib import resources
    p = write(tmp_path, resources.files("caturactl").joinpath("templates", "caturactl.toml").read_text("utf-8"))
    cfg = load(p, environ={})
    assert cfg.database.url == f"sqlite:///{tmp_path / 'caturactl.db'}"  # relative to the file
    assert cfg.amazon.marketplaces == ["A1PA6795UKMFR9"]


def test_bad_toml_names_the_file_and_line(tmp_path):
    p = write(tmp_path, '[amazon]\nclient_id = "x"\nmarketplaces = [DE]\n')
    with pytest.raises(ConfigError) as e:
        load(p, environ={})
    assert "caturactl.toml" in str(e.value) and "line 3" in str(e.value)


@pytest.mark.parametrize("text, where, what", [
    ('[amazon]\nmarketplaces = ["DE", "XX"]\n', "amazon.marketplaces", "unknown Amazon marketplace 'XX'"),
    ('[amazon]\nrate_scale = -1\n', "amazon.rate_scale", "greater than 0"),
    ('[amazon]\nendpoint = "ftp://x"\n', "amazon.endpoint", "not an http(s) URL"),
    ('[triage]\ngift_mesage = true\n', "triage.gift_mesage", "unknown key"),
    ('[display]\ntimezone = "Mars/Olympus"\n', "display.timezone", "unknown time zone"),
])
def test_a_bad_value_names_the_key(tmp_path, text, where, what):
    with pytest.raises(ConfigError) as e:
        load(write(tmp_path, text), environ={})
    assert where in str(e.value) and what in str(e.value)
    assert e.value.exit_code == 78


def test_a_secret_in_the_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="secrets do not belong in caturactl.toml"):
        load(write(tmp_path, '[amazon]\nclient_secret = "s3cret"\n'), environ={})


def test_environment_overrides_single_values(tmp_path):
    p = write(tmp_path, '[amazon]\nmarketplaces = ["DE"]\n')
    cfg = load(p, environ={"CATURACTL_DATABASE_URL": "sqlite:////tmp/other.db",
                           "CATURACTL_AMAZON_MARKETPLACES": "FR,IT",
                           "CATURACTL_AMAZON_CLIENT_SECRET": "from-env",
                           "CATURACTL_MATCHING_ADDRESS_THRESHOLD": "95"})
    assert cfg.database.url == "sqlite:////tmp/other.db"
    assert cfg.amazon.marketplaces == ["A13V1IB3VIYZZH", "APJ6JRA9NG5V4"]
    assert cfg.amazon.client_secret.get_secret_value() == "from-env"
    assert cfg.matching.address_threshold == 95
    assert "from-env" not in repr(cfg) and "from-env" not in str(cfg.amazon)


def test_an_unknown_environment_key_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="CATURACTL_AMAZON_CLIENTID names no key amazon.clientid"):
        load(write(tmp_path, ""), environ={"CATURACTL_AMAZON_CLIENTID": "x"})


def test_secrets_file_must_be_private(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[amazon]\nclient_secret = "file-secret"\nrefresh_token = "file-refresh"\n')
    p = write(tmp_path, '[amazon]\nsecrets_file = "secrets.toml"\n')
    os.chmod(secrets, 0o644)
    with pytest.raises(ConfigError, match="readable by others .mode 0644.; run: chmod 600"):
        load(p, environ={})
    os.chmod(secrets, 0o600)
    cfg = load(p, environ={})
    assert cfg.amazon.client_secret.get_secret_value() == "file-secret"
    assert cfg.amazon.refresh_token.get_secret_value() == "file-refresh"
    # the environment wins over the file
    cfg = load(p, environ={"CATURACTL_AMAZON_REFRESH_TOKEN": "env-refresh"})
    assert cfg.amazon.refresh_token.get_secret_value() == "env-refresh"


def test_missing_config_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="run 'caturactl init'"):
        load(None, environ={})
