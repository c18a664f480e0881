# shellcheck shell=bash disable=SC2034
# Sourced by the lab scripts (up, down, node, apiserver, exec). Paths, names, process records,
# cgroups, certificates and the start of every lab process live here, so that a restart
# (node.sh, apiserver.sh) starts a process exactly as up.sh did.
#
# Layout (LAB = <repo>/build/lab, or OVNODE_LAB_DIR: a second lab, e.g. a benchmark's, beside the
# tests' own; names carry the run id and the underlay lives in the lab's own netns, so two coexist):
#   LAB/lab.json             what tests read (runId, kubeconfig, apiserver, nodes, controlPlane, ...)
#   LAB/admin.kubeconfig     https://127.0.0.1:<port>, the loopback relay into the control-plane netns
#   LAB/pki/                 CA and certificates, kept across runs
#   LAB/runs/<runId>/        everything of one run; down.sh removes it (its logs go to LAB/last-logs)
#     state/                 run.env, saved sysctls, host dirs and netns we created, pid records
#     logs/  etcd/  api.sock  kubeconfig/
#     nodes/<node>/          node.env, containerd.toml, kubelet.yaml, pids/, fs/<per-node host paths>
#
# Names carry the runId: netns ovl-<runId>-{cp,ul,<node>}, cgroup /ovnode-lab-<runId> in every
# hierarchy. Addresses are fixed and exist only inside the lab's namespaces: underlay
# 10.250.0.0/24 (control plane .2, node i .(10+i)), the overlay network 10.251.0.0/24 (node i's
# eth1 .(10+i), for Geneve between nodes), pod CIDR 10.244.i.0/24 with CNI=bridge.

LAB_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
LAB="$(realpath -m "${OVNODE_LAB_DIR:-$LAB_REPO/build/lab}")"
LAB_LIB="$LAB_REPO/scripts/lab/lib"
LAB_IMAGES="$LAB_REPO/build/images"
LAB_PKI="$LAB/pki"
LAB_JSON="$LAB/lab.json"
LAB_ADMIN_KUBECONFIG="$LAB/admin.kubeconfig"

UNDERLAY_PREFIX=10.250.0
# The underlay is dual-stack (an IPv6 ULA beside IPv4) so pods' IPv6 egress has somewhere to go;
# the API and the tunnels stay on IPv4.
UNDERLAY6_PREFIX=fd00:250:
OVERLAY_PREFIX=10.251.0
CP_IP="$UNDERLAY_PREFIX.2"
API_PORT=6443
SERVICE_CIDR=10.96.0.0/12
SERVICE_IP=10.96.0.1
# Global sysctls kubelet's setupKernelTunables rewrites (pkg/kubelet/cm/container_manager_linux.go).
KUBELET_SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom
                 kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
# Host path -> directory of the node, bound in the node's mount namespace. ":shared" ones are
# shared mounts: containerd's netns mounts must reach pods that mount /run/netns with
# HostToContainer, and kubelet needs its root dir shared for mount propagation.
NODE_BINDS=(
  /etc/cni/net.d:etc-cni-net.d
  /opt/cni/bin:opt-cni-bin
  /run/ovnode:run-ovnode
  /var/lib/ovnode:var-lib-ovnode
  /run/netns:run-netns:shared
  /var/log/pods:var-log-pods
  /var/log/containers:var-log-containers
  /var/lib/kubelet:var-lib-kubelet:shared
  /var/lib/cni:var-lib-cni
  /var/lib/containerd:var-lib-containerd
  /run/containerd:run-containerd
)

lab_log() { echo "lab: $*" >&2; }
lab_die() { echo "lab: ERROR: $*" >&2; exit 1; }

# Serialises the scripts that change the lab (up, down, node, apiserver).
lab_lock() {
  mkdir -p "$LAB"
  exec 8>"$LAB/.lock"
  flock 8
}

# --- run state ------------------------------------------------------------------------------------
# lab_load_run RUN_DIR: sets RUN, RID, NODES, CNI, BIN, PORT, CGNAME from RUN_DIR/state/run.env.
lab_load_run() {
  RUN="$1"
  [ -f "$RUN/state/run.env" ] || return 1
  # shellcheck disable=SC1091
  . "$RUN/state/run.env"
}

