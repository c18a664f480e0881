// Pods of other nodes on this zone's shared switches: one `remote` Logical_Switch_Port per pod,
// with the pod's own MAC and addresses (so ARP is answered and routers resolve it as anywhere
// else), the tunnel key its node gave the pod's port (tunnel-keys.ts), and bound to that node's
// chassis. northd creates the binding of a remote port but leaves its chassis empty (ovn-ic sets
// it); this zone sets it, and ovn-controller then tunnels the port's packets to that chassis.
//
// Inputs are the pods' write-backs (annotations of allocated pods, as the policy reads remote
// peers), the peers' Node contracts and this NB's switches. Rows carry the peer's node name in
// external_ids: only those are changed or removed; a local port of the same name always wins.
// One NB and one SB transaction per pass; a burst of changes folds into two passes at most.

import type { Logger } from 'pino';
import type { ObjectStore } from '../objects/types';
import type { OvsdbClient } from '../ovsdb/client';
import type { Operation, WireRow } from '../ovsdb/types';
import { asArray, asMap, namedUuid, ovsMap, ovsSet, uuid, type Row } from '../ovsdb/values';
import { NB, SB } from '../ovs/schema';
import { LatestSync } from '../node/latest-sync';
import { ANNOTATION } from '../policy/port-settings';
import { recordedIps } from '../policy/pods';
import type { PodObj } from '../objects/types';
import type { Cidr } from '../ipam/cidr';
import { keyCidr, portKeyIn } from './tunnel-keys';
import { macForIp } from '../ipam/mac';
import type { PeerNode } from './node-contract';
import { REMOTE_NODE_KEY } from './remote-chassis';

export const REMOTE_PORT_NODE = REMOTE_NODE_KEY;
const REMOTE_PORT_POD = 'ovnode:pod';

export interface RemotePort {
  lspName: string;
  logicalSwitch: string;
  node: string;
  chassis: string;
  /** "MAC IP..." */
  address: string;
  tunnelKey: number;
  pod: string;
}

/** Why a remote pod gets no port here (reported once per pod and reason). */
export type Skip = (pod: string, why: string) => void;

export interface RemotePortInputs {
  store: Pick<ObjectStore, 'list' | 'get'>;
  localNode: string;
  /** Where peers' node ports (their transit addresses) go. */
  joinSwitch?: string;
  peers: readonly PeerNode[];
  nb: Pick<OvsdbClient, 'rows'>;
}

/** The remote ports this zone should hold. */
export function desiredRemotePorts(input: RemotePortInputs, skip: Skip = () => {}): RemotePort[] {
  const chassisOf = new Map(input.peers.filter((p) => p.node !== input.localNode).map((p) => [p.node, p.chassisId]));
  // The key CIDR of each of ovnode's switches, parsed once per pass rather than once per pod.
  const keyCidrs = new Map<string, Cidr | undefined>();
  for (const ls of input.nb.rows(NB.ls).values()) {
    const cidrs = asMap(ls.external_ids)['ovnode:cidrs'];
    if (typeof cidrs === 'string' && cidrs !== '') keyCidrs.set(ls.name as string, keyCidr(cidrs.split(',')));
  }
  const out: RemotePort[] = [];
  const taken = new Set<string>();
  // One port per (switch, key). Two pods with one address: the owner node released it from a pod
  // being deleted (its API object outlives its sandbox) and gave it to a new one; the live, newer
  // pod gets the port, the first in store order on a tie.
  const bySlot = new Map<string, { facts: PodFacts; port: RemotePort }>();
  for (const obj of input.store.list('Pod')) {
    const facts = podFacts(obj);
    if (!facts || facts.node === input.localNode) continue;
    const { pod, node } = facts;
    const chassis = chassisOf.get(node);
    if (chassis === undefined) { skip(pod, `node ${node} has not joined (no ovnode contract on its Node)`); continue; }
    const cidr = keyCidrs.get(facts.logicalSwitch);
    if (!cidr) { skip(pod, `logical switch ${facts.logicalSwitch} does not exist here`); continue; }
    const tunnelKey = facts.keyIn(cidr);
    if (tunnelKey === undefined) { skip(pod, `address ${facts.ips.join(',')} is outside the first 32767 addresses of ${facts.logicalSwitch}, which are all a spanning switch can key`); continue; }
    if (!facts.mac) { skip(pod, 'no mac_address annotation'); continue; }
    const slot = `${facts.logicalSwitch}#${tunnelKey}`;
    const port: RemotePort = { lspName: facts.lspName, logicalSwitch: facts.logicalSwitch, node, chassis, address: facts.address, tunnelKey, pod };
    const held = bySlot.get(slot);
    if (!held) { bySlot.set(slot, { facts, port }); continue; }
    const [winner, loser] = liveAndNewerFirst(facts, held.facts) < 0 ? [{ facts, port }, held] : [held, { facts, port }];
    bySlot.set(slot, winner);
    skip(loser.facts.pod, `another pod has address ${loser.facts.ips.join(',')} on ${loser.facts.logicalSwitch} (its node is releasing it)`);
  }
  for (const [slot, { port }] of bySlot) { taken.add(slot); out.push(port); }
  const joinCidr = input.joinSwitch === undefined ? undefined : keyCidrs.get(input.joinSwitch);
  for (const peer of input.peers) {
    if (peer.transitIp === undefined || peer.node === input.localNode || !joinCidr || input.joinSwitch === undefined) continue;
    const who = `node/${peer.node}`;
    const tunnelKey = portKeyIn(joinCidr, [peer.transitIp]);
    if (tunnelKey === undefined) { skip(who, `transit address ${peer.transitIp} is not a keyed address of ${input.joinSwitch}`); continue; }
    const slot = `${input.joinSwitch}#${tunnelKey}`;
    if (taken.has(slot)) { skip(who, `transit address ${peer.transitIp} is published by another node too`); continue; }
    taken.add(slot);
    // The node port's name and MAC are what the peer itself writes (node-<name>, macForIp).
    out.push({
      lspName: `node-${peer.node}`, logicalSwitch: input.joinSwitch, node: peer.node, chassis: peer.chassisId,
      address: `${macForIp(peer.transitIp)} ${peer.transitIp}`, tunnelKey, pod: who,
    });
  }
  return out;
}

