// Pods of other nodes on this zone's shared switches: which Logical_Switch_Ports this
// zone should hold. One per pod, with the pod's own MAC and addresses (so ARP is answered and
// routers resolve it as anywhere else), the tunnel key its node gave the pod's port
// (tunnel-keys.ts), and bound to that node's chassis; and one per peer for its node port on the
// join switch. Inputs are the pods' write-backs (annotations of allocated pods, as the policy
// reads remote peers), the peers' Node contracts and this NB's switches.
//
// A switch and key (a "slot") holds one port. Two pods with one address: the owner node released
// it from a pod being deleted (its API object outlives its sandbox) and gave it to a new one; the
// live, newer pod gets the port, the first in namespace/name order on a tie. SlotTable keeps every
// candidate of every slot, so one pod's change re-decides only the slots it left and entered
// (remote-ports-sync.ts works that way; desiredRemotePorts is the whole computation).

import type { ObjectStore, PodObj } from '../objects/types';
import type { OvsdbClient } from '../ovsdb/client';
import { asMap } from '../ovsdb/values';
import { NB } from '../ovs/schema';
import { recordedIps } from '../policy/pods';
import { PRIMARY_PROVIDER } from '../intent/provider';
import { atSameOffset, parseCidr, type Cidr } from '../ipam/cidr';
import { keyCidr, portKeyIn } from './tunnel-keys';
import { macForIp } from '../ipam/mac';
import type { PeerNode } from './node-contract';
import { bindingNodes, portBaseName, vmAddressPod, vmBinding, vmOf, VmPodIndex, type VmRef } from './kubevirt';

export const REMOTE_PORT_POD = 'ovnode:pod';