# The run lab.json names, else the only run directory there is.
lab_current_run() {
  local rid=""
  [ -f "$LAB_JSON" ] && rid="$(jq -r '.runId // empty' "$LAB_JSON" 2>/dev/null || true)"
  if [ -n "$rid" ] && [ -d "$LAB/runs/$rid" ]; then echo "$LAB/runs/$rid"; return 0; fi
  local d
  for d in "$LAB"/runs/*/; do [ -f "$d/state/run.env" ] && { echo "${d%/}"; return 0; }; done
  return 1
}

netns_name() { echo "ovl-$RID-$1"; }        # cp, ul, <node>
node_name() { echo "node$1"; }
node_ip() { echo "$UNDERLAY_PREFIX.$((10 + $1))"; }
node_ip6() { echo "$UNDERLAY6_PREFIX:$((10 + $1))"; }
node_overlay_ip() { echo "$OVERLAY_PREFIX.$((10 + $1))"; }
node_dir() { echo "$RUN/nodes/$1"; }

# --- process records: "pid starttime", so a recycled pid is never taken for ours -------------------
pid_starttime() {
  local s
  s="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  s="${s##*) }"
  # shellcheck disable=SC2086
  set -- $s
  echo "${20}"
}
record_pid() { printf '%s %s\n' "$2" "$(pid_starttime "$2" || echo 0)" > "$1"; }
# recorded_pid FILE: prints the pid if that very process is still alive.
recorded_pid() {
  local pid st
  [ -f "$1" ] || return 1
  read -r pid st < "$1" || return 1
  [ -n "$pid" ] && [ "$(pid_starttime "$pid" 2>/dev/null)" = "$st" ] || return 1
  echo "$pid"
}
# stop_recorded FILE...: TERM, up to STOP_GRACE (default 5) seconds, then KILL; waits until they
# are gone and removes the records. STOP_GRACE=0 kills at once.
stop_recorded() {
  local f pid pids=() sts=() i k left sig=TERM
  [ "${STOP_GRACE:-5}" = 0 ] && sig=KILL
  for f in "$@"; do
    if pid="$(recorded_pid "$f")"; then
      pids+=("$pid"); sts+=("$(awk '{print $2}' "$f")")
      kill "-$sig" "$pid" 2>/dev/null || true
    fi
  done
  for i in $(seq 1 $(( ${STOP_GRACE:-5} * 10 + 20 ))); do
    left=0
    for k in "${!pids[@]}"; do
      [ "$(pid_starttime "${pids[$k]}" 2>/dev/null)" = "${sts[$k]}" ] && left=1
    done
    [ "$left" = 0 ] && break
    sleep 0.1
  done
  for k in "${!pids[@]}"; do
    [ "$(pid_starttime "${pids[$k]}" 2>/dev/null)" = "${sts[$k]}" ] && kill -KILL "${pids[$k]}" 2>/dev/null || true
  done
  rm -f "$@"
}

# --- cgroups --------------------------------------------------------------------------------------
# Every cgroup (v1 or v2) mount point of the host.
cgroup_mounts() {
  awk '{ split($0, a, " - "); split(a[2], b, " "); if (b[1] == "cgroup" || b[1] == "cgroup2") print $5 }' \
    /proc/self/mountinfo | sort -u
}
# The hierarchy used to find our processes: cgroup2 (cgroup.kill, cgroup.events) if mounted.
cgroup_track() {
  awk '{ split($0, a, " - "); split(a[2], b, " "); if (b[1] == "cgroup2") { print $5; exit } }' /proc/self/mountinfo
}
# cg_mkdir_all REL: REL in every hierarchy; cpuset needs cpus/mems before anything can join.
cg_mkdir_all() {
  local h d part path
  for h in $(cgroup_mounts); do
    path=""
    for part in ${1//\// }; do
      path="$path/$part"; d="$h$path"
      [ -d "$d" ] && continue
      mkdir "$d"
      if [ -f "$d/cpuset.cpus" ]; then
        cat "$(dirname "$d")/cpuset.cpus" > "$d/cpuset.cpus"
        cat "$(dirname "$d")/cpuset.mems" > "$d/cpuset.mems"
      fi
    done
  done
}
# cg_pids REL: every pid in REL and below, in any hierarchy (runc and kubelet use the v1 ones,
# the lab's own cgroups exist only in the tracking hierarchy).
cg_pids() {
  local h
  for h in $(cgroup_mounts); do
    [ -d "$h/$1" ] && find "$h/$1" -name cgroup.procs -exec cat {} + 2>/dev/null
  done | sort -un
}
# cg_kill REL: kills every process in REL and below and waits until none is left.
cg_kill() {
  local t i p pids
  t="$(cgroup_track)"
  for i in $(seq 1 100); do
    pids="$(cg_pids "$1")"
    [ -n "$pids" ] || return 0
    if [ -f "$t/$1/cgroup.kill" ]; then echo 1 > "$t/$1/cgroup.kill" 2>/dev/null || true; fi
    for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
    sleep 0.05
  done
  lab_log "WARNING: processes left in cgroup $1: $(cg_pids "$1" | tr '\n' ' ')"
}
# cg_rmdir_all REL: removes REL and everything below it in every hierarchy.
cg_rmdir_all() {
  local h
  for h in $(cgroup_mounts); do
    [ -d "$h/$1" ] && find "$h/$1" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}
cg_left() {
  local h
  for h in $(cgroup_mounts); do [ -d "$h/$1" ] && echo "$h/$1"; done
}

# lab_spawn NAME PIDFILE LOG CGREL CMD...: starts CMD detached (own session, stdin /dev/null) in
# cgroup CGREL of the tracking hierarchy, records "pid starttime" in PIDFILE.
lab_spawn() {
  local name="$1" pidfile="$2" logf="$3" cg="$4"; shift 4
  local procs
  procs="$(cgroup_track)/$cg/cgroup.procs"
  (
    # The lock (fd 8), fifos and coprocess pipes of the caller must not live on in a daemon.
    for fd in 3 4 5 6 7 8 9; do eval "exec $fd>&-"; done
    echo "$BASHPID" > "$procs" 2>/dev/null || { echo "lab: cannot join $procs" >> "$logf"; exit 1; }
    exec setsid "$@" < /dev/null >> "$logf" 2>&1
  ) &
  local pid=$!
  # Not a job of the calling script: no "Killed" notices when down.sh ends it.
  disown "$pid"
  record_pid "$pidfile" "$pid"
  echo "$pid"
}

# --- sysctls ----------------------------------------------------------------------------------------
# The host's own values, shared by every lab on the machine: a lab started while another one's
# kubelet has already rewritten them must not record the rewritten values as the ones to restore.
HOST_SYSCTLS_ORIGINAL=/run/ovnode-lab-sysctls.original
sysctls_save() {
  local k f="$RUN/state/sysctls.saved"
  [ -s "$f" ] && return 0
  if [ -n "$(other_labs_running)" ] && [ -s "$HOST_SYSCTLS_ORIGINAL" ]; then
    cp "$HOST_SYSCTLS_ORIGINAL" "$f"
    return 0
  fi
  for k in "${KUBELET_SYSCTLS[@]}"; do
    [ -e "/proc/sys/${k//.//}" ] && printf '%s %s\n' "$k" "$(cat "/proc/sys/${k//.//}")"
  done > "$f.tmp"
  cp "$f.tmp" "$HOST_SYSCTLS_ORIGINAL.tmp" && mv "$HOST_SYSCTLS_ORIGINAL.tmp" "$HOST_SYSCTLS_ORIGINAL"
  mv "$f.tmp" "$f"
}
sysctls_restore() {
  local f="$RUN/state/sysctls.saved" k v
  [ -f "$f" ] || return 0
  while read -r k v; do
    [ "$(cat "/proc/sys/${k//.//}")" = "$v" ] || echo "$v" > "/proc/sys/${k//.//}"
  done < "$f"
}

# --- certificates (EC P-256: fast to make, accepted by every 1.20 component) -----------------------
pki_sign() { # NAME SUBJECT [SANS]
  local n="$1" subj="$2" sans="${3:-}" d="$LAB_PKI"
  [ -s "$d/$n.crt" ] && [ -s "$d/$n.key" ] && return 0
  openssl ecparam -name prime256v1 -genkey -noout -out "$d/$n.key.tmp" 2>/dev/null
  openssl req -new -key "$d/$n.key.tmp" -subj "$subj" -out "$d/$n.csr" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [ -n "$sans" ]; then echo "extendedKeyUsage=serverAuth,clientAuth"; echo "subjectAltName=$sans"
    else echo "extendedKeyUsage=clientAuth"; fi
  } > "$d/$n.ext"
  openssl x509 -req -in "$d/$n.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -days 3650 -extfile "$d/$n.ext" -out "$d/$n.crt.tmp" 2>/dev/null || lab_die "signing $n failed ($d)"
  rm -f "$d/$n.csr" "$d/$n.ext"
  mv "$d/$n.key.tmp" "$d/$n.key"; mv "$d/$n.crt.tmp" "$d/$n.crt"
}
pki_ensure() { # NODES
  local d="$LAB_PKI" i n
  mkdir -p "$d"; chmod 700 "$d"
  if [ ! -s "$d/ca.crt" ] || [ ! -s "$d/ca.key" ]; then
    rm -rf "$d"; mkdir -p "$d"; chmod 700 "$d"
    openssl ecparam -name prime256v1 -genkey -noout -out "$d/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$d/ca.key" -subj "/CN=ovnode-lab-ca" -days 3650 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out "$d/ca.crt" 2>/dev/null || lab_die "creating the lab CA in $d failed"
  fi
  pki_sign apiserver "/CN=kube-apiserver" \
    "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:$CP_IP,IP:$SERVICE_IP"
  pki_sign admin "/O=system:masters/CN=ovnode-lab-admin"
  pki_sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  pki_sign controller-manager "/CN=system:kube-controller-manager"
  pki_sign scheduler "/CN=system:kube-scheduler"
  for i in $(seq 1 "$1"); do
    n="$(node_name "$i")"
    pki_sign "kubelet-$n" "/O=system:nodes/CN=system:node:$n"
    pki_sign "kubelet-serving-$n" "/CN=$n" "DNS:$n,IP:$(node_ip "$i")"
  done
  if [ ! -s "$d/sa.key" ]; then
    openssl ecparam -name prime256v1 -genkey -noout -out "$d/sa.key.tmp" 2>/dev/null
    openssl ec -in "$d/sa.key.tmp" -pubout -out "$d/sa.pub" 2>/dev/null
    mv "$d/sa.key.tmp" "$d/sa.key"
  fi
}
write_kubeconfig() { # OUT SERVER CERTNAME
  local b64="base64 -w0"
  cat > "$1.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ovnode-lab
  cluster:
    server: $2
    certificate-authority-data: $($b64 "$LAB_PKI/ca.crt")
users:
- name: $3
  user:
    client-certificate-data: $($b64 "$LAB_PKI/$3.crt")
    client-key-data: $($b64 "$LAB_PKI/$3.key")
contexts:
- name: ovnode-lab
  context: {cluster: ovnode-lab, user: $3}
current-context: ovnode-lab
EOF
  mv "$1.tmp" "$1"
}

kc() { "$BIN/kubectl" --kubeconfig "$RUN/kubeconfig/admin.kubeconfig" "$@"; }

# --- control plane ----------------------------------------------------------------------------------
cp_netns_path() { echo "/run/netns/$(netns_name cp)"; }

start_etcd() {
  mkdir -p "$RUN/etcd"
  # etcd's data lives on a tmpfs mounted in a mount namespace of its own: no fsync cost, and the
  # mount disappears with the process. Slave propagation lets host unmounts reach that namespace.
  lab_spawn etcd "$RUN/state/etcd.pid" "$RUN/logs/etcd.log" "$CGNAME/cp" \
    nsenter --net="$(cp_netns_path)" unshare --mount --propagation slave \
    sh -c 'mount -t tmpfs -o size=1g,mode=0700 ovnode-lab-etcd "$1" && exec etcd --name lab --data-dir "$1/data" \
      --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
      --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
      --initial-cluster lab=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
      --log-level warn' etcd "$RUN/etcd" >/dev/null
}

start_apiserver() {
  local P="$LAB_PKI"
  lab_spawn apiserver "$RUN/state/apiserver.pid" "$RUN/logs/apiserver.log" "$CGNAME/cp" \
    nsenter --net="$(cp_netns_path)" "$BIN/kube-apiserver" \
    --etcd-servers=http://127.0.0.1:2379 --bind-address=0.0.0.0 --secure-port="$API_PORT" --insecure-port=0 \
    --advertise-address="$CP_IP" \
    --client-ca-file="$P/ca.crt" --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" \
    --kubelet-client-certificate="$P/apiserver-kubelet-client.crt" --kubelet-client-key="$P/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$P/ca.crt" --kubelet-preferred-address-types=InternalIP \
    --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --allow-privileged=true --anonymous-auth=false --profiling=false --event-ttl=1h >/dev/null
}

start_controller_manager() {
  local K="$RUN/kubeconfig/controller-manager.kubeconfig" P="$LAB_PKI"
  # Its flex-volume prober would create /usr/libexec/kubernetes/... on the host.
  mkdir -p "$RUN/controller-manager/volume-plugins"
  lab_spawn controller-manager "$RUN/state/controller-manager.pid" "$RUN/logs/controller-manager.log" "$CGNAME/cp" \
    nsenter --net="$(cp_netns_path)" "$BIN/kube-controller-manager" \
    --kubeconfig="$K" --authentication-kubeconfig="$K" --authorization-kubeconfig="$K" \
    --bind-address=127.0.0.1 --secure-port=10257 --port=0 --leader-elect=false \
    --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" --use-service-account-credentials=true \
    --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key" \
    --controllers='*,-cloud-node-lifecycle,-route,-service' \
    --node-monitor-period=2s --node-monitor-grace-period=20s \
    --flex-volume-plugin-dir="$RUN/controller-manager/volume-plugins" >/dev/null
}

start_scheduler() {
  local K="$RUN/kubeconfig/scheduler.kubeconfig"
  lab_spawn scheduler "$RUN/state/scheduler.pid" "$RUN/logs/scheduler.log" "$CGNAME/cp" \
    nsenter --net="$(cp_netns_path)" "$BIN/kube-scheduler" \
    --kubeconfig="$K" --authentication-kubeconfig="$K" --authorization-kubeconfig="$K" \
    --bind-address=127.0.0.1 --secure-port=10259 --port=0 --leader-elect=false >/dev/null
}

# The admin API reaches the root netns on loopback only: 127.0.0.1:PORT -> unix socket -> the
# control-plane netns' 127.0.0.1:6443. Nothing in the root netns routes to the lab's addresses.
start_api_relay() {
  lab_spawn relay-cp "$RUN/state/relay-cp.pid" "$RUN/logs/relay.log" "$CGNAME/cp" \
    nsenter --net="$(cp_netns_path)" socat "UNIX-LISTEN:$RUN/api.sock,fork,unlink-early,mode=600" "TCP:127.0.0.1:$API_PORT" >/dev/null
  lab_spawn relay-root "$RUN/state/relay-root.pid" "$RUN/logs/relay.log" "$CGNAME/cp" \
    socat "TCP-LISTEN:$PORT,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$RUN/api.sock" >/dev/null
}

# wait_apiserver SECONDS: until /readyz answers ok through the relay.
wait_apiserver() {
  local deadline=$(( $(date +%s) + $1 )) pidf
  until kc --request-timeout=2s get --raw /readyz >/dev/null 2>&1; do
    for pidf in apiserver relay-root relay-cp etcd; do
      recorded_pid "$RUN/state/$pidf.pid" >/dev/null || { lab_log "$pidf exited; last lines of its log:"; tail -n 15 "$RUN/logs/${pidf%%-*}.log" 2>/dev/null | sed 's/^/  | /' >&2; [ "$pidf" != relay-cp ] || tail -n 5 "$RUN/logs/relay.log" >&2; return 1; }
    done
    [ "$(date +%s)" -lt "$deadline" ] || { lab_log "apiserver not ready after $1 s (see $RUN/logs/apiserver.log)"; return 1; }
    sleep 0.2
  done
}

# --- nodes ------------------------------------------------------------------------------------------
# start_node_wrapper NODE: containerd + kubelet from one wrapper in the node's netns and mount ns.
start_node_wrapper() {
  local n="$1" D holder
  D="$(node_dir "$n")"
  holder="$(recorded_pid "$D/pids/holder.pid")" || lab_die "$n: the process holding its mount namespace is gone (see $RUN/logs/$n-holder.log); run down.sh and up.sh"
  lab_spawn "$n-wrapper" "$D/pids/wrapper.pid" "$RUN/logs/$n-wrapper.log" "$CGNAME/$n-sys" \
    nsenter --net="/run/netns/$(netns_name "$n")" --mount="/proc/$holder/ns/mnt" \
    bash "$LAB_LIB/node-wrapper.sh" "$D" >/dev/null
}

# event_names REASON: names of the events with that reason, one per line.
event_names() {
  kc get events -A --field-selector "reason=$1" -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' 2>/dev/null || true
}

# wait_kubelets_tuned SECONDS SEEN_FILE NODE...: waits for a NodeAllocatableEnforced event of each
# NODE that is not in SEEN_FILE. kubelet posts it right after rewriting the kernel tunables
# (ContainerManager.Start -> setupNode), so it is the moment to put the sysctls back.
wait_kubelets_tuned() {
  local secs="$1" seen="$2"; shift 2
  local want=("$@") got=() line name node deadline left fd pid
  deadline=$(( $(date +%s) + secs ))
  coproc EVW { exec "$BIN/kubectl" --kubeconfig "$RUN/kubeconfig/admin.kubeconfig" get events -A \
                 --field-selector reason=NodeAllocatableEnforced -w -o name 2>/dev/null; }
  fd="${EVW[0]}"; pid="$EVW_PID"
  while [ "${#got[@]}" -lt "${#want[@]}" ]; do
    left=$(( deadline - $(date +%s) )); [ "$left" -gt 0 ] || break
    if ! read -r -t "$left" -u "$fd" line; then break; fi
    name="${line#*/}"
    grep -qxF "$name" "$seen" 2>/dev/null && continue
    node="${name%.*}"
    local w g dup
    for w in "${want[@]}"; do
      if [ "$w" = "$node" ]; then
        dup=0; for g in "${got[@]}"; do [ "$g" = "$node" ] && dup=1; done
        [ "$dup" = 1 ] || got+=("$node")
      fi
    done
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ "${#got[@]}" -eq "${#want[@]}" ]
}

