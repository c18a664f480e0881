#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kubectl (v1.20.2)
# from Debian bookworm's `kubernetes` source package with Debian's Go, and links
# <repo>/build/kube/bin to the result.
#
# The binaries live in a cache outside the repository:
#   ${OVNODE_CACHE_DIR:-/var/cache/ovnode}/kubernetes/<debian source version>-<recipe hash>/bin/
# where the recipe hash is a short hash of this script, so changing the recipe builds again while
# an unchanged recipe costs nothing (about a second). The Go build cache is kept next to it, keyed
# by the source version only, so a changed recipe rebuilds incrementally. A finished build is
# published by renaming its directory into place: a cache entry is either complete or absent.
#
# Env: OVNODE_CACHE_DIR (cache root), REFRESH=1 (ask the archive again which source version is
# current instead of using the one recorded at the last fetch), FORCE=1 (rebuild even if cached).
#
# Why the recipe looks like this (Kubernetes 1.20 with Go 1.19):
# - GOPATH mode: 1.20's own build sets GO111MODULE=off; module mode with -mod=vendor refuses the
#   tree ("updates to go.mod needed").
# - pkg/generated/openapi/zz_generated.openapi.go is not in the tarball (kube-apiserver needs it);
#   it is generated with the vendored openapi-gen over the packages tagged +k8s:openapi-gen=.
# - The vendored modern-go/reflect2 1.0.1 crashes at run time under Go >= 1.18; Debian's 1.0.2
#   (golang-github-modern-go-reflect2-dev) replaces it.
# - In GOPATH mode the version variables sit under k8s.io/kubernetes/vendor/..., so -X uses that path.
# - -tags providerless drops the in-tree cloud providers: about half the size and build time.
set -euo pipefail

SUITE=bookworm
SRC_PKG=kubernetes
BINS=(kube-apiserver kubelet kube-controller-manager kube-scheduler kubectl)
TAGS=providerless

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SELF="$REPO/scripts/lab/build-kubernetes.sh"
CACHE="${OVNODE_CACHE_DIR:-/var/cache/ovnode}/kubernetes"
APT_DIR="$CACHE/apt"
VERSION_FILE="$APT_DIR/$SRC_PKG.source-version"
LINK="$REPO/build/kube/bin"

log() { echo "build-kubernetes: $*" >&2; }
die() { echo "build-kubernetes: ERROR: $*" >&2; exit 1; }

# run_logged <what> <logfile> <cmd...>: output to logfile; on failure, say what and show its end.
run_logged() {
  local what="$1" logf="$2"; shift 2
  if ! "$@" >"$logf" 2>&1; then
    echo "build-kubernetes: ERROR: $what failed; last lines of $logf:" >&2
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
}

RECIPE_HASH="$(sha256sum "$SELF" | cut -c1-12)"
mkdir -p "$CACHE" || die "cannot create the cache directory $CACHE (set OVNODE_CACHE_DIR?)"

# --- 1. which source version (recorded at the last fetch, so a cached run needs no network) -----
. "$REPO/scripts/lib/debian-apt.sh"
init_apt() {
  local stanza
  stanza="$(debian_src_stanza "$SUITE")" || die "reading the machine's apt sources failed"
  [ -n "$stanza" ] || die "no enabled 'Types: deb' stanza of the main Debian archive with suite '$SUITE' in /etc/apt/sources.list.d/*.sources"
  private_apt_init "$APT_DIR" "$stanza" || die "cannot lay out the private apt state in $APT_DIR"
}

SRCVER=""
if [ "${REFRESH:-0}" != 1 ] && [ -s "$VERSION_FILE" ]; then
  SRCVER="$(cat "$VERSION_FILE")"
fi
if [ -z "$SRCVER" ]; then
  init_apt
  log "apt-get update (private state in $APT_DIR, deb-src from $(stanza_uri "$(cat "$APT_DIR/sources.list.d/debian.sources")"))"
  run_logged "apt-get update of the private deb-src list" "$APT_DIR/logs/apt-update.log" private_apt -q update
  compgen -G "$APT_DIR/lists/*_Sources*" >/dev/null \
    || die "apt-get update fetched no Sources index (see $APT_DIR/logs/apt-update.log)"
  versions="$(TMPDIR="$APT_DIR/tmp" apt-cache "${PRIVATE_APT_OPTS[@]}" showsrc "$SRC_PKG" 2>/dev/null \
    | awk '/^Package: /{p=$2} /^Version: /{ if (p == "'"$SRC_PKG"'") print $2 }')"
  [ -n "$versions" ] || die "the Sources index has no '$SRC_PKG' source package"
  for v in $versions; do
    if [ -z "$SRCVER" ] || dpkg --compare-versions "$v" gt "$SRCVER"; then SRCVER="$v"; fi
  done
  printf '%s\n' "$SRCVER" > "$VERSION_FILE.tmp" && mv "$VERSION_FILE.tmp" "$VERSION_FILE"
fi

