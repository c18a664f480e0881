// DEL: remove everything of one attachment, found by sandbox id + interface name in OVSDB (not
// memory), and succeed when parts or all of it are already gone (CNI spec: DEL is idempotent;
// it also comes after a reboot, after a daemon restart, and with an empty CNI_NETNS).

import type { Deps, RequestContext } from '../context';
import { hostIfName } from '../intent/intent';
import { deleteLsp } from '../ovn/lsp';
import { detachPort } from '../ovs/port';
import { findAttachment } from '../store/lookup';

export async function cmdDel(ctx: RequestContext): Promise<void> {
  const { req, deps, log } = ctx;
  const removed = await removeAttachment(deps, req.containerId, req.ifName);
  log.info({ step: 'done', ...removed }, 'detached');
}

export interface Removed { ports: string[]; lsps: string[]; ips: string[]; veth: boolean }

export async function removeAttachment(deps: Deps, sandbox: string, ifName: string): Promise<Removed> {
  const found = findAttachment(deps, sandbox, ifName);
  const portNames = new Set([hostIfName(sandbox, ifName), ...found.fromOvs.map((a) => a.hostIfName)]);
  const lspNames = new Set([...found.fromNb.map((a) => a.lspName)]);
  const out: Removed = { ports: [], lsps: [], ips: [], veth: false };
  // Flows go before the veth: removing the port first keeps a reused ofport from ever pointing
  // at a new pod's interface with the old pod's flows.
  for (const name of portNames) if (await detachPort(deps.ovs, deps.node.bridge, name)) out.ports.push(name);
  for (const name of lspNames) {
    if (await deleteLsp(deps.nb, name)) out.lsps.push(name);
    // Only release addresses of ports this sandbox still owned: a newer sandbox of the same pod
    // may have taken over the port name and its address.
    for (const pool of deps.subnets.all()) out.ips.push(...pool.release(name));
  }
  for (const name of portNames) if (await deps.plumber.destroy(name)) out.veth = true;
  return out;
}
