"""caturactl.toml validation, environment overrides and secrets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from caturactl.config import load
from caturactl.core.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "caturactl.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_the_template_written_by_init_loads(tmp_path):
    from importlib import resources
    p = write(tmp_path, resources.files("templates.config").joinpath("caturactl.toml").read_text("utf-8"))
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


def test_the_invoice_footer_legal_data_follows_the_legal_form(tmp_path):
    cfg = load(write(tmp_path, '[company]\ncity = "Köln"\nlegal_form = "ug"\nregister_court = "Amtsgericht Köln"\n'
                               'register_number = "HRB 4711"\nmanaging_directors = "Erika Muster"\n'), environ={})
    assert cfg.company.legal_form == "UG (haftungsbeschränkt)"
    assert cfg.company.legal_lines() == ("Sitz der Gesellschaft: Köln", "Registergericht: Amtsgericht Köln",
                                         "HRB 4711", "Geschäftsführer: Erika Muster")
    # The older single field still works, and an AG names its Vorstand.
    cfg = load(write(tmp_path, '[company]\ncity = "Bonn"\nregistered_office = "Düsseldorf"\nlegal_form = "AG"\n'
                               'trade_register = "Amtsgericht Düsseldorf, HRB 1"\nmanaging_directors = "A, B"\n'),
               environ={})
    assert cfg.company.legal_lines() == ("Sitz der Gesellschaft: Düsseldorf", "Amtsgericht Düsseldorf, HRB 1",
                                         "Vorstand: A, B")
    with pytest.raises(ConfigError, match="company.legal_form: unknown legal form 'Ltd'"):
        load(write(tmp_path, '[company]\nlegal_form = "Ltd"\n'), environ={})


def test_the_built_in_vat_table_has_every_member_state_with_the_recent_changes():
    from datetime import date
    from decimal import Decimal as D

    from caturactl.config import EU_COUNTRIES, Config
    from caturactl.core.tax import rate
    rates = Config().tax.rates
    on = date(2026, 11, 25)
    assert {r.country for r in rates} == EU_COUNTRIES
    assert all(rate(rates, c, kind, on) > 0 for c in EU_COUNTRIES for kind in ("standard", "reduced"))
    changes = [  # (country, kind, last day of the old rate, old, new)
        ("FI", "standard", date(2024, 8, 31), "24", "25.5"), ("SK", "standard", date(2024, 12, 31), "20", "23"),
        ("EE", "standard", date(2025, 6, 30), "22", "24"), ("RO", "standard", date(2025, 7, 31), "19", "21"),
        ("RO", "reduced", date(2025, 7, 31), "9", "11"), ("FI", "reduced", date(2025, 12, 31), "14", "13.5"),
        ("SE", "reduced", date(2026, 3, 31), "12", "6"), ("SE", "reduced", date(2027, 12, 31), "6", "12"),
        ("DE", "standard", date(2020, 12, 31), "16", "19"),
    ]
    for country, kind, last, old, new in changes:
        assert (rate(rates, country, kind, last), rate(rates, country, kind, date.fromordinal(last.toordinal() + 1))) \
            == (D(old), D(new)), (country, kind)
    assert rate(rates, "DK", "reduced", on) == D(25)  # no reduced rate in Denmark


def test_register_court_and_number_reach_readers_of_the_older_trade_register(tmp_path):
    cfg = load(write(tmp_path, '[company]\nregister_court = "Amtsgericht Köln"\nregister_number = "HRB 4711"\n'),
               environ={})
    assert cfg.company.trade_register == "Amtsgericht Köln, HRB 4711"
    assert cfg.company.legal_lines() == ("Registergericht: Amtsgericht Köln", "HRB 4711")


def test_the_default_marketplace_is_turned_into_its_id_like_a_configured_one():
    from caturactl.config import AmazonConfig
    assert AmazonConfig().marketplaces == ["A1PA6795UKMFR9"]  # Amazon.de, as if "DE" had been written
