#!/usr/bin/env bash
# multus-image.sh [BIN_DIR]: builds the lab image lab/multus:4.0.2 as a docker-archive,
# build/images/lab-multus.tar, from the binaries scripts/lab/build-multus.sh made (BIN_DIR,
# default build/multus/bin) and Debian's busybox-static. No registry: nodes import every
# build/images/*.tar when they start (scripts/lab/up.sh), scripts/lab/load-images.sh into running ones.
#
# Contents (one layer):
#   /usr/src/multus-cni/bin/multus           the thin plugin thin_entrypoint copies to the node
#   /usr/src/multus-cni/bin/thin_entrypoint  where upstream's image keeps both
#   /usr/src/multus-cni/LICENSE              Multus is Apache-2.0
#   /bin/busybox + applets                   the shell the DaemonSet's start script needs
# Reproducible as scripts/lab/images.sh: tar sorted by name with mtime 0 and uid/gid 0, config
# named by its sha256, fixed dates. Cached: rebuilt only when its inputs (this script, the
# binaries, busybox) changed, recorded in build/images/.lab-multus.inputs.
set -euo pipefail

NAME=lab/multus:4.0.2
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SELF="$REPO/scripts/lab/multus-image.sh"
BIN="${1:-$REPO/build/multus/bin}"
OUT="$REPO/build/images"
ARCHIVE="$OUT/lab-multus.tar"
BUSYBOX=/bin/busybox

log() { echo "multus-image: $*" >&2; }
die() { echo "multus-image: ERROR: $*" >&2; exit 1; }

for tool in tar sha256sum readelf dpkg; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (run scripts/lab/install-lab-deps.sh)"
done
for b in multus thin_entrypoint; do
  [ -x "$BIN/$b" ] || die "$BIN/$b not found (run scripts/lab/build-multus.sh)"
done
[ -f "$BIN/../LICENSE" ] || die "$BIN/../LICENSE not found (run scripts/lab/build-multus.sh)"
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found (install busybox-static: scripts/lab/install-lab-deps.sh)"
# A dynamically linked busybox (package "busybox") would not run in an image without a libc.
if readelf -l "$BUSYBOX" 2>/dev/null | grep -q 'program interpreter'; then
  die "$BUSYBOX is dynamically linked; the multus image needs busybox-static"
fi

inputs="$(sha256sum "$SELF" "$BIN/multus" "$BIN/thin_entrypoint" "$BIN/../LICENSE" "$BUSYBOX" \
  | cut -d' ' -f1 | sha256sum | cut -d' ' -f1)"
if [ -f "$ARCHIVE" ] && [ "$(cat "$OUT/.lab-multus.inputs" 2>/dev/null)" = "$inputs" ]; then
  log "lab-multus.tar up to date"
  exit 0
fi

ARCH="$(dpkg --print-architecture)"
mkdir -p "$OUT"
umask 022
WORK="$(mktemp -d "$REPO/build/.lab-multus-image.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# --- root filesystem ---------------------------------------------------------------------------
R="$WORK/root"
mkdir -p "$R/usr/src/multus-cni/bin" "$R/bin" "$R/sbin" "$R/usr/bin" "$R/usr/sbin" "$R/etc" \
         "$R/proc" "$R/sys" "$R/dev" "$R/run" "$R/tmp"
cp "$BIN/multus" "$BIN/thin_entrypoint" "$R/usr/src/multus-cni/bin/"
cp "$BIN/../LICENSE" "$R/usr/src/multus-cni/LICENSE"
cp "$BUSYBOX" "$R/bin/busybox"
while read -r applet; do
  [ "$applet" = bin/busybox ] || ln -sfn /bin/busybox "$R/$applet"
done < <("$BUSYBOX" --list-full)
[ -L "$R/bin/sh" ] && [ -L "$R/bin/sleep" ] && [ -L "$R/usr/bin/cmp" ] \
  || die "busybox applets sh/sleep/cmp missing from $BUSYBOX --list-full"
printf 'root:x:0:0:root:/:/bin/sh\n' > "$R/etc/passwd"
printf 'root:x:0:\n' > "$R/etc/group"
find "$R" -type d -exec chmod 0755 {} +
chmod 0755 "$R/usr/src/multus-cni/bin/multus" "$R/usr/src/multus-cni/bin/thin_entrypoint" "$R/bin/busybox"
chmod 0644 "$R/usr/src/multus-cni/LICENSE" "$R/etc/passwd" "$R/etc/group"
chmod 1777 "$R/tmp"

# --- docker-archive: manifest.json, <config sha256>.json, <layer diff id>/layer.tar -------------
d="$WORK/img"
mkdir "$d"
tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 --format=gnu -C "$R" -cf "$d/layer.tar" .
diff="$(sha256sum "$d/layer.tar" | cut -d' ' -f1)"
mkdir "$d/$diff"; mv "$d/layer.tar" "$d/$diff/layer.tar"
printf '{"architecture":"%s","os":"linux","created":"1970-01-01T00:00:00Z","config":{"Cmd":["/usr/src/multus-cni/bin/thin_entrypoint"],"Env":["PATH=/usr/src/multus-cni/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"ovnode scripts/lab/multus-image.sh"}]}' \
  "$ARCH" "$diff" > "$d/config.json"
cfg="$(sha256sum "$d/config.json" | cut -d' ' -f1)"
mv "$d/config.json" "$d/$cfg.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$cfg" "$NAME" "$diff" > "$d/manifest.json"
touch -h -d @0 "$d/$diff" "$d/$diff/layer.tar" "$d/$cfg.json" "$d/manifest.json"
tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 --format=gnu \
    -C "$d" -cf "$WORK/out.tar" manifest.json "$cfg.json" "$diff"
mv -f "$WORK/out.tar" "$ARCHIVE"
printf '%s\n' "$inputs" > "$OUT/.lab-multus.inputs"
log "lab-multus.tar: $NAME config sha256:${cfg:0:12} layer sha256:${diff:0:12}"
