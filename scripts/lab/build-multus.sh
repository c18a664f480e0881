#!/usr/bin/env bash
# Builds Multus CNI v4.0.2 (the thin plugin: `multus`, and `thin_entrypoint`, which installs it on
# a node) from its source tarball with Debian's Go, offline with the tarball's vendor/ directory,
# links <repo>/build/multus/bin to the result, then builds the lab image lab/multus:4.0.2
# (scripts/lab/multus-image.sh -> build/images/lab-multus.tar).
#
# The source is not in this repository: MULTUS_SOURCE_TARBALL when set; otherwise the first of
# <repo>/../shared/lab/, /work/shared/lab/ (this workplace's lab material, for clones elsewhere
# such as CI's) and the copy an earlier run kept in the cache (<cache>/multus/src/). A tarball
# found outside the cache is copied into it. See the message below when none is there.
#
# The binaries live in a cache outside the repository:
#   ${OVNODE_CACHE_DIR:-/var/cache/ovnode}/multus/<version>-<tarball sha256 prefix>-<recipe hash>/bin/
# where the recipe hash is a short hash of this script: a changed tarball or recipe builds again,
# an unchanged one costs about a second. The Go build cache is kept next to it (keyed by version
# and tarball), so a changed recipe rebuilds incrementally. A finished build is published by
# renaming its directory into place: a cache entry is either complete or absent.
#
# Env: OVNODE_CACHE_DIR (cache root), MULTUS_SOURCE_TARBALL, FORCE=1 (rebuild even if cached).
set -euo pipefail

VERSION=4.0.2
# The tag's commit, recorded in the binaries (`multus -version`) since the tarball has no .git.
COMMIT=f03765681fe81ee1e0633ee1734bf48ab3bccf2b
BINS=(multus thin_entrypoint)
# Import path of the version variables (module gopkg.in/k8snetworkplumbingwg/multus-cni.v4).
VPKG=gopkg.in/k8snetworkplumbingwg/multus-cni.v4/pkg/multus

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SELF="$REPO/scripts/lab/build-multus.sh"
CACHE="${OVNODE_CACHE_DIR:-/var/cache/ovnode}/multus"
LINK="$REPO/build/multus/bin"

log() { echo "build-multus: $*" >&2; }
die() { echo "build-multus: ERROR: $*" >&2; exit 1; }

# run_logged <what> <logfile> <cmd...>: output to logfile; on failure, say what and show its end.
run_logged() {
  local what="$1" logf="$2"; shift 2
  if ! "$@" >"$logf" 2>&1; then
    echo "build-multus: ERROR: $what failed; last lines of $logf:" >&2
    tail -n 30 "$logf" | sed 's/^/  | /' >&2
    exit 1
  fi
}

link_bin() {
  mkdir -p "$(dirname "$LINK")"
  # Replace the link atomically: readers never see it missing.
  ln -sfn "$1" "$LINK.tmp.$$"
  mv -T "$LINK.tmp.$$" "$LINK"
}

have_all() {
  local b
  for b in "${BINS[@]}"; do [ -x "$1/$b" ] || return 1; done
  [ -f "$1/../LICENSE" ]
}

# The image is cheap and cached on its own inputs: it is (re)made after every path that ends
# with binaries in place, so a missing or stale archive is fixed by running this script again.
build_image() {
  bash "$REPO/scripts/lab/multus-image.sh" "$LINK"
}

TARBALL_NAME="multus-cni-$VERSION.tar.xz"
CACHED_TARBALL="$CACHE/src/$TARBALL_NAME"
if [ -n "${MULTUS_SOURCE_TARBALL:-}" ]; then
  CANDIDATES=("$MULTUS_SOURCE_TARBALL")
else
  CANDIDATES=("$REPO/../shared/lab/$TARBALL_NAME" "/work/shared/lab/$TARBALL_NAME" "$CACHED_TARBALL")
fi
TARBALL=""
for c in "${CANDIDATES[@]}"; do
  if [ -f "$c" ]; then TARBALL="$c"; break; fi
done
if [ -z "$TARBALL" ]; then
  die "Multus source tarball not found (looked at: ${CANDIDATES[*]}).
  Expected: multus-cni-$VERSION.tar.xz, the source of the k8snetworkplumbingwg/multus-cni repository
  at tag v$VERSION (commit $COMMIT) including its vendor/ directory, unpacking to multus-cni-$VERSION/.
  Obtain that tag's source from the project's public repository (a checkout with vendor/, packed as
  'tar -cJf multus-cni-$VERSION.tar.xz multus-cni-$VERSION'), then put it at one of those places
  or point MULTUS_SOURCE_TARBALL at it."
fi
# Kept in the cache, so clones that have no lab material beside them still find it.
if [ "$TARBALL" != "$CACHED_TARBALL" ] && ! cmp -s "$TARBALL" "$CACHED_TARBALL" 2>/dev/null; then
  mkdir -p "$CACHE/src" || die "cannot create $CACHE/src (set OVNODE_CACHE_DIR?)"
  cp "$TARBALL" "$CACHED_TARBALL.tmp.$$" && mv "$CACHED_TARBALL.tmp.$$" "$CACHED_TARBALL" \
    || die "cannot copy $TARBALL into $CACHE/src"
  log "kept a copy of the source in $CACHED_TARBALL"
fi

RECIPE_HASH="$(sha256sum "$SELF" | cut -c1-12)"
SRC_HASH="$(sha256sum "$TARBALL" | cut -c1-12)"
mkdir -p "$CACHE" || die "cannot create the cache directory $CACHE (set OVNODE_CACHE_DIR?)"
KEY="$VERSION-$SRC_HASH-$RECIPE_HASH"
ENTRY="$CACHE/$KEY"

