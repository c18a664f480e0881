#!/usr/bin/env bash
# Builds everything: TypeScript (dist/), the native addon (build/native), and the CNI executable
# as ONE self-contained file (dist/bin/ovnode: esbuild bundle -> Node single executable).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

mkdir -p build/shim dist/bin
npx tsc -p tsconfig.json
# cmake-js reads native/package.json ("binary.napi_versions"): it builds against the
# node-api-headers package and downloads nothing.
npx cmake-js compile -d native -O build/native >build/native-build.log 2>&1 || { cat build/native-build.log; exit 1; }

npx esbuild cni/main.ts --bundle --platform=node --target=node20 --format=cjs \
  --minify --legal-comments=none --outfile=build/shim/ovnode.js --log-level=warning
cat > build/shim/sea-config.json <<JSON
{ "main": "$root/build/shim/ovnode.js", "output": "$root/build/shim/sea-prep.blob",
  "disableExperimentalSEAWarning": true, "useCodeCache": false, "useSnapshot": false }
JSON
node --experimental-sea-config build/shim/sea-config.json >/dev/null
cp "$(command -v node)" build/shim/ovnode
strip build/shim/ovnode 2>/dev/null || true
npx postject build/shim/ovnode NODE_SEA_BLOB build/shim/sea-prep.blob \
  --sentinel-fuse NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2 >build/shim/postject.log 2>&1 || { cat build/shim/postject.log; exit 1; }
mv -f build/shim/ovnode dist/bin/ovnode
chmod 0755 dist/bin/ovnode

# V8's defaults suit a busy server with memory to spare: 32 MiB of young generation and an old
# generation that doubles before a full collection. A node agent's live heap is small (~40 MiB
# with 5000 pods and 500 policies in the API) and its garbage comes in bursts (lists, policy
# runs); with these, its RSS there stays ~130 MiB instead of ~200 (npm run bench:kube-node).
cat > dist/bin/ovnoded <<'JS'
#!/usr/bin/env -S node --max-semi-space-size=4 --heap-growing-percent=25
require('../daemon/main.js');
JS
chmod 0755 dist/bin/ovnoded
echo "built: dist/bin/ovnode (CNI executable), dist/bin/ovnoded (daemon)"
