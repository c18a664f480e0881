#!/usr/bin/env bash
# Installs the Debian packages the Kubernetes lab (scripts/lab/*) needs. Idempotent: packages
# already installed are skipped, and nothing is fetched when all are there.
#
# What each is for:
#   golang-go dpkg-dev golang-github-modern-go-reflect2-dev  build-kubernetes.sh (Go 1.19,
#       dpkg-source, reflect2 1.0.2 which replaces the vendored 1.0.1 that crashes under Go >= 1.18)
#   gcc libc6-dev busybox-static                             images.sh (static pause, tools image)
#   etcd-server containerd runc containernetworking-plugins  the cluster itself
#   openssl socat jq util-linux iproute2 procps iptables     certificates, the loopback API relay,
#       lab.json, nsenter/unshare/flock, netns, sysctl, kubelet's chains inside the node netns
#   netcat-openbsd                                           the cluster tests' probes that need a
#       fixed source port (busybox nc ignores -p when it connects)
#   iperf3                                                   npm run bench:cross-node (run in pods'
#       network namespaces with nsenter: the tools image has none; its debconf question whether to
#       start a system-wide server defaults to no)
#   xz-utils                                                 build-multus.sh (unpacks the Multus source tarball)
set -euo pipefail

PKGS=(golang-go dpkg-dev golang-github-modern-go-reflect2-dev
      gcc libc6-dev busybox-static
      etcd-server containerd runc containernetworking-plugins
      openssl socat jq util-linux iproute2 procps iptables netcat-openbsd iperf3 xz-utils)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

echo "install-lab-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Methods run as root: where /tmp is not writable by the sandbox user _apt the signature check fails.
apt_opts=(-o APT::Sandbox::User=root)
log=$(mktemp /tmp/install-lab-deps.XXXXXX.log)
# containerd's and etcd-server's maintainer scripts would start system-wide daemons; the lab runs
# its own, one per node, so service starts are refused for the duration of the install.
had_policy=0; [ -e /usr/sbin/policy-rc.d ] && had_policy=1
if [ "$had_policy" = 0 ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
if ! { apt-get "${apt_opts[@]}" update -qq && \
       apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  echo "install-lab-deps: ERROR: apt-get failed installing ${missing[*]}; last lines of $log:" >&2
  tail -n 25 "$log" | sed 's/^/  | /' >&2
  exit 1
fi
rm -f "$log"
echo "install-lab-deps: done" >&2
