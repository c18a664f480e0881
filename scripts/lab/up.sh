#!/usr/bin/env bash
# Brings up the Kubernetes 1.20 lab: etcd, kube-apiserver, kube-controller-manager and
# kube-scheduler in a control-plane netns; NODES nodes, each with its own netns (eth0 on an
# underlay bridge that lives in a netns of its own), its own mount namespace (per-node
# /etc/cni/net.d, /opt/cni/bin, /run/netns, /var/lib/kubelet, ...), and its own containerd + kubelet.
# State: build/lab/lab.json (see scripts/lab/lib/common.sh for the layout). Nothing listens outside
# loopback in the root netns and no route is added there.
#
# Env: NODES (default 2), CNI=none|bridge (default none: nodes register but stay NotReady until a
# CNI config appears in their /etc/cni/net.d; bridge: Debian's bridge + host-local, one /24 per node,
# routed over the underlay, nodes Ready), LAB_FRESH=1 (tear down and start again even if a
# healthy lab with the same NODES/CNI is up), LAB_KEEP_FAILED=1 (leave a failed start for
# inspection; down.sh removes it).
#
# Prerequisites: scripts/lab/install-lab-deps.sh, build-kubernetes.sh, images.sh.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

NODES="${NODES:-2}"
CNI="${CNI:-none}"
[[ "$NODES" =~ ^[1-9][0-9]?$ ]] && [ "$NODES" -le 80 ] || lab_die "NODES must be 1..80 (got '$NODES')"
case "$CNI" in none|bridge) ;; *) lab_die "CNI must be none or bridge (got '$CNI')" ;; esac
T0=$(date +%s.%N)
el() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%5.1fs", b - a }'; }
step() { lab_log "$(el) $*"; }

lab_lock

