"""The app's one clock: its settings, what child processes inherit, and that no code reads the
machine's clock for a business date behind its back."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from caturactl.core import clock
from caturactl.core.clock import FixedClock, RunningClock
from caturactl.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
AT = datetime(2026, 11, 24, 5, 0, tzinfo=timezone.utc)


def test_a_fixed_clock_stands_still_until_moved_and_only_forward():
    c = FixedClock(AT)
    assert c.now() == c.now() == AT
    assert c.advance(timedelta(minutes=5)) == AT + timedelta(minutes=5)
    assert c.set(AT + timedelta(hours=1)) == c.now()
    with pytest.raises(ValueError):
        c.set(AT)
    with pytest.raises(ValueError):
        c.advance(timedelta(seconds=-1))


def test_a_running_clock_runs_its_speed_from_its_epoch():
    c = RunningClock(AT, speed=1000, epoch=time.time() - 2.0)
    shown = (c.now() - AT).total_seconds()
    assert 1999 <= shown < 2000 + 1000  # two real seconds at 1000x, plus the time this line takes
    assert c.real_seconds(3600) == pytest.approx(3.6)


@pytest.mark.parametrize("spec, kind, speed", [
    ("2026-11-24T06:00:00+01:00", FixedClock, 0.0),
    ("2026-11-24T05:00Z", FixedClock, 0.0),
    ("2026-11-24T06:00+01:00 x1000", RunningClock, 1000.0),
    ("2026-11-24T06:00+01:00 x1000 @1764000000.5", RunningClock, 1000.0),
    ("2026-11-24T06:00+01:00 x0", FixedClock, 0.0),
])
def test_clock_settings_parse(spec, kind, speed):
    c = clock.parse(spec)
    assert isinstance(c, kind) and c.speed == speed
    assert c.now() >= AT if kind is RunningClock else c.now() == AT


@pytest.mark.parametrize("spec, says", [
    ("yesterday", "not an ISO 8601 instant"),
    ("2026-11-24T06:00", "needs a UTC offset"),
    ("2026-11-24T06:00Z fast", "is not 'INSTANT [xSPEED] [@EPOCH]'"),
    ("2026-11-24T06:00Z x1.2.3", "plain numbers"),
    ("2026-11-24T06:00Z x1000 @1.2.3", "plain numbers"),
    ("2026-11-24T06:00Z x99999999999999999999999", "at most"),
    ("2026-11-24T06:00Z x10 @99999999999999999999", "UNIX time"),
])
def test_a_wrong_clock_setting_names_the_variable(spec, says):
    with pytest.raises(ConfigError) as e:
        clock.parse(spec)
    assert says in str(e.value) and "CATURACTL_CLOCK" in str(e.value)


def test_a_wrong_clock_setting_stops_every_command_with_exit_78(tmp_path):
    env = {**os.environ, clock.ENV: "tomorrow", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "caturactl", "orders", "list"], cwd=tmp_path, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 78 and "CATURACTL_CLOCK" in r.stderr and "Traceback" not in r.stderr


def test_a_running_clock_hands_its_epoch_to_child_processes():
    env = {**os.environ, clock.ENV: "2026-11-24T06:00+01:00 x1000", "PYTHONPATH": str(ROOT)}
    code = ("import os, subprocess, sys\n"
            "from caturactl.core import clock\n"
            "clock.now()\n"
            "child = subprocess.run([sys.executable, '-c', 'import os; print(os.environ[\"CATURACTL_CLOCK\"])'],"
            " capture_output=True, text=True).stdout.strip()\n"
            "print(os.environ['CATURACTL_CLOCK']); print(child)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    mine, childs = out.stdout.split()[-6:-3], out.stdout.split()[-3:]
    assert mine == childs and childs[2].startswith("@")  # the same epoch: both agree to the microsecond


def test_installed_clock_is_what_now_and_today_say():
    from zoneinfo import ZoneInfo
    berlin = ZoneInfo("Europe/Berlin")
    new_year = datetime(2030, 12, 31, 22, 30, tzinfo=timezone.utc)  # 23:30 in Berlin
    with clock.using(FixedClock(new_year)) as c:
        assert clock.now() == new_year and clock.today(berlin).isoformat() == "2030-12-31"
        assert os.environ[clock.ENV] == new_year.isoformat()
        c.advance(timedelta(minutes=30))
        assert clock.today(berlin).isoformat() == "2031-01-01" and clock.now().year == 2030
        assert os.environ[clock.ENV] == (new_year + timedelta(minutes=30)).isoformat()
    assert clock.ENV not in os.environ


# --- no business "now" behind the clock's back -----------------------------------------------------

# Real durations, which the remote side and the kernel measure in real time, may read the
# machine's clock; each place says why in a comment next to it.
REAL_TIME_ALLOWED = {
    "caturactl/core/clock.py",  # the system clock itself, and real_now() for real durations
    "caturactl/cli/jobs.py",  # daemons given one epoch wait for it in real time (time.time, as the epoch is)
}
FORBIDDEN = {("datetime", "now"), ("datetime", "utcnow"), ("date", "today"), ("datetime", "today"),
             ("time", "time")}


def _reads_of_the_machine_clock(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
            if (name, node.func.attr) in FORBIDDEN:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}.{node.func.attr}()")
    return found


def test_no_code_reads_the_machine_clock_for_a_business_date():
    files = [p for d in ("caturactl", "connectors", "carriers") for p in sorted((ROOT / d).rglob("*.py"))]
    found = [hit for p in files if str(p.relative_to(ROOT)) not in REAL_TIME_ALLOWED
             for hit in _reads_of_the_machine_clock(p)]
    assert found == [], "use caturactl.core.clock.now() / today(tz):\n" + "\n".join(found)
    # The check itself finds what it is for.
    probe = ROOT / "tests" / "data" / "clock_probe.py"
    assert probe.exists() and len(_reads_of_the_machine_clock(probe)) == 3
