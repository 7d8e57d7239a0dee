"""``make demo``: a day of Amazon orders imported into a fresh workspace under ./demo.

Starts the SP-API stand-in in this process, sets up ./demo with ``caturactl init`` and runs the
real ``caturactl`` commands a merchant would, echoing each one. Afterwards the workspace stays
for exploring: ``cd demo && ../.venv/bin/caturactl orders list``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from standins.amazon import AmazonStandin

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo"
PORT = int(os.environ.get("DEMO_AMAZON_PORT", "8600"))
CATURACTL = str(Path(sys.executable).parent / "caturactl")


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def caturactl(*args: str, check: bool = True) -> int:
    print("$ caturactl " + " ".join(args), flush=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATURACTL_") and k != "SP_API_DEFAULT_MARKETPLACE"}
    code = subprocess.run([CATURACTL, *args], cwd=DEMO, env=env).returncode
    if check and code != 0:
        raise SystemExit(f"demo: caturactl {' '.join(args)} exited {code}")
    return code


def configure(standin: AmazonStandin) -> None:
    cfg = DEMO / "caturactl.toml"
    text = cfg.read_text(encoding="utf-8")
    for old, new in {
        'name = "Muster Handel GmbH"': 'name = "Gartenfreude Demo GmbH"',
        'endpoint = "https://sellingpartnerapi-eu.amazon.com"': f'endpoint = "{standin.url}"',
        'lwa_url = "https://api.amazon.com/auth/o2/token"': f'lwa_url = "{standin.lwa_url}"',
        'client_id = ""': f'client_id = "{standin.client_id}"',
        'marketplaces = ["DE"]': 'marketplaces = ["DE", "FR", "IT", "ES"]',
        'secrets_file = ""': 'secrets_file = "secrets.toml"',
    }.items():
        assert old in text, old
        text = text.replace(old, new)
    cfg.write_text(text, encoding="utf-8")
    secrets = DEMO / "secrets.toml"
    secrets.write_text(f'[amazon]\nclient_secret = "{standin.client_secret}"\n'
                       f'refresh_token = "{standin.refresh_token}"\n', encoding="utf-8")
    secrets.chmod(0o600)


def main() -> int:
    day = (datetime.now(timezone.utc) - timedelta(days=1)).date()
    if DEMO.exists():
        shutil.rmtree(DEMO)
    DEMO.mkdir()
    with AmazonStandin(orders=400, seed=1, day=day, port=PORT, rate_scale=100.0) as standin:
        say(f"SP-API stand-in on {standin.url}: 400 Amazon orders placed on {day} (DE/FR/IT/ES)")
        caturactl("init")
        configure(standin)
        (DEMO / "products.csv").write_text(standin.catalogue_csv(), encoding="utf-8")

        say("The catalogue, then the night's import (Orders API 2026-01-01, one call per 100 orders)")
        caturactl("products", "import", "products.csv")
        caturactl("import", "amazon")

        say("Orders that need a person wait as tickets")
        caturactl("tickets", "list")
        held = subprocess.run([CATURACTL, "tickets", "list", "--json"], cwd=DEMO, capture_output=True, text=True)
        tickets = [t for t in json.loads(held.stdout) if "gift_message" in t["reasons"]]
        if tickets:
            say(f"Someone reads the gift message of order {tickets[0]['order']} and releases it")
            caturactl("tickets", "resolve", tickets[0]["ticket"], "--release", "--note", "gift card added by hand")
            caturactl("orders", "show", tickets[0]["order"])

        say("A day and a half later: some buyers cancelled; the next import notices")
        standin.advance(timedelta(hours=36))
        caturactl("import", "amazon")

        say("The cockpit of the imported day")
        caturactl("orders", "list", "--limit", "40")
    print(f"\nThe workspace stays in {DEMO}: cd demo && ../.venv/bin/caturactl orders list --state on_hold")
    print("To import again, start the stand-in: .venv/bin/python -m standins.amazon --port "
          f"{PORT} --orders 400 --seed 1 --day {day}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
