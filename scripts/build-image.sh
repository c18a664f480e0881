#!/usr/bin/env bash
# Builds the ovnode container image without any container registry and saves it as a
# docker-archive, build/images/ovnode.tar, tagged ovnode:<package.json version>:
#
#   ctr -n k8s.io images import build/images/ovnode.tar
#
# Two layers:
#   1. a Debian bookworm root filesystem (OVS, OVN, iproute2, procps, the Essential set) made from
#      binary packages of the machine's own Debian archive (scripts/image/make-rootfs.sh), cached
#      outside the repository under ${OVNODE_CACHE_DIR:-/var/cache/ovnode}/image-rootfs/<key>/,
#      <key> hashing the package list, the recipe and the apt sources;
#   2. the application: the machine's node at /usr/local/bin/node, /opt/ovnode (package.json,
#      dist/, the native addon at build/native/Release, production node_modules) and
#      /usr/local/bin/ovnoded, /usr/local/bin/ovnode.
# A code change rebuilds layer 2 only. Both tars are reproducible: the same inputs give the same
# digests.
#
# Usage: scripts/build-image.sh [--rebuild]   (--rebuild runs scripts/build.sh first; without it,
# scripts/build.sh runs only when the built tree is incomplete)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
t0=$(date +%s.%N)

rebuild=0
for a in "$@"; do
  case "$a" in
    --rebuild) rebuild=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "build-image: unknown argument $a (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "build-image: $*" >&2; exit 1; }
for tool in node tar dpkg-deb dpkg sha256sum flock find; do
  command -v "$tool" >/dev/null || die "$tool is required (not found in PATH)"
done
# shellcheck source=SCRIPTDIR/lib/debian-apt.sh
source scripts/lib/debian-apt.sh
# shellcheck source=SCRIPTDIR/image/lib.sh
source scripts/image/lib.sh

work=$repo/build/image          # staging and logs, rebuilt every time
out_dir=$repo/build/images
archive=$out_dir/ovnode.tar
cache=${OVNODE_CACHE_DIR:-/var/cache/ovnode}
mkdir -p "$work" "$out_dir" || die "cannot create $work or $out_dir"
mkdir -p "$cache/image-rootfs" || die "cannot create $cache/image-rootfs (OVNODE_CACHE_DIR chooses another cache directory)"

# One build at a time per cache: the rootfs entry, the pruning and build/images are shared.
exec 9>"$cache/image-rootfs/.lock"
flock 9

# --- The built tree ---
built=(dist/bin/ovnoded dist/bin/ovnode dist/daemon/main.js dist/native/index.js
       build/native/Release/ovnode_native.node)
missing=()
for f in "${built[@]}"; do [ -e "$f" ] || missing+=("$f"); done
if [ "$rebuild" = 1 ] || [ "${#missing[@]}" -gt 0 ]; then
  [ -d node_modules ] || die "node_modules/ is missing: run 'bash scripts/setup.sh' (or npm ci) first"
  [ "${#missing[@]}" -gt 0 ] && echo "build-image: ${missing[*]} missing: running scripts/build.sh"
  bash scripts/build.sh >"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log" >&2; die "scripts/build.sh failed (log: $work/build.log)"; }
  for f in "${built[@]}"; do [ -e "$f" ] || die "$f is still missing after scripts/build.sh (log: $work/build.log)"; done
fi
if newer=$(find cni common daemon native -name '*.ts' -newer dist/daemon/main.js -print -quit) && [ -n "$newer" ]; then
  echo "build-image: WARNING: $newer is newer than dist/: the image gets the last build (--rebuild to rebuild)" >&2
