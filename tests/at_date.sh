#!/usr/bin/env bash
# tests/at_date.sh "YYYY-MM-DD HH:MM:SS" COMMAND...: run COMMAND with the machine's clock moved to
# that UTC instant (libfaketime, Debian's faketime), so that code asking the machine for the date
# instead of the app's clock shows up in the tests. The clock is offset, not restarted: with
# faketime's "@DATE" every child process (a jobs daemon, a job) would start again at DATE, behind
# its parent. Without faketime the command runs on the real clock, and says so; under CI (which
# installs faketime) a missing faketime fails.
set -euo pipefail
at="$1"; shift
if ! command -v faketime >/dev/null; then
  if [ -n "${CI:-}" ]; then echo "tests/at_date.sh: faketime is not installed (CI installs it)" >&2; exit 1; fi
  echo "note: faketime is not installed here: the tests run on the real clock, not at $at UTC (CI moves it)" >&2
  exec "$@"
fi
off=$(( $(date -u -d "$at" +%s) - $(date -u +%s) ))
echo "== the machine's clock at $at UTC"
TZ=UTC exec faketime -f "+$off" "$@"
