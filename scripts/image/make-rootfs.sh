#!/usr/bin/env bash
# make-rootfs.sh APT_DIR STANZA_FILE OUT_DIR
#
# Builds the root filesystem of the ovnode image at OUT_DIR/rootfs from Debian binary packages,
# without running any maintainer script: the dependency closure of scripts/image/packages.list is
# resolved by apt against an empty dpkg status (a private apt under APT_DIR, whose lists and .deb
# cache persist between builds), each .deb is unpacked with dpkg-deb, and what the maintainer
# scripts would have created and OVS, OVN or a shell need is created here. OUT_DIR/packages.txt
# lists "name version arch" of what went in. Called by scripts/build-image.sh, which caches the
# result keyed by a hash of this file, lib.sh, packages.list and the apt sources.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/../lib/debian-apt.sh
source "$here/../lib/debian-apt.sh"

apt_dir="$1" stanza_file="$2" out="$3"
root="$out/rootfs"
if [ "$(id -u)" != 0 ]; then echo "make-rootfs: run as root (chroot for ldconfig)" >&2; exit 1; fi
[ -d "$out" ] || { echo "make-rootfs: $out does not exist" >&2; exit 1; }
mkdir "$root"

mapfile -t wanted < <(sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$here/packages.list" | grep -v '^$')

private_apt_init "$apt_dir" "$(cat "$stanza_file")"
# Resolution must start from nothing installed: the closure is the image, not the difference to
# this machine.
: > "$apt_dir/status"
echo "make-rootfs: apt-get update ($(stanza_uri "$(cat "$stanza_file")"))"
private_apt update -q
apt_args=(install -q --no-install-recommends -o APT::Install-Suggests=false "${wanted[@]}")
sim=$(private_apt "${apt_args[@]}" -s)
# "Inst NAME (VERSION RELEASE... [ARCH])", sometimes followed by " [...]", for every package.
printf '%s\n' "$sim" | sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) [^[]*\[\([^]]*\)\]).*$/\1 \2 \3/p' | LC_ALL=C sort > "$out/packages.txt"
n=$(wc -l < "$out/packages.txt")
if [ "$n" -lt 20 ] || [ "$n" != "$(printf '%s\n' "$sim" | grep -c '^Inst ')" ]; then
  printf '%s\n' "$sim" >&2
  echo "make-rootfs: could not read the closure from apt's simulation (above; $n packages parsed)" >&2
  exit 1
fi
echo "make-rootfs: $n packages in the closure; downloading what the cache lacks"
private_apt "${apt_args[@]}" -y --download-only

debs=()
while read -r name version arch; do
  f="$apt_dir/cache/archives/${name}_${version//:/%3a}_${arch}.deb"
  [ -f "$f" ] || { echo "make-rootfs: $f missing after the download" >&2; exit 1; }
  debs+=("$f")
done < "$out/packages.txt"

# Merged /usr, as debootstrap lays out bookworm: the packages still ship /bin, /sbin, /lib and
# /lib64 paths, and tar's --keep-directory-symlink lands them in /usr.
mkdir -p "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib" "$root/usr/lib64"
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
# What base-files' postinst migrates to, in place before any package ships a path below it.
# Relative on purpose: tar follows a symlink in a path it extracts, and an absolute one would
# lead out of the rootfs into the build machine's /run.
mkdir -p "$root/run/lock" "$root/var"
ln -s ../run "$root/var/run"
ln -s ../run/lock "$root/var/lock"

# Documentation, manuals and translations are never read in a container; copyright files are
# kept (pruned below) because the licences ask for them to travel with the binaries.
excludes=(--exclude=./usr/share/man --exclude=./usr/share/info --exclude=./usr/share/locale
          --exclude=./usr/share/lintian --exclude=./usr/share/linda --exclude=./usr/share/doc-base)
mkdir -p "$out/lists"
for f in "${debs[@]}"; do
  name=$(basename "$f"); name=${name%%_*}
  dpkg-deb --fsys-tarfile "$f" \
    | tar -x -v -C "$root" --keep-directory-symlink --no-same-owner "${excludes[@]}" > "$out/lists/$name"