/** What a remote port needs from a pod, derived once per (immutable) pod object. */
interface PodFacts {
  pod: string;
  lspName: string;
  node: string;
  logicalSwitch: string;
  mac: string;
  ips: string[];
  address: string;
  deleting: boolean;
  createdAt: string;
  /** The port key in a switch's key CIDR (the last answer is kept: switches rarely change). */
  keyIn(cidr: Cidr): number | undefined;
}

// Store objects are frozen and replaced on change, never mutated: their identity is a cache key.
const factsCache = new WeakMap<PodObj, PodFacts | null>();

/** The pod as another node's allocated pod would be seen; null for what never gets a remote port. */
function podFacts(obj: PodObj): PodFacts | null {
  const cached = factsCache.get(obj);
  if (cached !== undefined) return cached;
  const ann = obj.metadata.annotations;
  const node = obj.spec.nodeName ?? '';
  const ips = recordedIps(obj);
  let facts: PodFacts | null = null;
  if (ips) {
    const mac = ann[ANNOTATION.macAddress] ?? '';
    let lastCidr: Cidr | undefined;
    let lastKey: number | undefined;
    facts = {
      pod: `${obj.metadata.namespace}/${obj.metadata.name}`, lspName: `${obj.metadata.name}.${obj.metadata.namespace}`,
      node, logicalSwitch: ann[ANNOTATION.logicalSwitch] ?? '', mac, ips, address: [mac, ...ips].join(' '),
      deleting: obj.status?.deleting === true, createdAt: obj.status?.createdAt ?? '',
      keyIn: (cidr) => {
        if (cidr !== lastCidr) { lastCidr = cidr; lastKey = portKeyIn(cidr, ips); }
        return lastKey;
      },
    };
  }
  factsCache.set(obj, facts);
  return facts;
}

/** Negative when `a` should hold a shared address rather than `b`: not being deleted, then newer. */
function liveAndNewerFirst(a: Pick<PodFacts, 'deleting' | 'createdAt'>, b: Pick<PodFacts, 'deleting' | 'createdAt'>): number {
  if (a.deleting !== b.deleting) return a.deleting ? 1 : -1;
  return a.createdAt === b.createdAt ? 0 : a.createdAt < b.createdAt ? 1 : -1;
}

function portRow(p: RemotePort): WireRow {
  return {
    name: p.lspName,
    type: 'remote',
    addresses: ovsSet([p.address]),
    options: ovsMap({ 'requested-chassis': p.chassis, 'requested-tnl-key': String(p.tunnelKey) }),
    external_ids: ovsMap({ [REMOTE_PORT_NODE]: p.node, [REMOTE_PORT_POD]: p.pod }),
  };
}

