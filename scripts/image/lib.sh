# shellcheck shell=bash
# Sourced by scripts/build-image.sh (and hashed into the rootfs cache key with make-rootfs.sh:
# a change here rebuilds the rootfs).

# repro_tar DIR OUT [TAR-ARGS...]: (OUT - for stdout) a tar of DIR's entries (not of DIR itself, and with no "./"
# prefix, as image layers are written) that depends only on names, contents, modes and link
# targets: sorted names, every mtime 0, owner and group 0 by number, no atime/ctime, no
# xattrs/ACLs, and PaxHeaders names without the pid. Same inputs, same bytes, same digest.
repro_tar() {
  local dir="$1" out="$2" members=()
  shift 2
  mapfile -t members < <(find "$dir" -mindepth 1 -maxdepth 1 -printf '%P\n' | LC_ALL=C sort)
  [ "${#members[@]}" -gt 0 ] || { echo "repro_tar: $dir is empty" >&2; return 1; }
  LC_ALL=C tar --create --file="$out" --directory="$dir" \
      --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
      --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
      --no-acls --no-xattrs --no-selinux "$@" -- "${members[@]}"
}

# image_apt_stanzas: deb822 stanzas (blank-line separated) for Debian bookworm and, where the
# machine has them, bookworm-updates and bookworm-security, all taken from the machine's own apt
# sources (debian_src_stanza). Fails when there is no bookworm archive at all.
image_apt_stanzas() {
  local suite stanza out=""
  for suite in bookworm bookworm-updates bookworm-security; do
    stanza=$(debian_src_stanza "$suite" deb) || return 1
    if [ -z "$stanza" ]; then
      if [ "$suite" = bookworm ]; then
        echo "build-image: no enabled Debian bookworm 'deb' source in /etc/apt/sources.list.d/*.sources" >&2
        return 1
      fi
      continue
    fi
    out+="${out:+$'\n\n'}$stanza"
  done
  printf '%s\n' "$out"
}
