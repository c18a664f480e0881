// DEL: remove everything of one attachment, found by sandbox id + interface name in OVSDB (not
// memory), and succeed when parts or all of it are already gone (CNI spec: DEL is idempotent;
// it also comes after a reboot, after a daemon restart, and with an empty CNI_NETNS).

import type { Deps, RequestContext } from '../context';
import { hostIfName, lspNameFor, portNameFor } from '../intent/intent';
import { interfaceProvider, isPrimaryProvider } from '../intent/provider';
import { OvsdbUnavailableError, PlumbError } from '../../common/errors';
import type { Attachment } from '../store/attachment';
import type { VfCheckpoint } from '../sriov/vf-checkpoint';
import { portHolder } from '../ipam/pool';
import { deleteLsps, ownLsps } from '../ovn/lsp';
import { detachPorts } from '../ovs/port';
import { findAttachment } from '../store/lookup';
import { portBaseName } from '../cluster/kubevirt';

export async function cmdDel(ctx: RequestContext): Promise<void> {
  const { req, deps, log } = ctx;
  const removed = await removeAttachment(deps, req.containerId, req.ifName, { vethInBackground: true, lspName: impliedPortName(ctx) });
  log.info({ step: 'done', ...removed }, 'detached');
  if (removed.lsps.length > 0) deps.policy.scheduleSoon('pod removed');
}

/** The port the request implies: a secondary network's carries its provider (as the pod names it, while the pod is known). */
function impliedPortName({ req, deps }: RequestContext): string {
  const provider = req.conf.provider;
  const { podName, podNamespace } = req.args;
  const pod = podName && podNamespace ? deps.objects.get('Pod', podName, podNamespace) : undefined;
  // A VM's pods share the VM's port (cluster/kubevirt.ts).
  const base = pod ? portBaseName(pod) : undefined;
  if (provider === undefined || isPrimaryProvider(provider)) return lspNameFor(req, base);
  return portNameFor(req, interfaceProvider(pod, provider, req.ifName), base);
}

export interface Removed { ports: string[]; lsps: string[]; ips: string[]; veth: boolean }

export interface RemoveOptions {
  /** Remove the host veth after returning (DEL's fast path); otherwise wait for it. */
  vethInBackground?: boolean;
  /**
   * The port name the request implies (from the pod identity). An ADD whose rollback could not
   * confirm its LSP gone keeps its addresses; if that LSP never committed, no row names them, and
   * only this name lets the DEL free them.
   */
  lspName?: string;
}

/** Addresses held for a port of this sandbox that has no LSP row (the resynced cache says so). */
function releaseUnwritten(deps: Deps, lspName: string, sandbox: string, ifName: string): string[] {
  const holder = portHolder(lspName, sandbox);
  const pools = deps.subnets.all().filter((pool) => pool.holdings(holder).length > 0);
  if (pools.length === 0) return [];
  // Only a connected client's cache is current: a stale one could miss a row that committed.
  if (!deps.nb.connected) throw new OvsdbUnavailableError('cannot confirm that no logical switch port holds the addresses: not connected to the OVN northbound database');
  if (ownLsps(deps.nb, lspName, sandbox, ifName).length > 0) return [];
  return pools.flatMap((pool) => pool.release(holder));
}

export async function removeAttachment(deps: Deps, sandbox: string, ifName: string, opts: RemoveOptions = {}): Promise<Removed> {
  const found = findAttachment(deps, sandbox, ifName);
  // A VF goes back to the node (netdev and PF settings) before its port, which holds its
  // checkpoint, is removed; its representor is the NIC's, never deleted.
  const vfs = found.fromOvs.filter((a) => a.vf !== undefined);
  for (const a of vfs) await releaseVf(deps, a);
  const representors = new Set(vfs.map((a) => a.hostIfName));
  const portNames = [...new Set([hostIfName(sandbox, ifName), ...found.fromOvs.map((a) => a.hostIfName)])].filter((n) => !representors.has(n));
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
  if (opts.lspName !== undefined && !deleted.some((r) => r.name === opts.lspName)) ips.push(...releaseUnwritten(deps, opts.lspName, sandbox, ifName));
  // A VM's address released by a pod of a VM that runs on elsewhere (a migration's source) is
  // the VM's again in the same turn: never free, and its connections live on at the new node.
  const kept = new Set(deps.vmAddresses?.reclaim(ips) ?? []);
  if (kept.size > 0) ips.splice(0, ips.length, ...ips.filter((ip) => !kept.has(ip)));
  // Called in the same turn as the release: the flusher holds the addresses until their
  // conntrack entries are gone, so the next pod given one never meets this pod's connections.
  // DEL does not wait for it (~15 ms through ovs-vswitchd): an ADD asking for one of these
  // addresses does.
  void deps.conntrack?.released(ips);
  let veth = false;
  for (const name of portNames) {
    if (opts.vethInBackground) {
      deps.plumber.destroyInBackground(name, (e) => deps.log.error({ step: 'del', veth: name, err: String(e) }, 'veth removal failed'));
    } else if (await deps.plumber.destroy(name)) {
      veth = true;
    }
  }
  return { ports: [...vfs.map((a) => a.hostIfName), ...ports], lsps, ips, veth };
}

/** Under the VF's lock: the VF put back, then its port (and checkpoint) removed. */
export async function releaseVf(deps: Deps, a: Attachment): Promise<void> {
  const vf = a.vf as VfCheckpoint;
  if (!deps.sriov) throw new PlumbError(`attachment ${a.sandbox.slice(0, 12)}/${a.ifName} holds VF ${vf.vf}, but this daemon runs without SR-IOV support`);
  const sriov = deps.sriov;
  await sriov.withVf(vf.vf, async () => {
    await sriov.release(vf, { netns: a.netns, ifName: a.ifName, mac: a.mac });
    await detachPorts(deps.ovs, deps.node.bridge, [a.hostIfName]);
  });
}
