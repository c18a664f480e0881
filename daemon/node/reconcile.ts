// Leaks: what a crash, an interrupted request or anything else left behind on this node, found
// in the monitored OVSDB views and the node's links, and how each is removed. At start-up no
// request can be in flight, so everything found goes at once (reconcile()); while serving, the
// periodic loop (reconcile-loop.ts) removes a leak only once it is confirmed and under the
// sandbox lock, because an ADD or DEL in flight passes through the same states for a moment.

import type { Deps } from '../context';
import { parsePortHolder, portHolder } from '../ipam/pool';
import { HOST_IF_RE, hostIfName } from '../intent/intent';
import { asMap } from '../ovsdb/values';
import { NB, OVS } from '../ovs/schema';
import { removeAttachment } from '../cmd/del';
import { attachmentKey, type Attachment } from '../store/attachment';
import { EXT, fromInterfaceExternalIds, fromLspExternalIds } from '../store/external-ids';

export type LeakKind = 'netns_gone' | 'lsp_without_port' | 'port_without_lsp' | 'orphan_veth' | 'address_without_lsp';
export const LEAK_KINDS: readonly LeakKind[] = ['netns_gone', 'lsp_without_port', 'port_without_lsp', 'orphan_veth', 'address_without_lsp'];

export interface Leak {
  kind: LeakKind;
  /**
   * Identity across runs: the same leak has the same id. Row UUIDs and the veth's ifindex are
   * part of it, so a row rewritten or a veth recreated under the same name (a retried ADD)
   * is a new leak that must be confirmed afresh.
   */
  id: string;
  /** The sandbox whose CNI requests could race the removal; none for a veth nobody names. */
  sandbox?: string;
  ifName?: string;
  /** Host veth name (orphan_veth). */
  veth?: string;
  /** IPAM holder `<lsp>|<sandbox>` (address_without_lsp). */
  holder?: string;
  /** What the log line says about it. */
  detail: Record<string, string | number>;
}

/** Where leaks come from and how they go; the loop depends on this seam only. */
export interface LeakSource {
  scan(): Promise<Leak[]>;
  /** Looks again, now: true when the leak is still there and still the same (same id). */
  stillLeaking(leak: Leak): Promise<boolean>;
  /** Removes it; resolves with what was removed, for the log. */
  remove(leak: Leak): Promise<Record<string, unknown>>;
}

/** Links of the node netns, by name (the plumber lists and removes them). */
export interface HostLinks {
  /** ifindex of the link with this name, undefined when there is none. */
  index(name: string): Promise<number | undefined>;
}

/**
 * Whether a pod's netns is gone: missing, not a netns any more, or now the node's own (a
 * /proc/<pid>/ns/net path whose pid was reused). Checked off the event loop; a check that could
 * not be made says "not gone", so nothing is removed on a guess.
 */
export async function netnsGone(deps: Pick<Deps, 'native'>, netnsPath: string): Promise<boolean> {
  if (!netnsPath) return true;
  try {
    const found = await deps.native.inspectNetns(netnsPath);
    return found.kind !== 'netns' || found.own;
  } catch {
    return false;
  }
}

interface Sides { sandbox: string; ifName: string; ovs: Array<{ a: Attachment; uuid: string }>; nb: Array<{ a: Attachment; uuid: string }> }

export class NodeLeaks implements LeakSource {
  /** `links` names veths by ifindex too; without it a veth is known by its name only. */
  constructor(private readonly deps: Deps, private readonly links?: HostLinks) {}

  async scan(): Promise<Leak[]> {
    const sides = this.sides();
    const leaks: Leak[] = [];
    for (const s of sides.values()) {
      const leak = await this.classify(s);
      if (leak) leaks.push(leak);
    }
    const referenced = this.referencedVeths(sides);
    for (const name of await this.deps.plumber.hostVethNames()) {
      if (!HOST_IF_RE.test(name) || referenced.has(name)) continue;
      const leak = await this.vethLeak(name);
      if (leak) leaks.push(leak);
    }
    leaks.push(...this.addressLeaks());
    return leaks;
  }

  /**
   * Addresses held for a pod port of which no LSP row exists: an ADD whose rollback could not
   * confirm its write and whose DEL never came. An ADD in flight looks the same until its LSP
   * commits, hence the two-run confirmation and the re-check under the sandbox lock. Only a
   * connected client's cache is trusted: a stale one could miss the row.
   */
  private addressLeaks(holderFilter?: string): Leak[] {
    if (!this.deps.nb.connected) return [];
    const lsps = new Set<string>();
    for (const row of this.deps.nb.rows(NB.lsp).values()) {
      const sandbox = asMap(row.external_ids)[EXT.sandbox];
      if (typeof sandbox === 'string') lsps.add(portHolder(row.name as string, sandbox));
    }
    const held = new Map<string, string[]>();
    for (const pool of this.deps.subnets.all()) {
      for (const holder of pool.owners()) {
        if (!parsePortHolder(holder) || lsps.has(holder) || (holderFilter !== undefined && holder !== holderFilter)) continue;
        held.set(holder, [...(held.get(holder) ?? []), ...pool.holdings(holder)]);
      }
    }
    return [...held].map(([holder, ips]) => {
      const { sandbox } = parsePortHolder(holder) as { sandbox: string };
      return { kind: 'address_without_lsp' as const, id: `address_without_lsp|${holder}|${ips.sort().join(',')}`, sandbox, holder, detail: { holder, ips: ips.join(',') } };
    });
  }

