#!/usr/bin/env bash
# Installs what the tests need (Debian packages, npm deps, builds, libcni's cnitool) and runs
# the whole suite: unit tests (fakes), integration tests on the real datapath (root), then the
# cluster tests on one lab Kubernetes cluster (kubelet + containerd per node; its globalSetup
# builds Kubernetes from Debian's source package into a cache outside the clone, the images,
# brings the lab up and takes it down).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-cnitool.sh >/dev/null
npx tsc -p tsconfig.test.json --noEmit
# One project at a time: the integration and cluster suites each start whole nodes on 2 cores.
npx vitest run --project unit --project integration
# Three nodes: pods on every pair of distinct nodes (issue 8), a third node to stop while two talk.
NODES="${NODES:-3}" npx vitest run --project cluster
