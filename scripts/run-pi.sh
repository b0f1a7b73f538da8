#!/usr/bin/env bash
# run-pi.sh - set up, build and run Monte Carlo pi on the embedded default:
# a private redis-server and one local worker per core, all removed at exit.
# Extra arguments go to pi (e.g. --samples 1e10 --json).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec build/bench/pi "$@"