# wait_names SECONDS RESOURCE ARGS... -- NAME...: watch (list + watch) until every NAME was seen.
wait_names() {
  local secs="$1" res="$2"; shift 2
  local args=() want=() line deadline left fd pid
  while [ "$#" -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
  shift
  want=("$@")
  deadline=$(( $(date +%s) + secs ))
  coproc NW { exec "$BIN/kubectl" --kubeconfig "$RUN/kubeconfig/admin.kubeconfig" get "$res" "${args[@]}" -w -o name 2>/dev/null; }
  fd="${NW[0]}"; pid="$NW_PID"
  local -A seen=()
  local missing=("${want[@]}")
  while [ "${#missing[@]}" -gt 0 ]; do
    left=$(( deadline - $(date +%s) )); [ "$left" -gt 0 ] || break
    read -r -t "$left" -u "$fd" line || break
    seen["${line#*/}"]=1
    missing=()
    local w; for w in "${want[@]}"; do [ -n "${seen[$w]:-}" ] || missing+=("$w"); done
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ "${#missing[@]}" -eq 0 ] || { lab_log "not seen within ${secs}s: $res ${missing[*]}"; return 1; }
}

# --- lab.json -----------------------------------------------------------------------------------------
pidjson() { recorded_pid "$1" 2>/dev/null || echo null; }
write_lab_json() {
  local i n D nodes=() sys
  for i in $(seq 1 "$NODES"); do
    n="$(node_name "$i")"; D="$(node_dir "$n")"
    nodes+=("$(jq -n --arg name "$n" --arg netns "$(netns_name "$n")" --arg ip "$(node_ip "$i")" --arg ip6 "$(node_ip6 "$i")" --arg overlayIp "$(node_overlay_ip "$i")" --arg dir "$D" \
      --argjson wrapperPid "$(pidjson "$D/pids/wrapper.pid")" --argjson holderPid "$(pidjson "$D/pids/holder.pid")" \
      --argjson kubeletPid "$(pidjson "$D/pids/kubelet.pid")" --argjson containerdPid "$(pidjson "$D/pids/containerd.pid")" \
      --arg cgroupRoot "/$CGNAME/$n" --arg podCidr "$( [ "$CNI" = bridge ] && echo "10.244.$i.0/24" )" \
      '{name: $name, netns: $netns, netnsPath: ("/run/netns/" + $netns), ip: $ip, ip6: $ip6, overlayIp: $overlayIp, dir: $dir,
        wrapperPid: $wrapperPid, holderPid: $holderPid, kubeletPid: $kubeletPid, containerdPid: $containerdPid,
        mountNs: (if $holderPid then "/proc/\($holderPid)/ns/mnt" else null end),
        cgroupRoot: $cgroupRoot, podCidr: (if $podCidr == "" then null else $podCidr end)}')")
  done
  sys="$(jq -Rn '[inputs | select(length > 0) | split(" ") | {(.[0]): .[1]}] | add // {}' < "$RUN/state/sysctls.saved")"
  jq -n --arg runId "$RID" --arg runDir "$RUN" --arg cni "$CNI" --arg kubeconfig "$LAB_ADMIN_KUBECONFIG" \
    --arg binDir "$BIN" --arg host "$CP_IP" --argjson port "$API_PORT" --argjson localPort "$PORT" \
    --arg cpNetns "$(netns_name cp)" --arg ulNetns "$(netns_name ul)" --arg cgroup "/$CGNAME" \
    --arg serviceCidr "$SERVICE_CIDR" --arg status "${LAB_STATUS:-up}" \
    --argjson etcd "$(pidjson "$RUN/state/etcd.pid")" --argjson apiserver "$(pidjson "$RUN/state/apiserver.pid")" \
    --argjson cm "$(pidjson "$RUN/state/controller-manager.pid")" --argjson sched "$(pidjson "$RUN/state/scheduler.pid")" \
    --argjson relayRoot "$(pidjson "$RUN/state/relay-root.pid")" --argjson relayCp "$(pidjson "$RUN/state/relay-cp.pid")" \
    --argjson saved "$sys" --argjson nodes "$(printf '%s\n' "${nodes[@]}" | jq -s .)" \
    '{runId: $runId, status: $status, runDir: $runDir, cni: $cni, kubeconfig: $kubeconfig, binDir: $binDir,
      kubectl: ($binDir + "/kubectl"),
      apiserver: {host: $host, port: $port, url: "https://\($host):\($port)", localUrl: "https://127.0.0.1:\($localPort)"},
      serviceCidr: $serviceCidr,
      nodes: $nodes,
      controlPlane: {netns: $cpNetns, netnsPath: ("/run/netns/" + $cpNetns), ip: $host,
                     pids: {etcd: $etcd, apiserver: $apiserver, controllerManager: $cm, scheduler: $sched,
                            relayRoot: $relayRoot, relayCp: $relayCp}},
      underlay: {netns: $ulNetns, bridge: "br0", cidr: "10.250.0.0/24", cidr6: "fd00:250::/64"},
      overlay: {netns: $ulNetns, bridge: "br1", cidr: "10.251.0.0/24", interface: "eth1"},
      cgroup: $cgroup,
      savedSysctls: $saved}' > "$LAB_JSON.tmp"
  mv "$LAB_JSON.tmp" "$LAB_JSON"
}

