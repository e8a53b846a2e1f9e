#!/usr/bin/env bash
# Idempotent set-up: a project-local virtual environment (.venv) with rlif-data
# installed in editable mode. Needs only Python 3.11 and the package registries.
# Re-running is cheap: the install is skipped while pyproject.toml is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
VENV="${RLIF_VENV:-.venv}"

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "setup: $PYTHON not found; rlif-data needs Python 3.11 (Debian 12: apt-get install python3 python3-venv)" >&2
  exit 1
fi

# Debian splits venv/ensurepip and the EGL/Mesa libraries MuJoCo renders with
# into separate packages; install them when we can (root on Debian).
need_apt=()
"$PYTHON" -c "import ensurepip, venv" >/dev/null 2>&1 || need_apt+=(python3-venv)
system_pkgs=(libegl1 libgl1-mesa-dri)
# The test suite also drives Debian's Chromium headless (the `view` report test).
[ "${RLIF_SETUP_FOR_TESTS:-0}" = "1" ] && system_pkgs+=(chromium)
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in "${system_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
  done
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian packages: ${need_apt[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: missing system packages: ${need_apt[*]} (install them with apt-get as root)" >&2
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi

stamp="$VENV/.rlif-installed"
want="$(cat pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing rlif-data and its dependencies into $VENV (first run takes a few minutes)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e ".[dev]"
  echo "$want" > "$stamp"
else
  echo "setup: $VENV is up to date"
fi
