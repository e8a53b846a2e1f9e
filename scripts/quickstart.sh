#!/usr/bin/env bash
# Set up (idempotent) and run the main job on its embedded defaults:
# record simulated-expert rollouts with interventions into ./quickstart_data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/rlif-data quickstart "$@"
