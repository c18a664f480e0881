#!/usr/bin/env bash
# node-holder.sh NODE_DIR FIFO: runs as the first process of a node's mount namespace (started by
# up.sh under `unshare --mount --propagation slave` inside the node's netns). It binds the node's
# own directories over the host paths listed in NODE_DIR/binds, reports "ok" (or "fail <why>")
# on FIFO, then stays asleep: the mount namespace lives as long as this process, so containerd and
# kubelet can be stopped and started again in the same namespace (node.sh).
set -uo pipefail
D="$1"; FIFO="$2"
fail() { echo "fail $*" > "$FIFO"; echo "node-holder: $*" >&2; exit 1; }

# The node must not see (nor pin) the host's network namespaces, only the ones made inside it.
for _ in 1 2 3 4 5; do
  mountpoint -q /run/netns || break
  umount -R /run/netns 2>/dev/null || umount -l /run/netns || fail "umount /run/netns"
done
while read -r dst src prop; do
  [ -d "$dst" ] || fail "mount point $dst missing"
  mount --bind "$src" "$dst" || fail "mount --bind $src $dst"
  if [ "$prop" = shared ]; then
    # A peer group of its own inside the node: propagation to pods, none to or from the host.
    mount --make-private "$dst" && mount --make-shared "$dst" || fail "make $dst shared"
  fi
done < "$D/binds"
echo "ok $$" > "$FIFO"
exec sleep infinity
