#!/usr/bin/env bash
# exec.sh NODE CMD...: runs CMD in NODE's network and mount namespaces (what containerd, kubelet
# and hostNetwork pods of that node see: its /etc/cni/net.d, /opt/cni/bin, /run/netns, ...).
# Example: scripts/lab/exec.sh node1 ctr -n k8s.io images ls
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
[ "$#" -ge 2 ] || lab_die "usage: exec.sh NODE CMD..."
node="$1"; shift
run="$(lab_current_run)" || lab_die "no lab is up (scripts/lab/up.sh)"
lab_load_run "$run"
D="$(node_dir "$node")"
[ -d "$D" ] || lab_die "no node '$node' in run $RID"
holder="$(recorded_pid "$D/pids/holder.pid")" || lab_die "$node: its mount namespace holder is gone"
exec nsenter --net="/run/netns/$(netns_name "$node")" --mount="/proc/$holder/ns/mnt" -- "$@"