# Upstream version: strip the epoch and the Debian revision; Debian's "X+reallyY" means Y.
UPSTREAM="${SRCVER#*:}"; UPSTREAM="${UPSTREAM%-*}"; UPSTREAM="${UPSTREAM##*+really}"
[[ "$UPSTREAM" =~ ^([0-9]+)\.([0-9]+)\.[0-9]+$ ]] || die "cannot derive an upstream version from '$SRCVER' (got '$UPSTREAM')"
GIT_MAJOR="${BASH_REMATCH[1]}"; GIT_MINOR="${BASH_REMATCH[2]}"
KEY="$SRCVER-$RECIPE_HASH"
ENTRY="$CACHE/$KEY"

if [ "${FORCE:-0}" != 1 ] && have_all "$ENTRY/bin"; then
  link_bin "$ENTRY/bin"
  log "cached: $ENTRY/bin (v$UPSTREAM from source $SRCVER)"
  exit 0
fi

# --- 2. one builder at a time per cache ---------------------------------------------------------
exec 9>"$CACHE/.build.lock"
if ! flock -n 9; then
  log "another build holds $CACHE/.build.lock; waiting"
  flock 9
fi
if [ "${FORCE:-0}" != 1 ] && have_all "$ENTRY/bin"; then
  link_bin "$ENTRY/bin"; log "cached (built meanwhile): $ENTRY/bin"; exit 0
fi

for tool in go dpkg-source apt-get sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (run scripts/lab/install-lab-deps.sh)"
done
REFLECT2=/usr/share/gocode/src/github.com/modern-go/reflect2
[ -f "$REFLECT2/reflect2.go" ] || die "$REFLECT2 missing (install golang-github-modern-go-reflect2-dev)"

T_START=$(date +%s)
WORK="$(mktemp -d "$CACHE/.work-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
LOGS="$WORK/out/logs"
mkdir -p "$WORK/out/bin" "$LOGS" "$WORK/tmp" "$WORK/tools"

# --- 3. source: fetched once per version, unpacked per build ------------------------------------
DL="$CACHE/src/$SRCVER"
DSC="$DL/${SRC_PKG}_${SRCVER#*:}.dsc"
if [ ! -f "$DSC" ]; then
  [ -n "${PRIVATE_APT_DIR:-}" ] || init_apt
  compgen -G "$APT_DIR/lists/*_Sources*" >/dev/null \
    || run_logged "apt-get update of the private deb-src list" "$APT_DIR/logs/apt-update.log" private_apt -q update
  rm -rf "$DL.partial"; mkdir -p "$DL.partial"
  log "apt-get source --download-only $SRC_PKG=$SRCVER"
  (cd "$DL.partial" && private_apt -q source --download-only "$SRC_PKG=$SRCVER") >"$LOGS/apt-source.log" 2>&1 || {
    echo "build-kubernetes: ERROR: apt-get source $SRC_PKG=$SRCVER failed; last lines of $LOGS/apt-source.log:" >&2
    tail -n 25 "$LOGS/apt-source.log" | sed 's/^/  | /' >&2
    cp "$LOGS/apt-source.log" "$CACHE/apt-source.failed.log" 2>/dev/null || true
    exit 1
  }
  [ -f "$DL.partial/$(basename "$DSC")" ] || die "apt-get source did not produce $(basename "$DSC") (see $LOGS/apt-source.log)"
  rm -rf "$DL"; mv "$DL.partial" "$DL"
fi

export GOPATH="$WORK/gopath"
SRC="$GOPATH/src/k8s.io/kubernetes"
mkdir -p "$(dirname "$SRC")"
log "dpkg-source -x $(basename "$DSC")"
t=$(date +%s)
run_logged "dpkg-source -x $DSC" "$LOGS/dpkg-source.log" dpkg-source -x "$DSC" "$SRC"
[ -d "$SRC/vendor" ] && [ -d "$SRC/cmd/kube-apiserver" ] || die "unpacked tree $SRC lacks vendor/ or cmd/"
BUILD_EPOCH="$(cd "$SRC" && dpkg-parsechangelog -STimestamp)"

