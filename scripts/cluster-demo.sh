#!/usr/bin/env bash
# The cluster demo: builds what the lab needs (Kubernetes 1.20 from Debian's source package,
# cached outside the clone; the ovnode image), brings up a 2-node lab cluster (kubelet +
# containerd per node, each node a network and mount namespace of its own), deploys ovnode with
# `kubectl apply -f deploy/`, creates two pods with kubectl, shows them talking, isolates one with a
# NetworkPolicy and opens it again, then tears the whole lab down. Touches nothing outside the
# namespaces, cgroups and directories the lab creates.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/lab/install-lab-deps.sh
bash scripts/lab/build-kubernetes.sh
bash scripts/lab/images.sh
bash scripts/build-image.sh

cleanup() {
  local rc=$?
  set +e
  [ "$rc" != 0 ] && echo "== demo failed (exit $rc); the lab's logs are in build/lab/last-logs after teardown"
  bash scripts/lab/down.sh
  exit "$rc"
}
trap cleanup EXIT
NODES=2 LAB_FRESH=1 bash scripts/lab/up.sh

LAB=build/lab/lab.json
K() { "$(jq -r .kubectl "$LAB")" --kubeconfig "$(jq -r .kubeconfig "$LAB")" "$@"; }
say() { printf '\n== %s\n' "$*"; }

say "deploying ovnode: kubectl apply -f deploy/ (the API server's address goes in a ConfigMap)"
K -n kube-system create configmap ovnode-apiserver --from-literal=host="$(jq -r .apiserver.host "$LAB")" \
  --from-literal=port="$(jq -r .apiserver.port "$LAB")"
K apply -f deploy/
# The daemon's readiness implies its node's stack answers (it adopts it); ovnode-ovs is OnDelete,
# which `rollout status` does not follow, so its pods are waited for once they exist.
K -n kube-system rollout status ds/ovnode --timeout=300s
K -n kube-system wait --for=condition=Ready pod -l app=ovnode-ovs --timeout=120s
K wait --for=condition=Ready node --all --timeout=120s
K get nodes -o wide

say "two pods on node1"
K create namespace demo
for p in web client; do
  K apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $p, namespace: demo, labels: {app: $p}}
spec:
  nodeName: node1
  terminationGracePeriodSeconds: 1
  containers:
    - name: tools
      image: lab/tools:1
      imagePullPolicy: Never
      command: ["/bin/sh", "-c", "trap 'exit 0' TERM; echo hello from \$(hostname) > /tmp/index.html; httpd -f -p 8080 -h /tmp & wait"]
YAML
done
K -n demo wait --for=condition=Ready pod/web pod/client --timeout=120s
K -n demo get pods -o wide
web_ip=$(K -n demo get pod web -o jsonpath='{.metadata.annotations.ovn\.kubernetes\.io/ip_address}')
echo "web's annotations:"; K -n demo get pod web -o jsonpath='{.metadata.annotations}'; echo

fetch() { K -n demo exec client -- sh -c "printf 'GET /index.html HTTP/1.0\r\n\r\n' | nc -w 2 $web_ip 8080 | tail -n 1"; }
say "client -> web ($web_ip): ping and HTTP"
K -n demo exec client -- ping -c 2 "$web_ip"
got=$(fetch); echo "$got"; [ "$got" = "hello from web" ]

say "a NetworkPolicy isolates web: only pods labelled role=friend may connect"
K apply -f - <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-isolated, namespace: demo}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress: [{from: [{podSelector: {matchLabels: {role: friend}}}]}]
YAML
for _ in $(seq 1 10); do got=$(fetch || true); [ -z "$got" ] && break; done
echo "client -> web: '${got}' (dropped)"; [ -z "$got" ]

say "labelling client role=friend lets it through"
K -n demo label pod client role=friend
for _ in $(seq 1 10); do got=$(fetch || true); [ "$got" = "hello from web" ] && break; done
echo "$got"; [ "$got" = "hello from web" ]

say "deleting the pods and the lab"
K delete namespace demo --wait=true --timeout=120s