fi
version=$(node -p 'require("./package.json").version')
[[ "$version" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "package.json version '$version' is not a valid image tag"
tag="ovnode:$version"
arch=$(dpkg --print-architecture)

# --- Layer 1: the root filesystem, cached ---
stanzas=$(image_apt_stanzas) || die "no Debian archive found in the machine's apt sources"
key=$({ cat scripts/image/packages.list scripts/image/make-rootfs.sh scripts/image/lib.sh scripts/lib/debian-apt.sh
        printf '%s\n' "$stanzas" "$arch"; } | sha256sum | cut -c1-24)
entry=$cache/image-rootfs/$key
# Holding the lock, any half-built entry is a leftover of a killed build.
rm -rf "$cache/image-rootfs/".build-*
if [ -f "$entry/layer.tar" ] && [ -f "$entry/layer.sha256" ]; then
  rootfs_state="cached"
else
  [ "$(id -u)" = 0 ] || die "building the root filesystem needs root (it runs ldconfig in a chroot); it is cached afterwards"
  tmp=$cache/image-rootfs/.build-$key
  mkdir -p "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  printf '%s\n' "$stanzas" > "$tmp/sources"
  echo "build-image: building the root filesystem (log: $work/rootfs.log)"
  t_root=$(date +%s.%N)
  bash scripts/image/make-rootfs.sh "$cache/image-apt" "$tmp/sources" "$tmp" >"$work/rootfs.log" 2>&1 \
    || { tail -n 30 "$work/rootfs.log" >&2; die "building the root filesystem failed (log: $work/rootfs.log)"; }
  repro_tar "$tmp/rootfs" "$tmp/layer.tar" || die "packing $tmp/rootfs failed"
  sha256sum "$tmp/layer.tar" | cut -d' ' -f1 > "$tmp/layer.sha256"
  rm -f "$tmp/sources"
  mv "$tmp" "$entry"
  trap - EXIT
  # Only the .debs of this closure stay in the private apt cache.
  for deb in "$cache/image-apt/cache/archives/"*.deb; do
    b=$(basename "$deb" .deb)
    awk -v b="$b" '{ v = $2; gsub(/:/, "%3a", v); if ($1 "_" v "_" $3 == b) found = 1 } END { exit !found }' \
      "$entry/packages.txt" || rm -f "$deb"
  done
  rootfs_state="built in $(awk -v a="$t_root" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }')"
fi
touch "$entry"
# Keep the two most recently used rootfs entries (about 300 MB each: tree and layer).
find "$cache/image-rootfs" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%T@ %p\n' \
  | sort -rn | tail -n +3 | cut -d' ' -f2- | while read -r old; do rm -rf "$old"; done
rootfs_diff=$(cat "$entry/layer.sha256")

# --- Layer 2: the application ---
app=$work/app
rm -rf "$app" "$work/archive"
mkdir -p "$app/usr/local/bin" "$app/opt/ovnode/build/native/Release"
# The machine's node carries debug sections (~12 MB); the symbols addons link against stay.
# The stripped copy is cached per binary (path, size, mtime, inode), outside the repository.
node_bin=$(readlink -f "$(command -v node)")
node_cache=$cache/image-node/$(stat -c '%n %s %Y %i' "$node_bin" | sha256sum | cut -c1-24)
if [ ! -f "$node_cache/node" ]; then
  rm -rf "$cache/image-node"
  mkdir -p "$node_cache"
  strip -o "$node_cache/node.tmp" "$node_bin" 2>/dev/null || cp "$node_bin" "$node_cache/node.tmp"
  mv "$node_cache/node.tmp" "$node_cache/node"
fi
# Hard links where possible (dist/bin/ovnode alone is a whole node binary): the staging's own
# links are what gets removed below, and the layer tar normalises modes without touching files.
link_or_copy() { cp -al "$@" 2>/dev/null || cp -a "$@"; }
link_or_copy "$node_cache/node" "$app/usr/local/bin/node"
cp package.json "$app/opt/ovnode/package.json"
cp build/native/Release/ovnode_native.node "$app/opt/ovnode/build/native/Release/"
link_or_copy dist "$app/opt/ovnode/dist"
mapfile -t modules < <(node scripts/image/prod-modules.cjs "$repo") || die "listing the production node_modules failed"
[ "${#modules[@]}" -gt 0 ] || die "listing the production node_modules failed (empty)"
link_or_copy --parents "${modules[@]}" "$app/opt/ovnode"
# Source maps and type declarations are never read at run time (about half of node_modules).
find "$app/opt/ovnode" \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -type f -delete
find "$app/opt/ovnode/node_modules" -depth -type d -name .bin -exec rm -rf {} +
ln -s ../../../opt/ovnode/dist/bin/ovnoded "$app/usr/local/bin/ovnoded"
ln -s ../../../opt/ovnode/dist/bin/ovnode "$app/usr/local/bin/ovnode"
app_diff=$(repro_tar "$app" - --mode='u+rwX,go+rX,go-w' | tee "$work/app-layer.tar" | sha256sum | cut -d' ' -f1) \
  || die "packing $app failed"

# --- The docker-archive ---
arc=$work/archive
mkdir -p "$arc/$rootfs_diff" "$arc/$app_diff"
ln "$entry/layer.tar" "$arc/$rootfs_diff/layer.tar" 2>/dev/null || cp "$entry/layer.tar" "$arc/$rootfs_diff/layer.tar"
mv "$work/app-layer.tar" "$arc/$app_diff/layer.tar"
config=$(node scripts/image/image-json.cjs "$arc" "$tag" "$arch" "ovnode scripts/build-image.sh" "$rootfs_diff" "$app_diff") \
  || die "writing the image config failed"
repro_tar "$arc" "$archive.tmp" || die "writing $archive failed"
mv -f "$archive.tmp" "$archive"
rm -rf "$app" "$arc"

size=$(stat -c %s "$archive")
echo "image:   $tag (config sha256:$config)"
echo "layers:  rootfs sha256:$rootfs_diff ($rootfs_state, $(du -sh "$entry/rootfs" | cut -f1) unpacked)"
echo "         app    sha256:$app_diff"
echo "archive: $archive ($(awk -v s="$size" 'BEGIN { printf "%.1f MiB", s / 1048576 }'))"
echo "built in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }')"