if [ "${FORCE:-0}" != 1 ] && have_all "$ENTRY/bin"; then
  link_bin "$ENTRY/bin"
  log "cached: $ENTRY/bin (v$VERSION)"
  build_image
  exit 0
fi

# --- one builder at a time per cache -----------------------------------------------------------
exec 9>"$CACHE/.build.lock"
if ! flock -n 9; then
  log "another build holds $CACHE/.build.lock; waiting"
  flock 9
fi
if [ "${FORCE:-0}" != 1 ] && have_all "$ENTRY/bin"; then
  link_bin "$ENTRY/bin"; log "cached (built meanwhile): $ENTRY/bin"
  build_image
  exit 0
fi

for tool in go tar xz sha256sum flock readelf; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (run scripts/lab/install-lab-deps.sh)"
done

T_START=$(date +%s)
WORK="$(mktemp -d "$CACHE/.work-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
LOGS="$WORK/out/logs"
mkdir -p "$WORK/out/bin" "$LOGS" "$WORK/tmp"

# --- source -----------------------------------------------------------------------------------
t=$(date +%s)
run_logged "unpacking $TARBALL" "$LOGS/unpack.log" tar -xJf "$TARBALL" -C "$WORK"
SRC="$WORK/multus-cni-$VERSION"
[ -f "$SRC/go.mod" ] && [ -d "$SRC/vendor" ] && [ -d "$SRC/cmd/thin_entrypoint" ] && [ -f "$SRC/LICENSE" ] \
  || die "$TARBALL does not unpack to multus-cni-$VERSION/ with go.mod, LICENSE, vendor/ and cmd/thin_entrypoint/"
log "source unpacked in $(( $(date +%s) - t ))s"

# Module mode with the vendored dependencies: no network, no module cache. The Go cache is the
# only state shared between builds.
export GOFLAGS=-mod=vendor CGO_ENABLED=0 GO111MODULE=on GOPROXY=off GOSUMDB=off
export GOCACHE="$CACHE/gocache-$VERSION-$SRC_HASH" GOPATH="$WORK/gopath" TMPDIR="$WORK/tmp" GOTMPDIR="$WORK/tmp"
mkdir -p "$GOCACHE"
cd "$SRC"

# Version stamps as upstream's build sets them; the date is a fixed one, not the build's, so the
# same inputs give the same binaries.
DATE=2023-06-07T00:00:00+00:00
LDFLAGS="-s -w -X $VPKG.version=v$VERSION -X $VPKG.commit=$COMMIT -X $VPKG.gitTreeState=clean"
LDFLAGS+=" -X $VPKG.releaseStatus=released -X $VPKG.date=$DATE"
{
  echo "source: $(basename "$TARBALL") sha256 $(sha256sum "$TARBALL" | cut -d' ' -f1)"
  echo "version: v$VERSION ($COMMIT)"
  echo "recipe: $RECIPE_HASH"
  echo "go: $(go version)"
} > "$WORK/out/BUILDINFO"
for b in "${BINS[@]}"; do
  t=$(date +%s)
  log "go build ./cmd/$b"
  run_logged "go build ./cmd/$b" "$LOGS/build-$b.log" \
    nice -n 10 go build -trimpath -ldflags "$LDFLAGS" -o "$WORK/out/bin/$b" "./cmd/$b"
  secs=$(( $(date +%s) - t ))
  log "built $b in ${secs}s ($(( $(stat -c %s "$WORK/out/bin/$b") / 1048576 )) MiB)"
  echo "build-time $b ${secs}s" >> "$WORK/out/BUILDINFO"
done
# Both go into an image without a libc: they must be static.
for b in "${BINS[@]}"; do
  if readelf -l "$WORK/out/bin/$b" 2>/dev/null | grep -q 'program interpreter'; then
    die "$b is dynamically linked (CGO_ENABLED=0 not honoured?)"
  fi
done
got="$("$WORK/out/bin/multus" -version 2>&1 || true)"
[[ "$got" == *"v$VERSION"* ]] || die "built multus reports '$got', expected v$VERSION (version ldflags)"
# Apache-2.0: the licence goes wherever the binaries go (the image carries it too).
cp "$SRC/LICENSE" "$WORK/out/LICENSE"
echo "total $(( $(date +%s) - T_START ))s" >> "$WORK/out/BUILDINFO"

# --- publish atomically -------------------------------------------------------------------------
cd "$REPO"
rm -rf "$ENTRY.old"
[ ! -e "$ENTRY" ] || mv "$ENTRY" "$ENTRY.old"
mv "$WORK/out" "$ENTRY"
rm -rf "$ENTRY.old"
link_bin "$ENTRY/bin"
# Older entries: the two newest stay (another checkout may still link one); their Go caches go
# with the last entry that used them.
ls -1dt "$CACHE"/*/BUILDINFO 2>/dev/null | tail -n +3 | while read -r old; do
  old="$(dirname "$old")"
  [ "$old" = "$ENTRY" ] || { log "pruning $old"; rm -rf "$old"; }
done
for gc in "$CACHE"/gocache-*; do
  [ -d "$gc" ] || continue
  k="${gc##*/gocache-}"
  compgen -G "$CACHE/$k-*/BUILDINFO" >/dev/null || { log "pruning $gc"; rm -rf "$gc"; }
done
log "done in $(( $(date +%s) - T_START ))s: $ENTRY/bin (GOCACHE $GOCACHE, $(du -sh "$GOCACHE" | cut -f1))"
build_image
