#!/usr/bin/env bash
# Builds libcni's `cnitool` from Debian's source package golang-github-appc-cni into
# <repo>/build/tools/cnitool. Idempotent: exits at once if the binary is already there and
# executable, unless FORCE=1.
#
# golang-github-appc-cni-dev (installed by install-deps.sh) does not ship cnitool/, so the Debian
# *source* package is fetched instead. The deb-src entry is derived from the machine's own
# /etc/apt/sources.list.d/*.sources (the main Debian archive stanza with the `bookworm` suite), and
# apt runs with a private state directory under build/apt, so /etc/apt and /var/lib/apt are left
# alone. The build is GOPATH mode against /usr/share/gocode: no module download.
set -euo pipefail

SUITE=bookworm
SRC_PKG=golang-github-appc-cni

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$REPO/build"
OUT="$BUILD/tools/cnitool"
APT_DIR="$BUILD/apt"
SRC_DIR="$APT_DIR/src"
GOPATH_DIR="$BUILD/gopath"
PKG_DIR="$GOPATH_DIR/src/github.com/containernetworking/cni/cnitool"
GOCACHE_DIR="$BUILD/gocache"
LOG_DIR="$APT_DIR/logs"

log() { echo "build-cnitool: $*" >&2; }
die() { echo "build-cnitool: ERROR: $*" >&2; exit 1; }
trap 'rc=$?; echo "build-cnitool: ERROR: command failed (exit $rc) at line $LINENO: $BASH_COMMAND" >&2' ERR

# run_logged <what> <logfile> <cmd...>: runs cmd with output in logfile; on failure says what
# failed and shows the end of the log.
run_logged() {
  local what="$1" logf="$2"; shift 2
  if ! "$@" >"$logf" 2>&1; then
    echo "build-cnitool: ERROR: $what failed; last lines of $logf:" >&2
    tail -n 25 "$logf" | sed 's/^/  | /' >&2
    exit 1
  fi
}

if [ "${FORCE:-0}" != 1 ] && [ -f "$OUT" ] && [ -x "$OUT" ]; then
  echo "$OUT"
  exit 0
fi

for tool in apt-get dpkg-source go awk; do
  command -v "$tool" >/dev/null 2>&1 \
    || die "'$tool' not found (run scripts/install-deps.sh: needs apt, dpkg-dev, golang-go)"
done
[ -d /usr/share/gocode/src/github.com/containernetworking/cni/libcni ] \
  || die "/usr/share/gocode/src/github.com/containernetworking/cni/libcni missing (install golang-github-appc-cni-dev)"

# --- 1. private apt for the machine's own Debian archive ---------------------------------------
# shellcheck source=lib/debian-apt.sh
. "$REPO/scripts/lib/debian-apt.sh"
STANZA="$(debian_src_stanza "$SUITE")" || die "reading the machine's apt sources failed"
[ -n "$STANZA" ] || die "no enabled 'Types: deb' stanza of the main Debian archive with suite '$SUITE' in /etc/apt/sources.list.d/*.sources"
mkdir -p "$BUILD/tools" || die "cannot create $BUILD/tools"
private_apt_init "$APT_DIR" "$STANZA" || die "cannot lay out the private apt state in $APT_DIR"
log "deb-src: $(stanza_uri "$STANZA") $SUITE"

log "apt-get update (private state in $APT_DIR)"
run_logged "apt-get update of the private deb-src list" "$LOG_DIR/apt-update.log" \
  private_apt -q update
# apt-get update exits 0 on some fetch failures; make sure a Sources index actually arrived.
compgen -G "$APT_DIR/lists/*_Sources*" >/dev/null \
  || die "apt-get update fetched no Sources index (see $LOG_DIR/apt-update.log)"

# --- 3. fetch and unpack the source package ------------------------------------------------------
rm -rf "$SRC_DIR"
mkdir -p "$SRC_DIR"
log "apt-get source --download-only $SRC_PKG"
(cd "$SRC_DIR" && private_apt -q source --download-only "$SRC_PKG") \
  >"$LOG_DIR/apt-source.log" 2>&1 || {
    echo "build-cnitool: ERROR: apt-get source --download-only $SRC_PKG failed; last lines of $LOG_DIR/apt-source.log:" >&2
    tail -n 25 "$LOG_DIR/apt-source.log" | sed 's/^/  | /' >&2
    exit 1
  }
shopt -s nullglob
DSCS=("$SRC_DIR"/"$SRC_PKG"_*.dsc)
shopt -u nullglob
[ "${#DSCS[@]}" -eq 1 ] || die "expected exactly one $SRC_PKG .dsc in $SRC_DIR, found ${#DSCS[@]}"
DSC="${DSCS[0]}"

log "dpkg-source -x $(basename "$DSC")"
run_logged "dpkg-source -x $DSC" "$LOG_DIR/dpkg-source.log" \
  dpkg-source -x "$DSC" "$SRC_DIR/unpacked"
CNITOOL_GO="$SRC_DIR/unpacked/cnitool/cnitool.go"
[ -f "$CNITOOL_GO" ] || die "$CNITOOL_GO not found in the unpacked source package"

# --- 4. build in GOPATH mode ---------------------------------------------------------------------
rm -rf "$PKG_DIR"
mkdir -p "$PKG_DIR"
cp "$CNITOOL_GO" "$PKG_DIR/" || die "cannot copy cnitool.go to $PKG_DIR"
log "go build (GOPATH mode)"
(
  cd "$PKG_DIR"
  GO111MODULE=off GOFLAGS= GOPATH="$GOPATH_DIR:/usr/share/gocode" CGO_ENABLED=0 \
    GOCACHE="$GOCACHE_DIR" go build -trimpath -o "$OUT" .
) || die "go build of cnitool in $PKG_DIR failed"
[ -x "$OUT" ] || die "go build succeeded but $OUT is not an executable file"

echo "$OUT"
