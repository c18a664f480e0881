#!/usr/bin/env bash
# The main job: set everything up, start the embedded daemon in a "node" network namespace of
# its own, give two pod namespaces a network through the real ovnode CNI executable, show them
# pinging, isolate one with a NetworkPolicy manifest and open it again, then tear everything
# down. Touches nothing outside the namespaces it creates.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
unset NODE_EXTRA_CA_CERTS

id="ovdemo$(od -An -N2 -tx2 /dev/urandom | tr -d ' ')"
node_ns="$id-node"; pods=("$id-a" "$id-b")
state=$(mktemp -d "/tmp/$id.XXXX")
sock="$state/run/ovnoded.sock"
manifests="$state/manifests"
conf="{\"cniVersion\":\"1.0.0\",\"name\":\"demo\",\"type\":\"ovnode\",\"daemonSocket\":\"$sock\"}"
daemon_pid=""

cni() { # cni COMMAND POD
  echo "$conf" | CNI_COMMAND="$1" CNI_CONTAINERID="$2" CNI_NETNS="/var/run/netns/$2" CNI_IFNAME=eth0 \
    CNI_PATH="$PWD/dist/bin" CNI_ARGS="K8S_POD_NAMESPACE=demo;K8S_POD_NAME=$2" dist/bin/ovnode
}
cleanup() {
  local rc=$?
  set +e
  if [ "$rc" != 0 ] && [ -f "$state/ovnoded.log" ]; then echo "== demo failed; the daemon's last log lines:"; tail -n 15 "$state/ovnoded.log"; fi
  for p in "${pods[@]}"; do [ -n "$daemon_pid" ] && cni DEL "$p" >/dev/null; ip netns del "$p" 2>/dev/null; done
  if [ -n "$daemon_pid" ]; then kill -TERM "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null; fi
  ip netns del "$node_ns" 2>/dev/null
  rm -rf "$state"
}
trap cleanup EXIT

mkdir -p "$manifests"
# The pods' Kubernetes objects: their labels are what the NetworkPolicy below selects.
for p in "${pods[@]}"; do
  cat >"$manifests/pod-$p.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $p
  namespace: demo
  labels:
    app: ${p##*-}
spec:
  containers:
  - name: app
    image: busybox
YAML
done

ip netns add "$node_ns"
echo "== starting ovnoded (embedded OVS + OVN) in network namespace $node_ns"
ip netns exec "$node_ns" "$PWD/dist/bin/ovnoded" run --embedded --state-dir "$state" --socket "$sock" \
  --manifests "$manifests" --node-name "$id" >"$state/ovnoded.log" 2>&1 &
daemon_pid=$!
timeout 60 grep -q -m1 '"msg":"ovnoded ready"' <(tail -F "$state/ovnoded.log" 2>/dev/null) || { cat "$state/ovnoded.log"; exit 1; }
grep '"msg":"ovnoded ready"' "$state/ovnoded.log"

declare -A ip
for p in "${pods[@]}"; do
  ip netns add "$p"
  echo "== CNI ADD $p through dist/bin/ovnode"
  result=$(cni ADD "$p")
  echo "$result"
  ip[$p]=$(node -e 'const r=JSON.parse(process.argv[1]); console.log(r.ips[0].address.split("/")[0])' "$result")
done
a=${pods[0]}; b=${pods[1]}
echo "== $a (${ip[$a]}) -> $b (${ip[$b]})"; ip netns exec "$a" ping -c 3 -W 2 "${ip[$b]}"
echo "== $b -> $a";                           ip netns exec "$b" ping -c 3 -W 2 "${ip[$a]}"
echo "== $a -> gateway 10.16.0.1";            ip netns exec "$a" ping -c 1 -W 2 10.16.0.1
echo "== node ($node_ns) -> $a";              ip netns exec "$node_ns" ping -c 1 -W 2 "${ip[$a]}"
# The daemon logs "policy applied" with the manifests version it applied: remember the version
# before a change, then wait (event-driven, on the log) for a newer one.
version() { grep -o '"version":[0-9]*,[^}]*"policy applied"' "$state/ovnoded.log" | tail -n1 | grep -o '^"version":[0-9]*' | cut -d: -f2; }
applied_after() {
  local line fd tailpid rc=1
  exec {fd}< <(exec timeout 10 tail -n +1 -F "$state/ovnoded.log" 2>/dev/null)
  tailpid=$!
  while IFS= read -r -u "$fd" line; do
    if [[ $line == *'"policy applied"'* && $line =~ \"version\":([0-9]+) ]] && (( BASH_REMATCH[1] > ${1:-0} )); then rc=0; break; fi
  done
  kill "$tailpid" 2>/dev/null; exec {fd}<&-
  return "$rc"
}
echo "== NetworkPolicy: $b accepts ingress only from pods labelled app=nobody"
v=$(version)
cat >"$manifests/np-isolate-b.yaml" <<YAML
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: isolate-b
  namespace: demo
spec:
  podSelector:
    matchLabels:
      app: b
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: nobody
YAML
applied_after "$v"
if ip netns exec "$a" ping -c 2 -W 1 "${ip[$b]}" >/dev/null; then echo "demo FAILED: $a still reaches $b"; exit 1; fi
echo "   $a -> $b: dropped, as the policy says"
v=$(version)
rm "$manifests/np-isolate-b.yaml"
applied_after "$v"
echo "== NetworkPolicy deleted: $a -> $b again"; ip netns exec "$a" ping -c 1 -W 2 "${ip[$b]}"
for p in "${pods[@]}"; do echo "== CNI DEL $p"; cni DEL "$p"; done
echo "== demo OK: two pods networked through OVN, port-secured, isolated by policy, then removed"
