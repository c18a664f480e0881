#!/usr/bin/env bash
# load-images.sh [ARCHIVE...]: imports docker-archive tarballs (default: every build/images/*.tar)
# into the k8s.io namespace of every running node's containerd. Nodes import build/images/*.tar
# themselves when they start; this is for an archive that appeared after up.sh.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
run="$(lab_current_run)" || lab_die "no lab is up (scripts/lab/up.sh)"
lab_load_run "$run"
archives=("$@")
[ "${#archives[@]}" -gt 0 ] || archives=("$LAB_IMAGES"/*.tar)
for a in "${archives[@]}"; do [ -f "$a" ] || lab_die "no archive $a"; done
for i in $(seq 1 "$NODES"); do
  n="$(node_name "$i")"
  recorded_pid "$(node_dir "$n")/pids/containerd.pid" >/dev/null || { lab_log "$n: containerd not running, skipped"; continue; }
  for a in "${archives[@]}"; do
    "$LAB_REPO/scripts/lab/exec.sh" "$n" ctr -n k8s.io images import "$(readlink -f "$a")" >/dev/null \
      || lab_die "$n: importing $a failed"
    # The same stamp node-wrapper.sh keeps, so a node restart does not import it again.
    mkdir -p "$(node_dir "$n")/imported"
    stat -c '%s %Y' "$a" > "$(node_dir "$n")/imported/$(basename "$a")"
  done
  lab_log "$n: imported ${#archives[@]} archive(s)"
done