# Other labs with live processes (their top cgroups are populated), by cgroup name.
other_labs_running() {
  local t d
  t="$(cgroup_track)"
  for d in "$t"/ovnode-lab-*; do
    [ -d "$d" ] && [ "$(basename "$d")" != "$CGNAME" ] || continue
    if grep -q '^populated 1' "$d/cgroup.events" 2>/dev/null; then basename "$d"; fi
  done | tr '\n' ' '
  return 0
}

# --- teardown of one run (down.sh, and up.sh before a fresh start) --------------------------------------
lab_teardown_run() {
  local run="$1" f ns d
  lab_load_run "$run" || { lab_log "no state in $run; removing it"; rm -rf "$run"; return 0; }
  lab_log "tearing down run $RID"
  # 1. our processes by record, killed outright: nothing of a run is kept, so nothing needs a
  #    graceful stop.
  local recs=()
  for f in relay-root relay-cp scheduler controller-manager apiserver etcd; do recs+=("$RUN/state/$f.pid"); done
  for d in "$RUN"/nodes/*/; do
    [ -d "$d/pids" ] && recs+=("$d/pids/kubelet.pid" "$d/pids/containerd.pid" "$d/pids/wrapper.pid" "$d/pids/holder.pid")
  done
  STOP_GRACE=0 stop_recorded "${recs[@]}"
  # 2. whatever is left in the run's cgroups: shims, pod processes, anything they started.
  cg_kill "$CGNAME"
  # 3. namespaces: the node and control-plane netns (pods' netns died with the nodes' mount ns).
  for ns in $(cat "$RUN/state/netns" 2>/dev/null) $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^ovl-$RID-" || true); do
    [ -e "/run/netns/$ns" ] && { ip netns del "$ns" 2>/dev/null || lab_log "WARNING: ip netns del $ns failed"; }
  done
  # 4. cgroups in every hierarchy, sysctls, host directories we created as mount points.
  cg_rmdir_all "$CGNAME"
  [ -z "$(cg_left "$CGNAME")" ] || lab_log "WARNING: cgroups left: $(cg_left "$CGNAME" | tr '\n' ' ')"
  sysctls_restore
  # The host-wide record of the original values goes with the last lab.
  [ -n "$(other_labs_running)" ] || rm -f "$HOST_SYSCTLS_ORIGINAL"
  # Removing a directory detaches whatever is mounted on it in every other mount namespace: while
  # another lab (another checkout) runs, its nodes have their binds on these very directories.
  if [ -f "$RUN/state/created-dirs" ]; then
    local others
    others="$(other_labs_running)"
    if [ -n "$others" ]; then
      lab_log "another lab is running ($others): leaving the host mount points $(tr '\n' ' ' < "$RUN/state/created-dirs")"
    else
      tac "$RUN/state/created-dirs" | while read -r d; do rmdir "$d" 2>/dev/null || true; done
    fi
  fi
  # 5. mounts: all lab mounts lived in namespaces that are gone; anything still mounted under the
  #    run directory would be a bug, so it is unmounted before the directory goes.
  local m
  for m in $(awk '{print $5}' /proc/self/mountinfo | grep -F "$RUN/" | sort -r); do
    lab_log "WARNING: unmounting leftover $m"; umount -l "$m" 2>/dev/null || true
  done
  rm -rf "$LAB/last-logs"
  [ -d "$RUN/logs" ] && mv "$RUN/logs" "$LAB/last-logs"
  rm -rf "$RUN"
  rmdir "$LAB/runs" 2>/dev/null || true
  if [ -f "$LAB_JSON" ] && [ "$(jq -r .runId "$LAB_JSON" 2>/dev/null)" = "$RID" ]; then
    rm -f "$LAB_JSON" "$LAB_ADMIN_KUBECONFIG"
  fi
}
