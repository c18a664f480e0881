#!/usr/bin/env bash
# Installs everything ovnode needs on a Debian bookworm machine (run as root) and builds it:
# Debian packages, npm dependencies, TypeScript, the native addon and the CNI executable.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then echo "setup: run as root (network namespaces, OVS)" >&2; exit 1; fi
if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "setup: Node.js >= 20 with npm is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
bash scripts/install-deps.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
bash scripts/build.sh
