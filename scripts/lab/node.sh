#!/usr/bin/env bash
# node.sh stop [--all-processes] NODE | start NODE
#   stop     kills NODE's containerd and kubelet (and the wrapper that started them). Containers
#            keep running, as when a node's runtime and agent crash: their shims survive.
#            --all-processes also kills every process of the node's pods and the shims (through
#            the node's cgroups), as when the whole machine goes down.
#   start    starts containerd and kubelet again in the same netns and mount namespace, imports
#            build/images/*.tar, and puts back the host sysctls once kubelet has rewritten them.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
usage() { lab_die "usage: node.sh stop [--all-processes] NODE | node.sh start NODE"; }
cmd="${1:-}"; shift || true
all=0
if [ "${1:-}" = --all-processes ]; then all=1; shift; fi
[ "$#" -eq 1 ] || usage
n="$1"
lab_lock
run="$(lab_current_run)" || lab_die "no lab is up (scripts/lab/up.sh)"
lab_load_run "$run"
D="$(node_dir "$n")"
[ -f "$D/node.env" ] || lab_die "no node '$n' in run $RID"
T0=$(date +%s.%N)
el() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1fs", b - a }'; }
case "$cmd" in
  stop)
    stop_recorded "$D/pids/kubelet.pid" "$D/pids/containerd.pid" "$D/pids/wrapper.pid"
    if [ "$all" = 1 ]; then
      cg_kill "$CGNAME/$n-sys"
      cg_kill "$CGNAME/$n"
    fi
    lab_log "$n stopped$([ "$all" = 1 ] && echo ' with all its processes') in $(el)"
    ;;
  start)
    [ "$all" = 0 ] || usage
    recorded_pid "$D/pids/wrapper.pid" >/dev/null && lab_die "$n is running (node.sh stop $n first)"
    # A kubelet or containerd whose wrapper died would fight the new ones.
    stop_recorded "$D/pids/kubelet.pid" "$D/pids/containerd.pid"
    seen="$RUN/state/events-seen.$n"
    event_names NodeAllocatableEnforced > "$seen"
    start_node_wrapper "$n" >/dev/null
    ok=0
    wait_kubelets_tuned 90 "$seen" "$n" && ok=1
    sysctls_restore
    rm -f "$seen"
    [ "$ok" = 1 ] || lab_die "$n: kubelet did not report NodeAllocatableEnforced within 90 s (see $RUN/logs/$n-kubelet.log)"
    lab_log "$n started in $(el), host sysctls restored"
    ;;
  *) usage ;;
esac
write_lab_json
