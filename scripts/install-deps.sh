#!/usr/bin/env bash
# Installs the Debian packages ovnode needs at run time and in tests. Idempotent.
set -euo pipefail
PKGS=(openvswitch-switch openvswitch-common ovn-central ovn-host iproute2 iputils-ping
      iputils-arping netcat-openbsd tcpdump iperf3 nftables ethtool procps psmisc
      cmake g++ make python3 golang-go golang-github-appc-cni-dev containernetworking-plugins
      dpkg-dev ca-certificates)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps package scripts from starting system OVS/OVN services: ovnode runs its own.
  had_policy=0; [ -e /usr/sbin/policy-rc.d ] && had_policy=1
  if [ "$had_policy" = 0 ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if [ "$had_policy" = 0 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
