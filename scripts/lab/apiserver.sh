#!/usr/bin/env bash
# apiserver.sh restart|stop|start: stops kube-apiserver (TERM, then KILL after 5 s) and/or starts
# it again with the flags up.sh used, waiting until /readyz answers. Updates lab.json.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cmd="${1:-}"
case "$cmd" in restart|stop|start) ;; *) lab_die "usage: apiserver.sh restart|stop|start" ;; esac
lab_lock
run="$(lab_current_run)" || lab_die "no lab is up (scripts/lab/up.sh)"
lab_load_run "$run"
T0=$(date +%s.%N)
if [ "$cmd" != start ]; then
  stop_recorded "$RUN/state/apiserver.pid"
  lab_log "apiserver stopped"
fi
if [ "$cmd" != stop ]; then
  recorded_pid "$RUN/state/apiserver.pid" >/dev/null && lab_die "apiserver is already running"
  start_apiserver
  wait_apiserver 60 || lab_die "kube-apiserver did not become ready (see $RUN/logs/apiserver.log)"
  lab_log "apiserver ready in $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"
fi
write_lab_json
