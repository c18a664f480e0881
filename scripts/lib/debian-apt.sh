# Sourced, not run. Private apt for fetching Debian *source* packages (and, for the image, binary
# packages) without touching /etc/apt or /var/lib/apt.
#
#   debian_src_stanza SUITE [TYPES]  prints a stanza (Types: TYPES, default deb-src) for the
#                                    machine's main Debian archive
#   private_apt_init DIR STANZA      lays out DIR (sources, lists, cache, tmp, logs) for that stanza
#   private_apt ARGS...              apt-get with the private state of the last private_apt_init
#
# The archive URI comes from the machine's own /etc/apt/sources.list.d/*.sources, so no host name
# is written anywhere in the repository.
#
# apt's signature check (gpgv through apt-key) runs as the sandbox user _apt and writes a
# temporary file under $TMPDIR, falling back to /tmp. On some machines /tmp is not writable by
# _apt (CI saw "Couldn't create temporary file /tmp/apt.conf.* for passing config to apt-key"), and
# a private state directory under a root-only checkout is not readable by _apt either. So the
# private apt gets its own TMPDIR and runs its methods as root: it only ever writes below DIR.

# debian_src_stanza SUITE: the first enabled `Types: deb` stanza with exactly SUITE among its
# suites (so -security/-updates alone never match) that is the main Debian archive (signed by a
# debian-archive-* keyring or, without Signed-By, a URI path ending in /debian), printed back as a
# stanza of TYPES with `Suites: SUITE`; URIs, Components, Signed-By and the rest are kept verbatim.
debian_src_stanza() {
  local suite="$1" types="${2:-deb-src}" files=()
  shopt -s nullglob
  files=(/etc/apt/sources.list.d/*.sources)
  shopt -u nullglob
  if [ "${#files[@]}" -eq 0 ]; then
    echo "debian-apt: no /etc/apt/sources.list.d/*.sources file found" >&2
    return 1
  fi
  awk -v suite="$suite" -v types="$types" '
    function reset() { n = 0; delete lines; delete lines_name; delete fld; cur = "" }
    function has_word(s, w,   a, i, k) {
      k = split(s, a, /[ \t\n]+/)
      for (i = 1; i <= k; i++) if (a[i] == w) return 1
      return 0
    }
    function is_debian_archive(   a, i, k, u) {
      if (fld["signed-by"] != "") return (fld["signed-by"] ~ /debian-archive-/)
      k = split(fld["uris"], a, /[ \t\n]+/)
      for (i = 1; i <= k; i++) { u = a[i]; sub(/\/+$/, "", u); if (u ~ /\/debian$/) return 1 }
      return 0
    }
    function flush(   i, name) {
      if (n > 0 && !done && has_word(fld["types"], "deb") && has_word(fld["suites"], suite) \
          && tolower(fld["enabled"]) !~ /^[ \t]*no[ \t]*$/ && fld["uris"] != "" && is_debian_archive()) {
        print "Types: " types
        print "Suites: " suite
        for (i = 1; i <= n; i++) {
          name = lines_name[i]
          if (name == "types" || name == "suites" || name == "enabled") continue
          print lines[i]
        }
        done = 1
      }
      reset()
    }
    BEGIN { done = 0; reset() }
    FNR == 1 { flush() }
    /^#/ { next }
    /^[ \t]*$/ { flush(); next }
    /^[ \t]/ { if (cur != "") { n++; lines[n] = $0; lines_name[n] = cur; fld[cur] = fld[cur] "\n" $0 }; next }
    {
      p = index($0, ":"); if (p == 0) next
      cur = tolower(substr($0, 1, p - 1)); v = substr($0, p + 1)
      n++; lines[n] = $0; lines_name[n] = cur; fld[cur] = v
    }
    END { flush() }
  ' "${files[@]}"
}

# The archive URI of a stanza, for log lines.
stanza_uri() {
  printf '%s\n' "$1" | awk 'tolower($1) == "uris:" { $1 = ""; sub(/^ /, ""); print; exit }'
}

PRIVATE_APT_DIR=""
PRIVATE_APT_OPTS=()

private_apt_init() {
  local dir="$1" stanza="$2"
  mkdir -p "$dir/sources.list.d" "$dir/lists/partial" "$dir/cache/archives/partial" \
           "$dir/tmp" "$dir/logs" "$dir/etc/preferences.d" "$dir/etc/apt.conf.d" || return 1
  rm -f "$dir/sources.list.d/"*
  printf '%s\n' "$stanza" > "$dir/sources.list.d/debian.sources" || return 1
  [ -e "$dir/status" ] || : > "$dir/status"
  PRIVATE_APT_DIR="$dir"
  PRIVATE_APT_OPTS=(
    -o "Dir::Etc::SourceList=/dev/null"
    -o "Dir::Etc::SourceParts=$dir/sources.list.d"
    -o "Dir::Etc::Preferences=/dev/null"
    -o "Dir::Etc::PreferencesParts=$dir/etc/preferences.d"
    -o "Dir::State::Lists=$dir/lists"
    -o "Dir::State::status=$dir/status"
    -o "Dir::Cache=$dir/cache"
    -o "APT::Sandbox::User=root"
  )
}

private_apt() {
  [ -n "$PRIVATE_APT_DIR" ] || { echo "debian-apt: private_apt_init was not called" >&2; return 1; }
  TMPDIR="$PRIVATE_APT_DIR/tmp" apt-get "${PRIVATE_APT_OPTS[@]}" "$@"
}