done
# A path two packages ship (e.g. /bin/x and /usr/bin/x once /bin is /usr/bin) would silently be
# the later package's; dpkg would have refused it. Say so.
dups=$(for f in "$out"/lists/*; do
         sed -e 's|^\./||' -e '/\/$/d' -e 's#^\(bin\|sbin\|lib\|lib64\)/#usr/\1/#' -e 's#^var/run/#run/#' -e 's#^var/lock/#run/lock/#' "$f" | LC_ALL=C sort -u
       done | LC_ALL=C sort | uniq -d)
if [ -n "$dups" ]; then
  echo "make-rootfs: WARNING: paths shipped by more than one package (the later one is kept):" >&2
  printf '%s\n' "$dups" | sed 's/^/  /' >&2
fi

find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete 2>/dev/null || true
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true

# --- What the maintainer scripts would have done (only what matters without dpkg) ---

# base-passwd: the initial account databases; passwd's shadowconfig then moves the password
# fields to shadow files (every account locked).
awk -F: -v OFS=: '{ $2 = "x"; print }' "$root/usr/share/base-passwd/passwd.master" > "$root/etc/passwd"
awk -F: -v OFS=: '{ $2 = "x"; print }' "$root/usr/share/base-passwd/group.master" > "$root/etc/group"
awk -F: '{ print $1 ":*::0:99999:7:::" }' "$root/etc/passwd" > "$root/etc/shadow"
awk -F: '{ print $1 ":*::" }' "$root/etc/group" > "$root/etc/gshadow"
chmod 0644 "$root/etc/passwd" "$root/etc/group"
chmod 0640 "$root/etc/shadow" "$root/etc/gshadow"

# base-files and libc-bin: default configuration files and the directory layout.
cp "$root/usr/share/base-files/profile" "$root/etc/profile"
cp "$root/usr/share/base-files/dot.profile" "$root/root/.profile"
cp "$root/usr/share/base-files/dot.bashrc" "$root/root/.bashrc"
cp "$root/usr/share/libc-bin/nsswitch.conf" "$root/etc/nsswitch.conf"
[ -e "$root/etc/dpkg/origins/debian" ] && ln -sfn debian "$root/etc/dpkg/origins/default"
for d in mnt srv opt etc/opt var/opt media var/mail proc sys dev; do mkdir -p "$root/$d"; chmod 0755 "$root/$d"; done
ln -sfn ../mail "$root/var/spool/mail"
mkdir -p "$root/run/lock" "$root/tmp" "$root/var/tmp"
chmod 1777 "$root/run/lock" "$root/tmp" "$root/var/tmp"
if [ ! -L "$root/var/run" ] || [ ! -L "$root/var/lock" ]; then
  echo "make-rootfs: /var/run or /var/lock was replaced by a package" >&2
  exit 1
fi
for d in /usr/local /usr/local/share /usr/local/bin /usr/local/lib /usr/local/sbin /usr/local/etc; do mkdir -p "$root$d"; done
: > "$root/var/log/wtmp"; : > "$root/var/log/btmp"; : > "$root/var/log/lastlog"
ln -sfn ../proc/self/mounts "$root/etc/mtab"
# A container runtime replaces these; a plain chroot (the tests) gets sane ones.
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
: > "$root/etc/resolv.conf"

# update-alternatives: the master links the postinsts create (slave links are manuals, dropped).
# ovs-vswitchd in particular exists only as an alternative.
alternatives=(
  "ovs-vswitchd /usr/sbin/ovs-vswitchd /usr/lib/openvswitch-switch/ovs-vswitchd required"
  "awk /usr/bin/awk /usr/bin/mawk required"
  "which /usr/bin/which /usr/bin/which.debianutils optional"
  "pager /usr/bin/pager /usr/bin/more optional"
  "rmt /usr/sbin/rmt /usr/sbin/rmt-tar optional"
)
mkdir -p "$root/etc/alternatives"
for a in "${alternatives[@]}"; do
  read -r alt link target need <<< "$a"
  if [ ! -e "$root$target" ]; then
    [ "$need" = required ] && { echo "make-rootfs: $target (alternative $alt) is not in any package" >&2; exit 1; }
    continue
  fi
  ln -sfn "$target" "$root/etc/alternatives/$alt"
  ln -sfn "/etc/alternatives/$alt" "$root$link"
done

# OVS/OVN default directories (the daemon points every program at its state dir, but ovs-vsctl
# and friends run by hand look here).
for d in etc/openvswitch var/lib/openvswitch var/log/openvswitch run/openvswitch \
         etc/ovn var/lib/ovn var/log/ovn run/ovn; do
  mkdir -p "$root/$d"
done

# dpkg's status database, so that `dpkg -l` and image scanners see what is installed.
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
for f in "${debs[@]}"; do
  dpkg-deb -f "$f" | awk 'NR == 1 { print; print "Status: install ok installed"; next } { print }'
  echo
done > "$root/var/lib/dpkg/status"
: > "$root/var/lib/dpkg/available"
dpkg --print-architecture > "$root/var/lib/dpkg/arch"

# libc-bin's trigger: the dynamic linker cache. The aux cache records inodes and times: not
# reproducible, and only a speed-up for the next ldconfig.
chroot "$root" /sbin/ldconfig
rm -rf "$root/var/cache/ldconfig/aux-cache"

# Everything the daemon runs resolves and starts (shared libraries included).
required=(sh bash ip ovsdb-server ovsdb-tool ovs-vswitchd ovs-appctl ovs-vsctl ovs-ofctl ovn-northd
          ovn-controller ovn-nbctl ovn-sbctl ovn-appctl ps)
# shellcheck disable=SC2016 # the script expands inside the chroot
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin /bin/sh -c '
  for c in "$@"; do command -v "$c" >/dev/null || { echo "make-rootfs: $c is not in the rootfs" >&2; exit 1; }; done
  ovsdb-tool --version >/dev/null && ovs-vswitchd --version >/dev/null && ovn-controller --version >/dev/null \
    && ovn-northd --version >/dev/null && ip -V >/dev/null
' sh "${required[@]}"
for s in /usr/share/openvswitch/vswitch.ovsschema /usr/share/ovn/ovn-nb.ovsschema /usr/share/ovn/ovn-sb.ovsschema; do
  [ -f "$root$s" ] || { echo "make-rootfs: $s is missing" >&2; exit 1; }
done
rm -rf "$out/lists"
echo "make-rootfs: $(du -sh "$root" | cut -f1) in $root"