  async stillLeaking(leak: Leak): Promise<boolean> {
    if (leak.kind === 'address_without_lsp') return this.addressLeaks(leak.holder).some((l) => l.id === leak.id);
    if (leak.kind === 'orphan_veth') {
      const name = leak.veth as string;
      if (this.referencedVeths(this.sides()).has(name)) return false;
      if (!(await this.deps.plumber.hostVethNames()).includes(name)) return false;
      return (await this.vethLeak(name))?.id === leak.id;
    }
    const s = this.sides().get(attachmentKey(leak.sandbox as string, leak.ifName as string));
    return s !== undefined && (await this.classify(s))?.id === leak.id;
  }

  async remove(leak: Leak): Promise<Record<string, unknown>> {
    if (leak.kind === 'orphan_veth') return { deleted: await this.deps.plumber.destroy(leak.veth as string) };
    if (leak.kind === 'address_without_lsp') {
      const ips = this.deps.subnets.all().flatMap((pool) => pool.release(leak.holder as string));
      await this.deps.conntrack?.released(ips);
      return { released: ips };
    }
    // Everything of the attachment goes, as a DEL would do it (conntrack of its addresses too).
    return { ...(await removeAttachment(this.deps, leak.sandbox as string, leak.ifName as string)) };
  }

  /** Our attachments as each database records them, by sandbox + interface. */
  private sides(): Map<string, Sides> {
    const out = new Map<string, Sides>();
    const entry = (a: Attachment): Sides => {
      const key = attachmentKey(a.sandbox, a.ifName);
      let s = out.get(key);
      if (!s) { s = { sandbox: a.sandbox, ifName: a.ifName, ovs: [], nb: [] }; out.set(key, s); }
      return s;
    };
    for (const row of this.deps.ovs.rows(OVS.iface).values()) {
      const a = fromInterfaceExternalIds(row.name as string, asMap(row.external_ids) as Record<string, string>);
      if (a) entry(a).ovs.push({ a, uuid: row._uuid });
    }
    for (const row of this.deps.nb.rows(NB.lsp).values()) {
      const a = fromLspExternalIds(row.name as string, asMap(row.external_ids) as Record<string, string>);
      if (a) entry(a).nb.push({ a, uuid: row._uuid });
    }
    return out;
  }

  private async classify(s: Sides): Promise<Leak | undefined> {
    const netns = s.ovs[0]?.a.netns || s.nb[0]?.a.netns || '';
    let kind: LeakKind | undefined;
    if (await netnsGone(this.deps, netns)) kind = 'netns_gone';
    else if (s.ovs.length === 0) kind = 'lsp_without_port';
    else if (s.nb.length === 0) kind = 'port_without_lsp';
    if (!kind) return undefined;
    const rows = [...s.ovs.map((r) => `ovs:${r.uuid}`), ...s.nb.map((r) => `nb:${r.uuid}`)].sort();
    const detail: Record<string, string | number> = { sandbox: s.sandbox, ifname: s.ifName, netns };
    const lsp = s.nb[0]?.a.lspName ?? s.ovs[0]?.a.lspName;
    if (lsp) detail.lsp = lsp;
    return { kind, id: `${kind}|${attachmentKey(s.sandbox, s.ifName)}|${rows.join(',')}`, sandbox: s.sandbox, ifName: s.ifName, detail };
  }

  /** Names an attachment of ours accounts for: its OVS port, or the veth its sandbox derives. */
  private referencedVeths(sides: Map<string, Sides>): Set<string> {
    const names = new Set([...this.deps.ovs.rows(OVS.port).values()].map((p) => p.name as string));
    for (const s of sides.values()) {
      names.add(hostIfName(s.sandbox, s.ifName));
      for (const { a } of [...s.ovs, ...s.nb]) if (a.hostIfName) names.add(a.hostIfName);
    }
    return names;
  }

  private async vethLeak(name: string): Promise<Leak | undefined> {
    const index = this.links ? await this.links.index(name) : undefined;
    if (this.links && index === undefined) return undefined; // went away meanwhile
    const detail: Record<string, string | number> = { veth: name };
    if (index !== undefined) detail.ifindex = index;
    return { kind: 'orphan_veth', id: `orphan_veth|${name}|${index ?? ''}`, veth: name, detail };
  }
}

/**
 * Start-up reconciliation, before the CNI socket serves: every leak is removed at once (no
 * request can be in flight, so nothing needs confirming). Returns how many were removed.
 */
export async function reconcile(deps: Deps): Promise<number> {
  const source = new NodeLeaks(deps);
  let removed = 0;
  for (const leak of await source.scan()) {
    try {
      const what = await source.remove(leak);
      deps.metrics.reconcileRemoved.inc({ kind: leak.kind });
      deps.log.info({ step: 'reconcile', kind: leak.kind, ...leak.detail, ...what }, 'removed leak');
      removed++;
    } catch (e) {
      deps.metrics.reconcileErrors.inc({ kind: leak.kind });
      deps.log.error({ step: 'reconcile', kind: leak.kind, ...leak.detail, err: e }, 'leak removal failed');
    }
  }
  return removed;
}