# --- an existing lab: keep it if it is healthy and the same shape, else remove it ---------------
lab_healthy() {
  lab_load_run "$1" || return 1
  [ "$NODES" = "$2" ] && [ "$CNI" = "$3" ] || return 1
  [ -f "$LAB_JSON" ] && [ "$(jq -r '.status' "$LAB_JSON")" = up ] || return 1
  local f d
  for f in etcd apiserver controller-manager scheduler relay-root relay-cp; do
    recorded_pid "$RUN/state/$f.pid" >/dev/null || return 1
  done
  for d in "$RUN"/nodes/*/; do
    recorded_pid "$d/pids/holder.pid" >/dev/null && recorded_pid "$d/pids/kubelet.pid" >/dev/null || return 1
  done
  kc --request-timeout=3s get --raw /readyz >/dev/null 2>&1
}
want_nodes="$NODES"; want_cni="$CNI"
if old="$(lab_current_run)"; then
  if [ "${LAB_FRESH:-0}" != 1 ] && lab_healthy "$old" "$want_nodes" "$want_cni"; then
    lab_log "already up: run $RID ($NODES nodes, CNI=$CNI); LAB_FRESH=1 to start again"
    exit 0
  fi
  NODES="$want_nodes"; CNI="$want_cni"
fi
for old in "$LAB"/runs/*/; do
  [ -d "$old" ] || continue
  lab_teardown_run "${old%/}"
  NODES="$want_nodes"; CNI="$want_cni"
done

# --- prerequisites ------------------------------------------------------------------------------
BIN="$(readlink -f "$LAB_REPO/build/kube/bin" 2>/dev/null || true)"
for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do
  [ -n "$BIN" ] && [ -x "$BIN/$b" ] || lab_die "$LAB_REPO/build/kube/bin/$b missing: run scripts/lab/build-kubernetes.sh"
done
[ -f "$LAB_IMAGES/lab-pause.tar" ] || lab_die "$LAB_IMAGES/lab-pause.tar missing: run scripts/lab/images.sh"
for c in etcd containerd containerd-shim-runc-v2 runc ctr socat nsenter unshare setsid flock jq openssl ip iptables mountpoint; do
  command -v "$c" >/dev/null 2>&1 || lab_die "'$c' not found: run scripts/lab/install-lab-deps.sh"
done
for p in loopback bridge host-local portmap; do
  [ -x "/usr/lib/cni/$p" ] || lab_die "/usr/lib/cni/$p missing: install containernetworking-plugins"
done
[ -n "$(cgroup_track)" ] || lab_die "no cgroup2 hierarchy mounted (the lab tracks its processes there)"
[ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ] || lab_die "cgroup v2-only host: kubelet 1.20 needs the v1 (or hybrid) layout"

RID="$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
RUN="$LAB/runs/$RID"
CGNAME="ovnode-lab-$RID"
for p in $(seq 6443 6643); do
  ss -Hltn "sport = :$p" | grep -q . || { PORT=$p; break; }
done
[ -n "${PORT:-}" ] || lab_die "no free local port in 6443..6643 for the API relay"
mkdir -p "$RUN/state" "$RUN/logs" "$RUN/kubeconfig" "$RUN/nodes"
[ "${#RUN}" -lt 90 ] || lab_die "lab directory path too long for unix sockets: $RUN"
printf 'RID=%q\nNODES=%q\nCNI=%q\nBIN=%q\nPORT=%q\nCGNAME=%q\n' "$RID" "$NODES" "$CNI" "$BIN" "$PORT" "$CGNAME" > "$RUN/state/run.env"
# shellcheck disable=SC2034  # read by write_lab_json
LAB_STATUS=starting
# kubelet rewrites global sysctls when it starts: remember them before anything else happens.
sysctls_save

on_exit() {
  local rc=$?
  [ "$rc" = 0 ] && return 0
  lab_log "up FAILED (exit $rc) after $(el); logs: $RUN/logs"
  local f
  for f in "$RUN"/logs/*.log; do
    [ -s "$f" ] || continue
    echo "---- last lines of $f" >&2; tail -n 8 "$f" | sed 's/^/  | /' >&2
  done
  if [ "${LAB_KEEP_FAILED:-0}" = 1 ]; then
    lab_log "LAB_KEEP_FAILED=1: left as is; scripts/lab/down.sh removes it"
  else
    lab_log "tearing the partial lab down (logs go to $LAB/last-logs)"
    lab_teardown_run "$RUN" || true
  fi
}
trap on_exit EXIT
step "run $RID: $NODES nodes, CNI=$CNI, API relay 127.0.0.1:$PORT"

# --- certificates and kubeconfigs ---------------------------------------------------------------
pki_ensure "$NODES"
write_kubeconfig "$RUN/kubeconfig/admin.kubeconfig" "https://127.0.0.1:$PORT" admin
write_kubeconfig "$RUN/kubeconfig/controller-manager.kubeconfig" "https://127.0.0.1:$API_PORT" controller-manager
write_kubeconfig "$RUN/kubeconfig/scheduler.kubeconfig" "https://127.0.0.1:$API_PORT" scheduler

# --- cgroups: /CGNAME/{cp,<node>-ns,<node>-sys} hold our processes, /CGNAME/<node> is a kubelet's root
cg_mkdir_all "$CGNAME"
TRACK="$(cgroup_track)"
mkdir -p "$TRACK/$CGNAME/cp"
for i in $(seq 1 "$NODES"); do
  n="$(node_name "$i")"
  cg_mkdir_all "$CGNAME/$n"
  mkdir -p "$TRACK/$CGNAME/$n-ns" "$TRACK/$CGNAME/$n-sys"
done

# --- network: underlay bridge netns + control-plane netns -----------------------------------------
add_netns() { echo "$1" >> "$RUN/state/netns"; ip netns add "$1"; ip -n "$1" link set lo up; }
UL="$(netns_name ul)"; CPNS="$(netns_name cp)"
add_netns "$UL"
ip -n "$UL" link add br0 type bridge
ip -n "$UL" link set br0 up
# A second network for the overlay (Geneve between nodes), so that the nodes' API traffic on eth0
# never depends on the datapath: each node's eth1, $OVERLAY_PREFIX.(10+i)/24.
ip -n "$UL" link add br1 type bridge
ip -n "$UL" link set br1 up
add_netns "$CPNS"
ip -n "$UL" link add v-cp type veth peer name eth0 netns "$CPNS"
ip -n "$UL" link set v-cp master br0 up
ip -n "$CPNS" addr add "$CP_IP/24" dev eth0
ip -n "$CPNS" link set eth0 up

# --- control plane ------------------------------------------------------------------------------
start_etcd
start_apiserver
start_api_relay
step "control plane starting"

# --- nodes: netns, per-node directories, configs, mount namespaces (while the apiserver starts) ----
# Host directories that are mount points in the nodes; the ones we create are removed at down.
ensure_host_dir() {
  local p="$1" missing=()
  while [ ! -e "$p" ]; do missing=("$p" "${missing[@]}"); p="$(dirname "$p")"; done
  local m
  for m in "${missing[@]}"; do mkdir "$m"; echo "$m" >> "$RUN/state/created-dirs"; done
  [ -d "$1" ] || lab_die "$1 exists and is not a directory"
}
for b in "${NODE_BINDS[@]}"; do ensure_host_dir "${b%%:*}"; done

NODE_PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
if command -v node >/dev/null 2>&1; then NODE_PATH="$(dirname "$(readlink -f "$(command -v node)")"):$NODE_PATH"; fi

setup_node() {
  local i="$1" n ip D ns b dst rest src prop j
  n="$(node_name "$i")"; ip="$(node_ip "$i")"; D="$(node_dir "$n")"; ns="$(netns_name "$n")"
  mkdir -p "$D/pids" "$D/fs"
  : > "$D/binds"
  for b in "${NODE_BINDS[@]}"; do
    dst="${b%%:*}"; rest="${b#*:}"; src="$D/fs/${rest%%:*}"; prop=private
    [[ "$rest" == *:shared ]] && prop=shared
    mkdir -p "$src"
    echo "$dst $src $prop" >> "$D/binds"
  done
  chmod 700 "$D/fs/run-ovnode"

  add_netns "$ns"
  ip -n "$UL" link add "v-$n" type veth peer name eth0 netns "$ns"
  ip -n "$UL" link set "v-$n" master br0 up
  ip -n "$ns" addr add "$ip/24" dev eth0
  ip -n "$ns" addr add "$(node_ip6 "$i")/64" dev eth0 nodad
  ip -n "$ns" link set eth0 up
  ip -n "$UL" link add "o-$n" type veth peer name eth1 netns "$ns"
  ip -n "$UL" link set "o-$n" master br1 up
  ip -n "$ns" addr add "$(node_overlay_ip "$i")/24" dev eth1
  ip -n "$ns" link set eth1 up

  cp /usr/lib/cni/loopback "$D/fs/opt-cni-bin/"
  if [ "$CNI" = bridge ]; then
    cp /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/portmap "$D/fs/opt-cni-bin/"
    nsenter --net="/run/netns/$ns" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
    for j in $(seq 1 "$NODES"); do
      [ "$j" = "$i" ] || ip -n "$ns" route add "10.244.$j.0/24" via "$(node_ip "$j")"
    done
    ip -n "$CPNS" route add "10.244.$i.0/24" via "$ip"
    cat > "$D/fs/etc-cni-net.d/10-lab-bridge.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "lab-bridge",
  "plugins": [
    {
      "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "10.244.$i.0/24" }]], "routes": [{ "dst": "0.0.0.0/0" }] }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
  fi

  # Paths are the host paths: inside the node's mount namespace they are the node's own.
  cat > "$D/containerd.toml" <<EOF
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
# opt would create /opt/containerd on the host; the others are unused snapshotters and tracing.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  # Root here lacks CAP_SYS_RESOURCE: runc could not lower oom_score_adj below containerd's own.
  restrict_oom_score_adj = true
  sandbox_image = "lab/pause:3.2"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
    max_conf_num = 1
EOF

  cat > "$D/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $ip
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $LAB_PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $LAB_PKI/kubelet-serving-$n.crt
tlsPrivateKeyFile: $LAB_PKI/kubelet-serving-$n.key
rotateCertificates: false
cgroupDriver: cgroupfs
cgroupRoot: /$CGNAME/$n
failSwapOn: false
resolvConf: /etc/resolv.conf
clusterDomain: cluster.local
nodeStatusUpdateFrequency: 4s
nodeLeaseDurationSeconds: 20
serializeImagePulls: false
# Lab images cannot be pulled again: never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
EOF
  write_kubeconfig "$D/kubelet.kubeconfig" "https://$CP_IP:$API_PORT" "kubelet-$n"
  printf 'NAME=%q\nIP=%q\nBIN=%q\nIMAGES=%q\nLOGS=%q\nNODE_PATH=%q\n' \
    "$n" "$ip" "$BIN" "$LAB_IMAGES" "$RUN/logs" "$NODE_PATH" > "$D/node.env"

  # The mount namespace, held by a process of its own so that it outlives containerd/kubelet.
  local fifo="$D/holder.fifo" reply=""
  rm -f "$fifo"; mkfifo "$fifo"
  exec 7<>"$fifo"
  lab_spawn "$n-holder" "$D/pids/holder.pid" "$RUN/logs/$n-holder.log" "$CGNAME/$n-ns" \
    nsenter --net="/run/netns/$ns" unshare --mount --propagation slave \
    bash "$LAB_LIB/node-holder.sh" "$D" "$fifo" >/dev/null
  read -r -t 20 -u 7 reply || true
  exec 7>&-
  rm -f "$fifo"
  [[ "$reply" == ok* ]] || lab_die "$n: mount namespace setup failed: ${reply:-no answer in 20 s} (see $RUN/logs/$n-holder.log)"

  # containerd starts and imports the images now; kubelet waits for the gate (apiserver ready).
  mkfifo "$D/kubelet.gate"
  start_node_wrapper "$n" >/dev/null
}
for i in $(seq 1 "$NODES"); do setup_node "$i"; done
step "node namespaces ready"

wait_apiserver 60 || lab_die "kube-apiserver did not become ready (see $RUN/logs/apiserver.log)"
step "apiserver ready"
start_controller_manager
start_scheduler

NODE_NAMES=()
for i in $(seq 1 "$NODES"); do
  n="$(node_name "$i")"; NODE_NAMES+=("$n")
  # The wrapper holds the fifo open, so this write never blocks unless the wrapper is gone.
  timeout 10 bash -c 'echo go > "$1"' _ "$(node_dir "$n")/kubelet.gate" \
    || lab_die "$n: its wrapper did not take the go for kubelet (see $RUN/logs/$n-wrapper.log)"
  rm -f "$(node_dir "$n")/kubelet.gate"
done
step "kubelet starting on ${NODE_NAMES[*]}"

tuned=0
wait_kubelets_tuned 90 /dev/null "${NODE_NAMES[@]}" && tuned=1
sysctls_restore
[ "$tuned" = 1 ] || lab_die "kubelets did not report NodeAllocatableEnforced within 90 s (see $RUN/logs/node*-kubelet.log)"
step "kubelets started, host sysctls restored"
wait_names 60 nodes -- "${NODE_NAMES[@]}" || lab_die "nodes did not register (see $RUN/logs/node*-kubelet.log)"
step "nodes registered"
if [ "$CNI" = bridge ]; then
  kc wait --for=condition=Ready --timeout=90s "${NODE_NAMES[@]/#/node/}" >/dev/null \
    || lab_die "nodes not Ready with CNI=bridge (see $RUN/logs/node*-kubelet.log, node*-containerd.log)"
  step "nodes Ready"
fi
wait_names 60 serviceaccounts -n default -- default || lab_die "the default ServiceAccount did not appear (see $RUN/logs/controller-manager.log)"

cp "$RUN/kubeconfig/admin.kubeconfig" "$LAB_ADMIN_KUBECONFIG.tmp"
mv "$LAB_ADMIN_KUBECONFIG.tmp" "$LAB_ADMIN_KUBECONFIG"
# shellcheck disable=SC2034
LAB_STATUS=up
write_lab_json
step "lab up: KUBECONFIG=$LAB_ADMIN_KUBECONFIG $BIN/kubectl get nodes"
