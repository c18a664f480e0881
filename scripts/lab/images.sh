#!/usr/bin/env bash
# Builds the lab's two container images locally, with no registry, as docker-archive tarballs that
# `ctr -n k8s.io images import` loads:
#   build/images/lab-pause.tar  lab/pause:3.2  static pause (scripts/lab/images/pause.c); containerd's sandbox_image
#   build/images/lab-tools.tar  lab/tools:1    busybox-static with every applet linked (sh, nc, ping, httpd, ip, ...)
# Reproducible: one layer per image, tar sorted by name with mtime 0 and uid/gid 0, the config
# named by its sha256, fixed creation dates; the same inputs give byte-identical archives.
# Cached: an archive is rebuilt only when its inputs (this script, pause.c, the compiler and libc,
# the busybox binary) changed, recorded next to it in build/images/.<name>.inputs.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SELF="$REPO/scripts/lab/images.sh"
PAUSE_C="$REPO/scripts/lab/images/pause.c"
OUT="$REPO/build/images"
BUSYBOX=/bin/busybox

log() { echo "images: $*" >&2; }
die() { echo "images: ERROR: $*" >&2; exit 1; }

for tool in gcc strip readelf tar sha256sum dpkg; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (run scripts/lab/install-lab-deps.sh)"
done
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found (install busybox-static: scripts/lab/install-lab-deps.sh)"
"$BUSYBOX" --list-full >/dev/null 2>&1 || die "$BUSYBOX does not list its applets (is it busybox-static?)"
# A dynamically linked busybox (package "busybox") would not run in an image without a libc.
if readelf -l "$BUSYBOX" 2>/dev/null | grep -q 'program interpreter'; then
  die "$BUSYBOX is dynamically linked; the tools image needs busybox-static"
fi
ARCH="$(dpkg --print-architecture)"
mkdir -p "$OUT"
umask 022

WORK="$(mktemp -d "$REPO/build/.lab-images.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# mkimage NAME ROOTFS CONFIG_JSON OUT: a docker-archive with one layer made of ROOTFS.
mkimage() {
  local name="$1" rootfs="$2" config="$3" out="$4" d diff cfg
  d="$(mktemp -d "$WORK/img.XXXXXX")"
  tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 --format=gnu \
      -C "$rootfs" -cf "$d/layer.tar" .
  diff="$(sha256sum "$d/layer.tar" | cut -d' ' -f1)"
  mkdir "$d/$diff"; mv "$d/layer.tar" "$d/$diff/layer.tar"
  printf '{"architecture":"%s","os":"linux","created":"1970-01-01T00:00:00Z","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"ovnode scripts/lab/images.sh"}]}' \
    "$ARCH" "$config" "$diff" > "$d/config.json"
  cfg="$(sha256sum "$d/config.json" | cut -d' ' -f1)"
  mv "$d/config.json" "$d/$cfg.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$cfg" "$name" "$diff" > "$d/manifest.json"
  touch -h -d @0 "$d/$diff" "$d/$diff/layer.tar" "$d/$cfg.json" "$d/manifest.json"
  tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 --format=gnu \
      -C "$d" -cf "$WORK/out.tar" manifest.json "$cfg.json" "$diff"
  mv -f "$WORK/out.tar" "$out"
  log "$(basename "$out"): $name config sha256:${cfg:0:12} layer sha256:${diff:0:12}"
}

# up_to_date NAME HASH: the archive exists and was made from inputs hashing to HASH.
up_to_date() {
  [ -f "$OUT/$1.tar" ] && [ "$(cat "$OUT/.$1.inputs" 2>/dev/null)" = "$2" ]
}

# --- lab/pause:3.2 --------------------------------------------------------------------------------
pause_inputs="$( { sha256sum "$SELF" "$PAUSE_C" | cut -d' ' -f1; gcc --version | head -n1;
  dpkg-query -W -f='${Version}\n' libc6-dev; } | sha256sum | cut -d' ' -f1)"
if up_to_date lab-pause "$pause_inputs"; then
  log "lab-pause.tar up to date"
else
  mkdir -p "$WORK/pause-root"
  gcc -Os -static -Wall -Werror -o "$WORK/pause-root/pause" "$PAUSE_C" || die "compiling $PAUSE_C failed"
  strip "$WORK/pause-root/pause"
  chmod 0755 "$WORK/pause-root" "$WORK/pause-root/pause"
  mkimage lab/pause:3.2 "$WORK/pause-root" \
    '{"Entrypoint":["/pause"],"Env":["PATH=/"],"WorkingDir":"/"}' "$OUT/lab-pause.tar"
  printf '%s\n' "$pause_inputs" > "$OUT/.lab-pause.inputs"
fi

# --- lab/tools:1 ----------------------------------------------------------------------------------
tools_inputs="$(sha256sum "$SELF" "$BUSYBOX" | cut -d' ' -f1 | sha256sum | cut -d' ' -f1)"
if up_to_date lab-tools "$tools_inputs"; then
  log "lab-tools.tar up to date"
else
  R="$WORK/tools-root"
  mkdir -p "$R/bin" "$R/sbin" "$R/usr/bin" "$R/usr/sbin" "$R/etc" "$R/root" "$R/proc" "$R/sys" \
           "$R/dev" "$R/run" "$R/var/www" "$R/tmp"
  cp "$BUSYBOX" "$R/bin/busybox"
  while read -r applet; do
    [ "$applet" = bin/busybox ] || ln -sfn /bin/busybox "$R/$applet"
  done < <("$BUSYBOX" --list-full)
  [ -L "$R/bin/sh" ] && [ -L "$R/usr/bin/nc" ] || die "busybox applets sh/nc missing from $BUSYBOX --list-full"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$R/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$R/etc/group"
  find "$R" -type d -exec chmod 0755 {} +
  chmod 0644 "$R/etc/passwd" "$R/etc/group"
  chmod 1777 "$R/tmp"
  mkimage lab/tools:1 "$R" \
    '{"Cmd":["/bin/sh"],"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"WorkingDir":"/"}' "$OUT/lab-tools.tar"
  printf '%s\n' "$tools_inputs" > "$OUT/.lab-tools.inputs"
fi
