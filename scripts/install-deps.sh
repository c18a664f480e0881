#!/usr/bin/env bash
# Installs the Debian packages ovnode needs at run time and in tests. Idempotent.
set -euo pipefail
PKGS=(openvswitch-switch openvswitch-common ovn-central ovn-host iproute2 iputils-ping
      iputils-arping netcat-openbsd tcpdump iperf3 nftables ethtool procps psmisc
      cmake g++ make python3 golang-go golang-github-appc-cni-dev containernetworking-plugins
      dpkg-dev ca-certificates containerd runc)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # Methods run as root: where /tmp is not writable by the sandbox user _apt, its signature
  # check cannot create its temporary file (seen in CI).
  apt_opts=(-o APT::Sandbox::User=root)
  apt-get "${apt_opts[@]}" update -qq
  # policy-rc.d keeps package scripts from starting system OVS/OVN services: ovnode runs its own.
  had_policy=0; [ -e /usr/sbin/policy-rc.d ] && had_policy=1
  if [ "$had_policy" = 0 ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi
  apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${missing[@]}"
  if [ "$had_policy" = 0 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