R="$SRC/vendor/github.com/modern-go/reflect2"
[ -d "$R" ] || die "$R not found in the source tree"
find "$R" -maxdepth 1 -type f ! -name LICENSE -delete
cp "$REFLECT2"/*.go "$REFLECT2"/*.s "$R/"
sed -i 's#github.com/modern-go/reflect2 v1\.0\.1#github.com/modern-go/reflect2 v1.0.2#' "$SRC/go.mod" "$SRC/vendor/modules.txt"
# kube-openapi's type validator takes any zero value for a missing one ("" for a string), which
# under Go >= 1.16 makes the apiserver refuse "" in every non-nullable CRD string field (released
# 1.20 binaries, built with Go 1.15, accept it; kube-openapi fixed it upstream for 1.21). Kube-OVN
# objects carry such fields (gatewayNode: ""), so the lab's apiserver gets the fix.
TYPE_GO="$SRC/vendor/k8s.io/kube-openapi/pkg/validation/validate/type.go"
grep -q 'if data == nil || reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data)), reflect.ValueOf(data)) {' "$TYPE_GO" \
  || die "$TYPE_GO: the zero-value check to fix was not found (different kube-openapi?)"
sed -i 's#if data == nil || reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data)), reflect.ValueOf(data)) {#if data == nil {#' "$TYPE_GO"
log "source ready in $(( $(date +%s) - t ))s"

export GO111MODULE=off CGO_ENABLED=0 GOFLAGS='' GOCACHE="$CACHE/gocache-$SRCVER" TMPDIR="$WORK/tmp" GOTMPDIR="$WORK/tmp"
mkdir -p "$GOCACHE"
cd "$SRC"

# --- 4. generated openapi ----------------------------------------------------------------------
t=$(date +%s)
run_logged "building openapi-gen" "$LOGS/openapi-gen-build.log" \
  nice -n 10 go build -o "$WORK/tools/openapi-gen" k8s.io/kubernetes/vendor/k8s.io/kube-openapi/cmd/openapi-gen
# The package list Makefile.generated_files computes: every dir with a +k8s:openapi-gen= tag.
PKGS="$(grep -Rl --include='*.go' --exclude='*_test.go' '+k8s:openapi-gen=' pkg cmd plugin vendor/k8s.io \
  | grep -vE '^vendor/k8s.io/(code-generator|sample-apiserver|kube-openapi)/' \
  | xargs -n1 dirname | LC_ALL=C sort -u | sed 's#^#k8s.io/kubernetes/#' | paste -sd,)"
[ -n "$PKGS" ] || die "no +k8s:openapi-gen= packages found in $SRC"
# openapi-gen parses the standard library too: it must find GOROOT (go/build's default comes from
# the binary, which may not carry it).
run_logged "openapi-gen" "$LOGS/openapi-gen.log" \
  env GOROOT="$(go env GOROOT)" nice -n 10 "$WORK/tools/openapi-gen" --logtostderr -i "$PKGS" \
    -p k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi \
    -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt -r "$WORK/tmp/openapi-violations.report"
[ -s pkg/generated/openapi/zz_generated.openapi.go ] || die "openapi-gen wrote no pkg/generated/openapi/zz_generated.openapi.go (see $LOGS/openapi-gen.log)"
log "openapi generated in $(( $(date +%s) - t ))s"

# --- 5. the binaries, one after the other with one Go cache (later ones reuse most packages) ---
V=k8s.io/kubernetes/vendor/k8s.io
COMMIT="$(sed -n 's/^[[:space:]]*gitCommit[[:space:]]*string = "\([0-9a-f]\{40\}\)".*/\1/p' vendor/k8s.io/component-base/version/base.go | head -n1)"
LDFLAGS="-s -w"
for pkg in component-base/version client-go/pkg/version; do
  LDFLAGS+=" -X $V/$pkg.gitVersion=v$UPSTREAM -X $V/$pkg.gitMajor=$GIT_MAJOR -X $V/$pkg.gitMinor=$GIT_MINOR"
  LDFLAGS+=" -X $V/$pkg.gitTreeState=clean -X $V/$pkg.buildDate=$(date -u -d "@$BUILD_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
  [ -z "$COMMIT" ] || LDFLAGS+=" -X $V/$pkg.gitCommit=$COMMIT"
done
{
  echo "source: $SRC_PKG $SRCVER"
  echo "version: v$UPSTREAM"
  echo "recipe: $RECIPE_HASH"
  echo "go: $(go version)"
  echo "tags: $TAGS"
} > "$WORK/out/BUILDINFO"
for b in "${BINS[@]}"; do
  t=$(date +%s)
  log "go build $b (tags $TAGS)"
  run_logged "go build $b" "$LOGS/build-$b.log" \
    nice -n 10 go build -trimpath -tags "$TAGS" -ldflags "$LDFLAGS" -o "$WORK/out/bin/$b" "k8s.io/kubernetes/cmd/$b"
  secs=$(( $(date +%s) - t ))
  log "built $b in ${secs}s ($(( $(stat -c %s "$WORK/out/bin/$b") / 1048576 )) MiB)"
  echo "build-time $b ${secs}s" >> "$WORK/out/BUILDINFO"
done
got="$("$WORK/out/bin/kubectl" version --client --short 2>/dev/null || true)"
[[ "$got" == *"v$UPSTREAM"* ]] || die "built kubectl reports '$got', expected v$UPSTREAM (version ldflags)"
echo "total ${SECONDS}s" >> "$WORK/out/BUILDINFO"

# --- 6. publish atomically ----------------------------------------------------------------------
rm -rf "$ENTRY.old"
[ ! -e "$ENTRY" ] || mv "$ENTRY" "$ENTRY.old"
mv "$WORK/out" "$ENTRY"
rm -rf "$ENTRY.old"
link_bin "$ENTRY/bin"
# Older recipes' binaries: the two newest entries stay (another checkout may still link one).
ls -1dt "$CACHE"/*/BUILDINFO 2>/dev/null | tail -n +3 | while read -r old; do
  old="$(dirname "$old")"
  [ "$old" = "$ENTRY" ] || { log "pruning $old"; rm -rf "$old"; }
done
log "done in $(( $(date +%s) - T_START ))s: $ENTRY/bin (GOCACHE $GOCACHE, $(du -sh "$GOCACHE" | cut -f1))"
