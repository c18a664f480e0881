#!/usr/bin/env bash
# The main job: set everything up, start the embedded daemon in a "node" network namespace of
# its own, give two pod namespaces a network through the real ovnode CNI executable, show them
# pinging, then tear everything down. Touches nothing outside the namespaces it creates.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
unset NODE_EXTRA_CA_CERTS

id="ovdemo$(od -An -N2 -tx2 /dev/urandom | tr -d ' ')"
node_ns="$id-node"; pods=("$id-a" "$id-b")
state=$(mktemp -d "/tmp/$id.XXXX")
sock="$state/run/ovnoded.sock"
conf="{\"cniVersion\":\"1.0.0\",\"name\":\"demo\",\"type\":\"ovnode\",\"daemonSocket\":\"$sock\"}"
daemon_pid=""

cni() { # cni COMMAND POD
  echo "$conf" | CNI_COMMAND="$1" CNI_CONTAINERID="$2" CNI_NETNS="/var/run/netns/$2" CNI_IFNAME=eth0 \
    CNI_PATH="$PWD/dist/bin" CNI_ARGS="K8S_POD_NAMESPACE=demo;K8S_POD_NAME=$2" dist/bin/ovnode
}
cleanup() {
  set +e
  for p in "${pods[@]}"; do [ -n "$daemon_pid" ] && cni DEL "$p" >/dev/null; ip netns del "$p" 2>/dev/null; done
  if [ -n "$daemon_pid" ]; then kill -TERM "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null; fi
  ip netns del "$node_ns" 2>/dev/null
  rm -rf "$state"
}
trap cleanup EXIT

ip netns add "$node_ns"
echo "== starting ovnoded (embedded OVS + OVN) in network namespace $node_ns"
ip netns exec "$node_ns" "$PWD/dist/bin/ovnoded" run --embedded --state-dir "$state" --socket "$sock" --node-name "$id" >"$state/ovnoded.log" 2>&1 &
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
for p in "${pods[@]}"; do echo "== CNI DEL $p"; cni DEL "$p"; done
echo "== demo OK: two pods networked through OVN, port-secured, then removed"
