#!/usr/bin/env bash
# node-wrapper.sh NODE_DIR: containerd and kubelet of one node, started in the node's netns and
# mount namespace (entered by start_node_wrapper in common.sh). Imports every build/images/*.tar
# into containerd's k8s.io namespace before kubelet starts. TERM stops both; a node "crash" is
# node.sh stop (which kills them by their recorded pids).
set -uo pipefail
D="$1"
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck disable=SC1091
. "$D/node.env"
export PATH="$NODE_PATH"
cd /

# up.sh starts the wrapper while the apiserver is still starting, and releases kubelet through this
# fifo once the apiserver is ready: kubelet's first events (one of them tells up.sh that the
# kernel tunables were rewritten) would otherwise wait for the event sink's 10 s retry.
gate="$D/kubelet.gate"
if [ -p "$gate" ]; then exec 3<>"$gate"; else gate=""; fi

kpid=""; cpid=""
trap '[ -z "$kpid" ] || kill -TERM "$kpid" 2>/dev/null; [ -z "$cpid" ] || kill -TERM "$cpid" 2>/dev/null; wait; exit 0' TERM INT

containerd --config "$D/containerd.toml" >> "$LOGS/$NAME-containerd.log" 2>&1 3>&- &
cpid=$!
record_pid "$D/pids/containerd.pid" "$cpid"
for _ in $(seq 1 300); do
  ctr version >/dev/null 2>&1 && break
  kill -0 "$cpid" 2>/dev/null || { echo "node-wrapper: containerd exited; see $LOGS/$NAME-containerd.log" >&2; exit 1; }
  sleep 0.1
done
ctr version >/dev/null 2>&1 || { echo "node-wrapper: containerd not answering after 30 s; see $LOGS/$NAME-containerd.log" >&2; exit 1; }

# containerd's store outlives a restart of the node: an archive already imported unchanged is skipped.
mkdir -p "$D/imported"
for t in "$IMAGES"/*.tar; do
  [ -f "$t" ] || continue
  stamp="$D/imported/$(basename "$t")"
  key="$(stat -c '%s %Y' "$t")"
  [ "$(cat "$stamp" 2>/dev/null)" = "$key" ] && continue
  if ctr -n k8s.io images import "$t" >/dev/null 2>>"$LOGS/$NAME-wrapper.log"; then
    echo "$key" > "$stamp"
  else
    echo "node-wrapper: importing $t failed" >&2
  fi
done
echo "node-wrapper: $NAME images: $(ctr -n k8s.io images ls -q | grep -v '^sha256:' | tr '\n' ' ')" >&2

if [ -n "$gate" ]; then
  read -r -t 120 -u 3 _ || echo "node-wrapper: no go from up.sh within 120 s; starting kubelet anyway" >&2
  exec 3>&-
fi

"$BIN/kubelet" --config="$D/kubelet.yaml" --kubeconfig="$D/kubelet.kubeconfig" \
  --container-runtime=remote --container-runtime-endpoint=unix:///run/containerd/containerd.sock \
  --hostname-override="$NAME" --node-ip="$IP" --pod-infra-container-image=lab/pause:3.2 \
  --volume-plugin-dir=/var/lib/kubelet/volume-plugins --v=1 \
  >> "$LOGS/$NAME-kubelet.log" 2>&1 &
kpid=$!
record_pid "$D/pids/kubelet.pid" "$kpid"
wait