export interface RemotePort {
  lspName: string;
  logicalSwitch: string;
  node: string;
  chassis: string;
  /** A migrating VM's other location (kubevirt.ts): its binding lists it as an additional chassis. */
  additionalChassis?: string[];
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

/** What every pod's decision reads besides the pod: derived once per full pass. */
export interface PassContext {
  localNode: string;
  joinSwitch?: string;
  peers: readonly PeerNode[];
  chassisOf: ReadonlyMap<string, string>;
  /** The key CIDR of each of ovnode's switches (parsed once, not once per pod). */
  keyCidrs: ReadonlyMap<string, Cidr | undefined>;
  /** The join switch's IPv6 CIDR (dual stack): a peer's IPv6 join address mirrors its IPv4 one. */
  joinCidr6?: Cidr;
  /** The pods of a VM (grouped once per pass). */
  vmPods: (vm: VmRef) => readonly PodObj[];
}

/** A VM pod lookup over the store as it is now, grouped on first use. */
export function vmPodLookup(store: Pick<ObjectStore, 'list'>): (vm: VmRef) => readonly PodObj[] {
  let index: VmPodIndex | undefined;
  return (vm) => (index ??= new VmPodIndex(store.list('Pod'))).pods(vm);
}

export function passContext(input: RemotePortInputs): PassContext {
  const chassisOf = new Map(input.peers.filter((p) => p.node !== input.localNode).map((p) => [p.node, p.chassisId]));
  const keyCidrs = new Map<string, Cidr | undefined>();
  let joinCidr6: Cidr | undefined;
  for (const ls of input.nb.rows(NB.ls).values()) {
    const cidrs = asMap(ls.external_ids)['ovnode:cidrs'];
    if (typeof cidrs !== 'string' || cidrs === '') continue;
    keyCidrs.set(ls.name as string, keyCidr(cidrs.split(',')));
    if (ls.name === input.joinSwitch) joinCidr6 = cidrs.split(',').map((c) => parseCidr(c)).find((c) => c.family === 6);
  }
  return {
    localNode: input.localNode, peers: input.peers, chassisOf, keyCidrs, vmPods: vmPodLookup(input.store),
    ...(input.joinSwitch === undefined ? {} : { joinSwitch: input.joinSwitch }),
    ...(joinCidr6 === undefined ? {} : { joinCidr6 }),
  };
}

/** What a remote port needs from a pod, derived once per (immutable) pod object. */
interface PodFacts {
  pod: string;
  namespace: string;
  name: string;
  lspName: string;
  node: string;
  logicalSwitch: string;
  mac: string;
  ips: string[];
  address: string;
  deleting: boolean;
  createdAt: string;
  /** The VM whose port this is (a virt-launcher pod's). */
  vm?: VmRef;
  /** The port key in a switch's key CIDR (the last answer is kept: switches rarely change). */
  keyIn(cidr: Cidr): number | undefined;
}

/** A pod that would hold `slot` if no better pod claims it. */
export interface Candidate {
  facts: PodFacts;
  port: RemotePort;
  slot: string;
}

export const slotOf = (logicalSwitch: string, tunnelKey: number | string): string => `${logicalSwitch}#${tunnelKey}`;

// Store objects are frozen and replaced on change, never mutated: their identity is a cache key.
const factsCache = new WeakMap<PodObj, PodFacts[]>();

const ALLOCATED_SUFFIX = '.kubernetes.io/allocated';

/**
 * The pod's interfaces as another node's allocated pod would be seen: the cluster network's
 * (ovn.kubernetes.io/*, port `<pod>.<ns>`) and each secondary network's its node wrote back
 * (`<provider>.kubernetes.io/*`, port `<pod>.<ns>.<provider>`); none for what never gets a port.
 */
function podFacts(obj: PodObj): PodFacts[] {
  const cached = factsCache.get(obj);
  if (cached !== undefined) return cached;
  const out: PodFacts[] = [];
  if (recordedIps(obj)) {
    for (const [key, value] of Object.entries(obj.metadata.annotations)) {
      if (value !== 'true' || !key.endsWith(ALLOCATED_SUFFIX)) continue;
      const provider = key.slice(0, -ALLOCATED_SUFFIX.length);
      const facts = interfaceFacts(obj, provider === PRIMARY_PROVIDER ? undefined : provider);
      if (facts) out.push(facts);
    }
  }
  factsCache.set(obj, out);
  return out;
}

function interfaceFacts(obj: PodObj, provider: string | undefined): PodFacts | undefined {
  const ann = obj.metadata.annotations;
  const at = (k: string): string | undefined => ann[`${provider ?? PRIMARY_PROVIDER}.kubernetes.io/${k}`];
  const ips = (at('ip_address') ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  if (ips.length === 0) return undefined;
  const mac = at('mac_address') ?? '';
  let lastCidr: Cidr | undefined;
  let lastKey: number | undefined;
  const { name, namespace } = obj.metadata;
  // A VM's pods share its port, named for the VM.
  const base = portBaseName(obj);
  const vm = vmOf(obj);
  return {
    ...(vm ? { vm } : {}),
    pod: `${namespace}/${name}`, namespace, name, lspName: provider === undefined ? `${base}.${namespace}` : `${base}.${namespace}.${provider}`,
    node: obj.spec.nodeName ?? '', logicalSwitch: at('logical_switch') ?? '', mac, ips, address: [mac, ...ips].join(' '),
    deleting: obj.status?.deleting === true, createdAt: obj.status?.createdAt ?? '',
    keyIn: (cidr) => {
      if (cidr !== lastCidr) { lastCidr = cidr; lastKey = portKeyIn(cidr, ips); }
      return lastKey;
    },
  };
}

/** Each of the pod's interfaces' claims on a slot (reasons for those without one told to `skip`). */
export function candidatesOf(obj: PodObj, ctx: PassContext, skip: Skip): Candidate[] {
  return podFacts(obj).flatMap((f) => {
    const c = candidateFor(f, ctx, skip);
    return c ? [c] : [];
  });
}

function candidateFor(facts: PodFacts, ctx: PassContext, skip: Skip): Candidate | undefined {
  if (facts.node === ctx.localNode) return undefined;
  const { pod, node } = facts;
  const chassis = ctx.chassisOf.get(node);
  if (chassis === undefined) { skip(pod, `node ${node} has not joined (no ovnode contract on its Node)`); return undefined; }
  const cidr = ctx.keyCidrs.get(facts.logicalSwitch);
  if (!cidr) { skip(pod, `logical switch ${facts.logicalSwitch} does not exist here`); return undefined; }
  const tunnelKey = facts.keyIn(cidr);
  if (tunnelKey === undefined) { skip(pod, `address ${facts.ips.join(',')} is outside the first 32767 addresses of ${facts.logicalSwitch}, which are all a spanning switch can key`); return undefined; }
  if (!facts.mac) { skip(pod, 'no mac_address annotation'); return undefined; }
  return {
    facts, slot: slotOf(facts.logicalSwitch, tunnelKey),
    port: { lspName: facts.lspName, logicalSwitch: facts.logicalSwitch, node, chassis, address: facts.address, tunnelKey, pod },
  };
}

/** Negative when `a` should hold a shared address rather than `b`: not being deleted, then newer, then namespace/name order. */
function betterHolder(a: PodFacts, b: PodFacts): number {
  if (a.deleting !== b.deleting) return a.deleting ? 1 : -1;
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  const ns = a.namespace.localeCompare(b.namespace);
  return ns !== 0 ? ns : a.name.localeCompare(b.name);
}

/** Every pod's candidates (one per interface), by slot and by pod, with each slot's holder decided on demand. */
export class SlotTable {
  readonly #bySlot = new Map<string, Candidate[]>();
  readonly #byPod = new Map<string, Candidate[]>();

  /** Replaces the pod's candidates (none: it has none now). Returns the slots whose holder may have changed. */
  set(pod: string, next: readonly Candidate[]): string[] {
    const touched = new Set<string>();
    for (const c of this.#byPod.get(pod) ?? []) {
      const rest = (this.#bySlot.get(c.slot) ?? []).filter((x) => x !== c);
      if (rest.length > 0) this.#bySlot.set(c.slot, rest); else this.#bySlot.delete(c.slot);
      touched.add(c.slot);
    }
    this.#byPod.delete(pod);
    if (next.length > 0) this.#byPod.set(pod, [...next]);
    for (const c of next) {
      this.#bySlot.set(c.slot, [...(this.#bySlot.get(c.slot) ?? []), c]);
      touched.add(c.slot);
    }
    return [...touched];
  }

  /** The slot's holder and the candidates it beat (a VM's other pods share its port: none of them lost). */
  holder(slot: string): { holder: Candidate | undefined; losers: Candidate[] } {
    const list = this.#bySlot.get(slot) ?? [];
    let best: Candidate | undefined;
    for (const c of list) if (!best || betterHolder(c.facts, best.facts) < 0) best = c;
    return { holder: best, losers: list.filter((c) => c !== best && !(c.facts.vm && c.facts.lspName === best?.facts.lspName)) };
  }

  /** The slots a pod's candidates are on. */
  slotsOf(pod: string): string[] {
    return (this.#byPod.get(pod) ?? []).map((c) => c.slot);
  }

  slots(): IterableIterator<string> { return this.#bySlot.keys(); }
}

/** The whole table from the store. */
export function slotTable(store: Pick<ObjectStore, 'list'>, ctx: PassContext, skip: Skip): SlotTable {
  const table = new SlotTable();
  for (const obj of store.list('Pod')) {
    const cs = candidatesOf(obj, ctx, skip);
    if (cs.length > 0) table.set(`${obj.metadata.namespace}/${obj.metadata.name}`, cs);
  }
  return table;
}

/**
 * The port a slot's holder gets here: its own, or for a VM's port the chassis its VM is bound to
 * now (serving node first, a migration's target next), leaving out this node's own chassis,
 * whose ovn-controller binds a local port itself. Undefined when the VM is served only here.
 */
export function holderPort(c: Candidate, ctx: PassContext): RemotePort | undefined {
  if (!c.facts.vm) return c.port;
  const pods = ctx.vmPods(c.facts.vm);
  // Pods of one VM with different addresses each hold a slot: only the address the VM uses
  // gets the port (one port of that name).
  const factsOf = (p: PodObj): PodFacts | undefined => podFacts(p).find((f) => f.lspName === c.facts.lspName);
  const ref = vmAddressPod(pods, (p) => factsOf(p) !== undefined);
  if (ref && factsOf(ref)?.address !== c.facts.address) return undefined;
  const b = vmBinding(pods);
  if (!b) return c.port;
  const nodes = bindingNodes(b).filter((n) => n !== ctx.localNode);
  const chassis = nodes.map((n) => ctx.chassisOf.get(n)).filter((x): x is string => x !== undefined);
  const [main, ...additional] = chassis;
  if (main === undefined) return undefined;
  return { ...c.port, node: nodes[0] as string, chassis: main, ...(additional.length > 0 ? { additionalChassis: additional } : {}) };
}

export const lostSlot = (c: Candidate): string => `another pod has address ${c.facts.ips.join(',')} on ${c.facts.logicalSwitch} (its node is releasing it)`;

/** The peers' node ports on the join switch, on slots no pod holds. */
export function nodePorts(ctx: PassContext, taken: ReadonlySet<string>, skip: Skip): RemotePort[] {
  const { joinSwitch } = ctx;
  const joinCidr = joinSwitch === undefined ? undefined : ctx.keyCidrs.get(joinSwitch);
  if (joinSwitch === undefined || !joinCidr) return [];
  const out: RemotePort[] = [];
  const held = new Set(taken);
  for (const peer of ctx.peers) {
    if (peer.transitIp === undefined || peer.node === ctx.localNode) continue;
    const who = `node/${peer.node}`;
    const tunnelKey = portKeyIn(joinCidr, [peer.transitIp]);
    if (tunnelKey === undefined) { skip(who, `transit address ${peer.transitIp} is not a keyed address of ${joinSwitch}`); continue; }
    const slot = slotOf(joinSwitch, tunnelKey);
    if (held.has(slot)) { skip(who, `transit address ${peer.transitIp} is published by another node too`); continue; }
    held.add(slot);
    // The node port's name and MAC are what the peer itself writes (node-<name>, macForIp).
    const ip6 = ctx.joinCidr6 === undefined ? undefined : atSameOffset(joinCidr, peer.transitIp, ctx.joinCidr6);
    out.push({
      lspName: `node-${peer.node}`, logicalSwitch: joinSwitch, node: peer.node, chassis: peer.chassisId,
      address: [macForIp(peer.transitIp), peer.transitIp, ...(ip6 ? [ip6] : [])].join(' '), tunnelKey, pod: who,
    });
  }
  return out;
}

/** The remote ports this zone should hold (the whole computation). */
export function desiredRemotePorts(input: RemotePortInputs, skip: Skip = () => {}): RemotePort[] {
  const ctx = passContext(input);
  const table = slotTable(input.store, ctx, skip);
  const out: RemotePort[] = [];
  const taken = new Set<string>();
  for (const slot of table.slots()) {
    const { holder, losers } = table.holder(slot);
    for (const l of losers) skip(l.facts.pod, lostSlot(l));
    const port = holder && holderPort(holder, ctx);
    if (!port) continue;
    taken.add(slot);
    out.push(port);
  }
  out.push(...nodePorts(ctx, taken, skip));
  return out;
}
