// DEL: remove everything of one attachment, found by sandbox id + interface name in OVSDB (not
// memory), and succeed when parts or all of it are already gone (CNI spec: DEL is idempotent;
// it also comes after a reboot, after a daemon restart, and with an empty CNI_NETNS).

import type { Deps, RequestContext } from '../context';
import { hostIfName } from '../intent/intent';
import { portHolder } from '../ipam/pool';
import { deleteLsps, ownLsps } from '../ovn/lsp';
import { detachPorts } from '../ovs/port';
import { findAttachment } from '../store/lookup';

export async function cmdDel(ctx: RequestContext): Promise<void> {
  const { req, deps, log } = ctx;
  const removed = await removeAttachment(deps, req.containerId, req.ifName, { vethInBackground: true });
  log.info({ step: 'done', ...removed }, 'detached');
  if (removed.lsps.length > 0) deps.policy.scheduleSoon('pod removed');
}

export interface Removed { ports: string[]; lsps: string[]; ips: string[]; veth: boolean }

export interface RemoveOptions {
  /** Remove the host veth after returning (DEL's fast path); otherwise wait for it. */
  vethInBackground?: boolean;
}

export async function removeAttachment(deps: Deps, sandbox: string, ifName: string, opts: RemoveOptions = {}): Promise<Removed> {
  const found = findAttachment(deps, sandbox, ifName);
  const portNames = [...new Set([hostIfName(sandbox, ifName), ...found.fromOvs.map((a) => a.hostIfName)])];
  // Only the rows this sandbox wrote, each by UUID: an ADD of a newer sandbox of the same pod
  // may replace the LSP (same name) while this DEL runs, and its row must survive.
  const lspRows = [...new Set(found.fromNb.map((a) => a.lspName))].flatMap((name) => ownLsps(deps.nb, name, sandbox, ifName));
  // Port and LSP go first and together (one transaction per database, in parallel): once the
  // port is out of OVS no flow can point at the veth, whatever happens to it afterwards.
  const [ports, deleted] = await Promise.all([
    detachPorts(deps.ovs, deps.node.bridge, portNames),
    deleteLsps(deps.nb, lspRows),
  ]);
  const lsps = deleted.map((r) => r.name);
  // Addresses are freed only for deletes the server confirmed, and only those still held by
  // this sandbox: a newer sandbox that took them over keeps them.
  const ips = deleted.flatMap((r) => deps.subnets.all().flatMap((pool) => pool.release(portHolder(r.name, r.sandbox))));
  let veth = false;
  for (const name of portNames) {
    if (opts.vethInBackground) {
      deps.plumber.destroyInBackground(name, (e) => deps.log.error({ step: 'del', veth: name, err: String(e) }, 'veth removal failed'));
    } else if (await deps.plumber.destroy(name)) {
      veth = true;
    }
  }
  return { ports, lsps, ips, veth };
}