function sameRow(row: Row, p: RemotePort): boolean {
  const opts = asMap(row.options);
  const ids = asMap(row.external_ids);
  const addrs = asArray<string>(row.addresses);
  return row.type === 'remote' && addrs.length === 1 && addrs[0] === p.address && opts['requested-chassis'] === p.chassis
    && opts['requested-tnl-key'] === String(p.tunnelKey) && Object.keys(opts).length === 2
    && ids[REMOTE_PORT_NODE] === p.node && ids[REMOTE_PORT_POD] === p.pod;
}

/** NB operations that make this zone's remote ports exactly `desired`. */
export function planRemotePorts(nb: Pick<OvsdbClient, 'rows'>, desired: readonly RemotePort[], skip: Skip = () => {}, gone: string[] = []): Operation[] {
  const lsps = nb.rows(NB.lsp);
  const switchOf = new Map<string, Row>();
  for (const ls of nb.rows(NB.ls).values()) for (const u of asArray<string>(ls.ports)) switchOf.set(u, ls);
  const ours = new Map<string, Row>();
  const local = new Map<string, Row>();
  // A local port's key on a switch: a remote port may not request it (a freed address still in
  // use here until the local DEL completes).
  const localKeys = new Set<string>();
  for (const row of lsps.values()) {
    if (asMap(row.external_ids)[REMOTE_PORT_NODE] !== undefined) { ours.set(row.name as string, row); continue; }
    local.set(row.name as string, row);
    const key = asMap(row.options)['requested-tnl-key'];
    const ls = switchOf.get(row._uuid);
    if (key !== undefined && ls) localKeys.add(`${ls.name as string}#${key}`);
  }
  const ops: Operation[] = [];
  const wanted = new Set<string>();
  // Addresses a remote port no longer has here: their conntrack state goes (a reused address must
  // not inherit a flow of the pod that had it).
  const addressesOf = (row: Row): string[] => asArray<string>(row.addresses).flatMap((l) => l.split(' ').slice(1));
  const unlink = (row: Row): void => {
    gone.push(...addressesOf(row));
    const ls = switchOf.get(row._uuid);
    if (ls) ops.push({ op: 'mutate', table: NB.ls, where: [['_uuid', '==', uuid(ls._uuid)]], mutations: [['ports', 'delete', ovsSet([uuid(row._uuid)])]] });
    ops.push({ op: 'delete', table: NB.lsp, where: [['_uuid', '==', uuid(row._uuid)]] });
  };
  for (const p of desired) {
    if (local.has(p.lspName)) { skip(p.pod, `a local port ${p.lspName} exists (the pod's previous sandbox here is being removed)`); continue; }
    if (localKeys.has(`${p.logicalSwitch}#${p.tunnelKey}`)) { skip(p.pod, `tunnel key ${p.tunnelKey} on ${p.logicalSwitch} is still a local port's`); continue; }
    wanted.add(p.lspName);
    const row = ours.get(p.lspName);
    const onSwitch = row ? switchOf.get(row._uuid)?.name === p.logicalSwitch : false;
    if (row && onSwitch) {
      if (!sameRow(row, p)) {
        const now = new Set(p.address.split(' ').slice(1));
        gone.push(...addressesOf(row).filter((ip) => !now.has(ip) || !asArray<string>(row.addresses)[0]?.startsWith(`${p.address.split(' ')[0]} `)));
        ops.push({ op: 'update', table: NB.lsp, where: [['_uuid', '==', uuid(row._uuid)]], row: portRow(p) });
      }
      continue;
    }
    if (row) unlink(row);
    const ref = `rp${ops.length}`;
    ops.push(
      { op: 'insert', table: NB.lsp, 'uuid-name': ref, row: portRow(p) },
      { op: 'mutate', table: NB.ls, where: [['name', '==', p.logicalSwitch]], mutations: [['ports', 'insert', ovsSet([namedUuid(ref)])]] },
    );
  }
  for (const [name, row] of ours) if (!wanted.has(name)) unlink(row);
  return ops;
}

