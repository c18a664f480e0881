#!/usr/bin/env bash
# Installs what the tests need (Debian packages, npm deps, builds, libcni's cnitool) and runs
# the whole suite: unit tests (fakes) and integration tests on the real datapath (root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-cnitool.sh >/dev/null
npx tsc -p tsconfig.test.json --noEmit
npx vitest run
