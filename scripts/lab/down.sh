#!/usr/bin/env bash
# Removes the lab up.sh made, also after a failed or interrupted up: processes (by their recorded
# pid, then whatever is left in the run's cgroups), the network namespaces, the cgroups in every
# hierarchy, the host sysctls kubelet rewrote, and the host directories up.sh created as mount
# points. All the lab's mounts lived in its own mount namespaces and went with them. The logs of
# the last run stay in build/lab/last-logs; the certificates in build/lab/pki. Idempotent.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
T0=$(date +%s.%N)
lab_lock
found=0
for run in "$LAB"/runs/*/; do
  [ -d "$run" ] || continue
  found=1
  lab_teardown_run "${run%/}"
done
rmdir "$LAB/runs" 2>/dev/null || true
rm -f "$LAB_JSON" "$LAB_JSON.tmp" "$LAB_ADMIN_KUBECONFIG"
if [ "$found" = 1 ]; then
  lab_log "down in $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')s"
else
  lab_log "nothing to take down"
fi