/** SB operations binding each remote port to its node's chassis (rows northd has created so far). */
export function planRemoteBindings(sb: Pick<OvsdbClient, 'rows'>, desired: readonly RemotePort[]): Operation[] {
  const chassisByName = new Map<string, string>();
  for (const c of sb.rows(SB.chassis).values()) chassisByName.set(c.name as string, c._uuid);
  const want = new Map(desired.map((p) => [p.lspName, p.chassis]));
  const ops: Operation[] = [];
  for (const pb of sb.rows(SB.pb).values()) {
    if (pb.type !== 'remote') continue;
    const chassis = want.get(pb.logical_port as string);
    if (chassis === undefined) continue;
    const target = chassisByName.get(chassis);
    const current = asArray<string>(pb.chassis)[0];
    if (target === undefined || current === target) continue;
    ops.push({ op: 'update', table: SB.pb, where: [['_uuid', '==', uuid(pb._uuid)]], row: { chassis: uuid(target) } });
  }
  return ops;
}

export interface RemotePortsOptions {
  nb: OvsdbClient;
  sb: OvsdbClient;
  store: ObjectStore;
  localNode: string;
  joinSwitch?: string;
  peers: () => readonly PeerNode[];
  /** Addresses other nodes' pods no longer hold here (gone, or now another pod's): flush their conntrack state. */
  onAddressesGone?: (ips: string[]) => void;
  /** Ports were written: port groups that list them can now hold them. */
  onPortsWritten?: () => void;
  log: Logger;
}

export class RemotePorts {
  readonly #sync: LatestSync<void>;
  readonly #reported = new Set<string>();
  readonly #unsubscribe: Array<() => void> = [];

  constructor(private readonly opts: RemotePortsOptions) {
    this.#sync = new LatestSync(() => this.#apply(), (e) => {
      opts.log.error({ step: 'remote-ports', err: e }, 'writing remote ports failed; retried on the next change');
    });
  }

  /** Follows the store, the NB's switches and the SB's bindings from now on. */
  start(): Promise<void> {
    this.#unsubscribe.push(this.opts.store.onChange(() => void this.sync()));
    // A switch that appears, goes or changes its CIDRs; not the ports this controller adds to it.
    const onNb = (table: string, _u: string, old: Row | undefined, row: Row | undefined): void => {
      if (table !== NB.ls) return;
      if (!old || !row || asMap(old.external_ids)['ovnode:cidrs'] !== asMap(row.external_ids)['ovnode:cidrs']) void this.sync();
    };
    // A remote binding northd created, or one left (or put back) without a chassis; a chassis that
    // appears or goes. Not the chassis this controller just set.
    const onSb = (table: string, _u: string, old: Row | undefined, row: Row | undefined): void => {
      if (table === SB.pb && row?.type === 'remote' && (!old || asArray<string>(row.chassis).length === 0)) void this.sync();
      else if (table === SB.chassis && (!old || !row)) void this.sync();
    };
    this.opts.nb.on('change', onNb);
    this.opts.sb.on('change', onSb);
    this.#unsubscribe.push(() => this.opts.nb.off('change', onNb), () => this.opts.sb.off('change', onSb));
    return this.sync();
  }

  sync(): Promise<void> {
    return this.#sync.request(undefined);
  }

  stop(): void {
    for (const u of this.#unsubscribe.splice(0)) u();
  }

  async #apply(): Promise<void> {
    const { nb, sb, log } = this.opts;
    const skip: Skip = (pod, why) => {
      // A node that has not joined holds back all its pods: one line per node, not per pod.
      const key = why.startsWith('node ') ? why : `${pod}|${why}`;
      if (this.#reported.has(key)) return;
      if (this.#reported.size > 10_000) this.#reported.clear();
      this.#reported.add(key);
      log.warn({ step: 'remote-ports', pod, reason: why }, 'remote pod not reachable from this node');
    };
    const { store, localNode, joinSwitch } = this.opts;
    const desired = desiredRemotePorts({ store, localNode, peers: this.opts.peers(), nb, ...(joinSwitch === undefined ? {} : { joinSwitch }) }, skip);
    const gone: string[] = [];
    const nbOps = planRemotePorts(nb, desired, skip, gone);
    if (nbOps.length > 0) {
      await nb.transact([...nbOps, { op: 'comment', comment: 'ovnode: remote ports' }]);
      log.info({ step: 'remote-ports', ports: desired.length, ops: nbOps.length, gone: gone.length }, 'remote ports written');
      if (gone.length > 0) this.opts.onAddressesGone?.([...new Set(gone)]);
      this.opts.onPortsWritten?.();
    }
    const sbOps = planRemoteBindings(sb, desired);
    if (sbOps.length > 0) {
      await sb.transact([...sbOps, { op: 'comment', comment: 'ovnode: remote port bindings' }]);
      log.debug({ step: 'remote-ports', bound: sbOps.length }, 'remote ports bound');
    }
  }
}
