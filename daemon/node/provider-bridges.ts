// Provider bridges of underlay networks (Kube-OVN's ProviderNetwork): for each provider the node
// has a bridge br-<provider> holding its uplink interface as a trunk port, and the Open_vSwitch
// row's external_ids:ovn-bridge-mappings maps the provider (OVN's "physical network") to it. For
// every localnet port of that network ovn-controller then creates a patch-port pair between
// br-int and br-<provider>; the VLAN tag is the localnet port's, added and stripped in br-int, so
// the provider bridge only switches (NORMAL) between the patch ports and the uplink.
//
// syncProviderBridges makes OVS match a desired list: it reads what is there in one select-only
// transaction (the daemon's monitor lacks Bridge external_ids/other_config/fail_mode and Port
// trunks/tag/vlan_mode) and writes every difference in ONE transaction, none when nothing differs.
// It owns the bridges it created (external_ids ovnode:owner=ovnode + ovnode:provider), their
// uplink ports (external_ids ovnode:uplink) and the mapping entries naming those bridges; other
// bridges, ports (ovn-controller's patch ports on our bridges included) and mappings are left alone.
//
// The uplink's kernel state (addresses, routes, sysctls) is not touched here, and it differs by
// datapath:
// - kernel datapath (system): openvswitch.ko's rx_handler takes every frame the NIC receives away
//   from the kernel stack, so an address left on the uplink stops working at once. Kube-OVN moves
//   the node's addresses and routes onto the bridge's internal port there (configProviderNic).
// - userspace datapath (netdev): the uplink stays an ordinary kernel netdev that ovs-vswitchd reads
//   with an AF_PACKET socket (in promiscuous mode) and writes with one. The kernel stack still sees
//   every frame, so an address on the uplink keeps answering, but: the node's own packets leave
//   straight through the NIC, bypassing the bridge, while vswitchd's packets go to the wire and
//   never into the local stack, so the node and the underlay pods of the same node cannot reach
//   each other (a physical switch does not send a frame back out of the port it came in on; this
//   follows from how packet sockets work and is not measured here); and every frame is handled
//   twice, by the stack and by vswitchd, as underlay-bridge.ts measured for br-phy.
//   Kube-OVN skips the address move on the userspace datapath. Here, an uplink used for an underlay
//   should carry no node address (a dedicated NIC); keeping one would mean moving it to
//   br-<provider>'s local tap and silencing the NIC as underlay-bridge.ts does for br-phy, which
//   this module does not do.
// Either way the caller hands over an address-free interface; nothing here moves IPs.

import type { Logger } from 'pino';
import { InvalidConfigError, OvsdbError } from '../../common/errors';
import type { OvsdbClient } from '../ovsdb/client';
import type { Condition, Mutation, Operation, WireRow } from '../ovsdb/types';
import { asArray, asMap, decodeRow, namedUuid, ovsMap, ovsSet, uuid, type Atom, type Row } from '../ovsdb/values';
import { OVS } from '../ovs/schema';

/** The Open_vSwitch external_ids key ovn-controller reads: `physnet:bridge[,physnet:bridge...]`. */
export const BRIDGE_MAPPINGS_KEY = 'ovn-bridge-mappings';

/**
 * Markers. Bridge: owner + provider (both required to count as a provider bridge ovnode may change
 * or delete). Uplink Port: uplink=<provider>; deliberately not ovnode:owner, which pod ports carry.
 */
export const PROVIDER_KEYS = { owner: 'ovnode:owner', provider: 'ovnode:provider', uplink: 'ovnode:uplink' } as const;
export const PROVIDER_OWNER = 'ovnode';

/** br-<provider> is a kernel interface name (the local port's tap): IFNAMSIZ-1 = 15, so 12 (Kube-OVN's rule). */
export const MAX_PROVIDER_LENGTH = 12;

export const providerBridgeName = (provider: string): string => `br-${provider}`;

export interface ProviderBridgeSpec {
  /** OVN's physical network name (localnet options:network_name); the bridge is br-<provider>. */
  provider: string;
  /** The uplink, a kernel interface of the node's netns. */
  interface: string;
  /** The uplink port's trunks: the VLANs of the network's subnets, 0 for untagged; empty = all VLANs. */
  vlanIds: number[];
}

export interface ProviderBridgeDeps { ovs: OvsdbClient; log: Logger; datapathType: 'netdev' | 'system' }

/** Bridge names (br-<provider>), sorted. `updated`: existing bridges whose rows, ports or mapping changed. */
export interface ProviderBridgeSyncResult { created: string[]; removed: string[]; updated: string[] }

/** One entry of ovn-bridge-mappings; physnet/bridge undefined when the text is not `a:b`. */
export interface BridgeMapping { text: string; physnet?: string; bridge?: string }

export function parseBridgeMappings(value: unknown): BridgeMapping[] {
  if (typeof value !== 'string') return [];
  return value.split(',').map((t) => t.trim()).filter((t) => t !== '').map((text) => {
    const i = text.indexOf(':');
    return i > 0 && i < text.length - 1 ? { text, physnet: text.slice(0, i), bridge: text.slice(i + 1) } : { text };
  });
}

/**
 * Makes OVS match `desired` (the complete list for this node): creates, fixes and removes provider
 * bridges and their mappings in one transaction; none when everything matches. Throws
 * InvalidConfigError (nothing written) for a bad spec, a br-<provider> ovnode does not own, an
 * uplink held by a bridge ovnode does not own, or a foreign mapping of the same provider.
 */
export async function syncProviderBridges(deps: ProviderBridgeDeps, desired: ProviderBridgeSpec[]): Promise<ProviderBridgeSyncResult> {
  const specs = validate(desired);
  const snap = await readSnapshot(deps.ovs);
  const plan = new Plan(snap);
  const created: string[] = [];
  const removed: string[] = [];
  const updated = new Set<string>();
  const wanted = new Set(specs.map((s) => s.bridge));

  // Owned bridges no longer desired go first: an uplink moving off one of them is then free.
  for (const b of snap.bridges.values()) {
    if (!isProviderBridge(b) || wanted.has(b.name as string)) continue;
    plan.deleteBridge(b);
    removed.push(b.name as string);
  }
  for (const spec of specs) {
    const row = snap.bridgesByName.get(spec.bridge);
    if (row && !isProviderBridge(row)) {
      throw new InvalidConfigError(`provider ${spec.provider}: bridge ${spec.bridge} exists and is not ovnode's `
        + `(no external_ids ${PROVIDER_KEYS.owner}=${PROVIDER_OWNER}, ${PROVIDER_KEYS.provider}); remove or rename it first`);
    }
    if (!row) {
      plan.createBridge(spec, deps.datapathType);
      created.push(spec.bridge);
    } else if (plan.fixBridge(row, spec, deps.datapathType)) {
      updated.add(spec.bridge);
    }
  }
  for (const b of plan.mappingChanges(specs)) if (!created.includes(b)) updated.add(b);

  const result = { created: created.sort(), removed: removed.sort(), updated: [...updated].sort() };
  if (plan.ops.length === 0) {
    deps.log.debug({ step: 'provider-bridges', bridges: [...wanted] }, 'provider bridges up to date');
    return result;
  }
  await deps.ovs.transact([
    ...plan.ops,
    { op: 'comment', comment: `ovnode: provider bridges ${[...wanted].join(',') || '(none)'}` },
  ]);
  deps.log.info({ step: 'provider-bridges', ...result, ops: plan.ops.length }, 'provider bridges synced');
  return result;
}

interface Spec { provider: string; bridge: string; iface: string; trunks: number[] }

// A kernel interface name: 1..15 bytes, no '/', ':' or whitespace (dev_valid_name), and none of
// the separators of ovn-bridge-mappings. Providers are restricted further to name-like strings.
const IFNAME = /^[^/:,\s]{1,15}$/;
const PROVIDER = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function validate(desired: ProviderBridgeSpec[]): Spec[] {
  const specs: Spec[] = [];
  const seen = new Map<string, string>();
  for (const d of desired) {
    const what = `provider ${JSON.stringify(d.provider)}`;
    if (!PROVIDER.test(d.provider)) throw new InvalidConfigError(`${what}: not a valid provider name (letters, digits, '.', '_', '-')`);
    if (d.provider.length > MAX_PROVIDER_LENGTH) {
      throw new InvalidConfigError(`${what}: longer than ${MAX_PROVIDER_LENGTH} characters (its bridge br-${d.provider} would exceed the 15-character interface name limit)`);
    }
    if (!IFNAME.test(d.interface) || d.interface === '.' || d.interface === '..') {
      throw new InvalidConfigError(`${what}: ${JSON.stringify(d.interface)} is not a valid interface name`);
    }
    for (const v of d.vlanIds) {
      if (!Number.isInteger(v) || v < 0 || v > 4095) throw new InvalidConfigError(`${what}: VLAN id ${v} is not in 0..4095`);
    }
    for (const [key, label] of [[`p:${d.provider}`, 'provider'], [`i:${d.interface}`, 'interface']] as const) {
      const other = seen.get(key);
      if (other !== undefined) throw new InvalidConfigError(`${what}: ${label} also used by provider ${other}`);
      seen.set(key, d.provider);
    }
    specs.push({ provider: d.provider, bridge: providerBridgeName(d.provider), iface: d.interface, trunks: [...new Set(d.vlanIds)].sort((a, b) => a - b) });
  }
  const bridges = new Set(specs.map((s) => s.bridge));
  for (const s of specs) if (bridges.has(s.iface)) throw new InvalidConfigError(`provider ${s.provider}: interface ${s.iface} is a provider bridge's name`);
  return specs;
}

interface Snapshot {
  root: Row;
  bridges: Map<string, Row>;
  bridgesByName: Map<string, Row>;
  ports: Map<string, Row>;
  ifaces: Map<string, Row>;
  /** Port UUID -> the bridge holding it. */
  bridgeOfPort: Map<string, Row>;
}

/**
 * Everything in one select-only transaction, so the picture is consistent. Port and Interface
 * are read whole but narrow: a node has a few hundred pod ports at most, and a sync runs when
 * provider networks change, not per pod.
 */
async function readSnapshot(ovs: OvsdbClient): Promise<Snapshot> {
  const [root, bridges, ports, ifaces] = await ovs.transact([
    { op: 'select', table: OVS.root, where: [], columns: ['_uuid', 'external_ids'] },
    { op: 'select', table: OVS.bridge, where: [], columns: ['_uuid', 'name', 'ports', 'datapath_type', 'fail_mode', 'other_config', 'external_ids'] },
    { op: 'select', table: OVS.port, where: [], columns: ['_uuid', 'name', 'interfaces', 'trunks', 'tag', 'vlan_mode', 'external_ids'] },
    { op: 'select', table: OVS.iface, where: [], columns: ['_uuid', 'name', 'type'] },
  ]);
  const decode = (rows: Record<string, unknown>[] | undefined): Map<string, Row> => new Map((rows ?? [])
    .map((r) => decodeRow(String((r._uuid as [string, string])[1]), r)).map((r): [string, Row] => [r._uuid, r]));
  const rootRow = [...decode(root?.rows).values()][0];
  // A Bridge that the root row does not reference is garbage-collected at commit (Bridge is not a
  // root table): without the row there is nothing to attach a bridge to.
  if (!rootRow) throw new OvsdbError('provider bridges: the Open_vSwitch table has no row (configureChassis creates it)');
  const b = decode(bridges?.rows);
  const bridgeOfPort = new Map<string, Row>();
  for (const row of b.values()) for (const p of asArray<string>(row.ports)) bridgeOfPort.set(p, row);
  return {
    root: rootRow, bridges: b, bridgesByName: new Map([...b.values()].map((r): [string, Row] => [r.name as string, r])),
    ports: decode(ports?.rows), ifaces: decode(ifaces?.rows), bridgeOfPort,
  };
}

const isProviderBridge = (b: Row): boolean => {
  const ids = asMap(b.external_ids);
  return ids[PROVIDER_KEYS.owner] === PROVIDER_OWNER && typeof ids[PROVIDER_KEYS.provider] === 'string' && ids[PROVIDER_KEYS.provider] !== '';
};
const byUuid = (u: string): Condition[] => [['_uuid', '==', uuid(u)]];
const sameNumbers = (a: number[], b: number[]): boolean => a.length === b.length && [...a].sort((x, y) => x - y).every((v, i) => v === b[i]);
const strings = (m: Record<string, unknown>): Record<string, string> => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, String(v)]));

/**
 * In-band control makes vswitchd add hidden flows so that controllers and managers can be reached
 * through the bridge's local port; nothing is reached through a provider bridge, and such flows
 * would divert ARP and traffic of the physical network. Off, as on br-int and br-phy.
 * Not set, on purpose:
 * - fail_mode stays empty, OVS' default (standalone): with no controller (ovn-controller programs
 *   br-int only) vswitchd then installs its NORMAL flow and the bridge is a MAC-learning switch
 *   between the uplink and ovn-controller's patch ports. `secure` would leave it without a single
 *   flow, the underlay dark, so a `secure` found on an owned bridge is cleared (`standalone`
 *   written by someone else means the same and is left).
 * - other_config:hwaddr: Kube-OVN pins a generated MAC because the node's addresses move onto the
 *   bridge's internal port, whose MAC would otherwise follow the lowest port MAC; nothing here uses
 *   that port. Kube-OVN's mac-learning-fallback is an option of its patched OVS, not upstream's.
 */
const OTHER_CONFIG = { 'disable-in-band': 'true' } as const;

/** The write transaction being built from a snapshot. */
class Plan {
  readonly ops: Operation[] = [];
  private seq = 0;
  private readonly deletedPorts = new Set<string>();
  private readonly deletedBridges = new Set<string>();

  constructor(private readonly snap: Snapshot) {}

  /** Removes an owned bridge from the root row; its ports and interfaces are garbage-collected with it. */
  deleteBridge(b: Row): void {
    this.deletedBridges.add(b._uuid);
    this.ops.push(
      { op: 'mutate', table: OVS.root, where: [], mutations: [['bridges', 'delete', ovsSet([uuid(b._uuid)])]] },
      { op: 'delete', table: OVS.bridge, where: byUuid(b._uuid) },
    );
  }

  createBridge(spec: Spec, datapathType: string): void {
    this.claimUplink(spec, undefined);
    const ports = [this.insertPort(spec.bridge, { type: 'internal' }), this.insertUplink(spec)];
    const br = this.ref('br');
    this.ops.push(
      {
        op: 'insert', table: OVS.bridge, 'uuid-name': br,
        row: {
          name: spec.bridge, ports: ovsSet(ports), datapath_type: datapathType,
          other_config: ovsMap(OTHER_CONFIG), external_ids: ovsMap(bridgeIds(spec)),
        },
      },
      { op: 'mutate', table: OVS.root, where: [], mutations: [['bridges', 'insert', ovsSet([namedUuid(br)])]] },
    );
  }

  /** Brings an owned bridge in line; true when that took an operation. */
  fixBridge(row: Row, spec: Spec, datapathType: string): boolean {
    const before = this.ops.length;
    const where = byUuid(row._uuid);
    if (row.datapath_type !== datapathType) this.ops.push({ op: 'update', table: OVS.bridge, where, row: { datapath_type: datapathType } });
    if (asArray(row.fail_mode)[0] === 'secure') this.ops.push({ op: 'update', table: OVS.bridge, where, row: { fail_mode: ovsSet([]) } });
    this.mergeKeys(OVS.bridge, row, 'other_config', OTHER_CONFIG);
    this.mergeKeys(OVS.bridge, row, 'external_ids', bridgeIds(spec));
    const ports = asArray<string>(row.ports).map((u) => this.snap.ports.get(u)).filter((p): p is Row => p !== undefined);
    const add: Atom[] = [];
    // The local port, as ovs-vsctl add-br creates it (on netdev a tap device br-<provider>, left down).
    if (!ports.some((p) => p.name === spec.bridge)) add.push(this.insertPort(spec.bridge, { type: 'internal' }));
    const uplink = this.claimUplink(spec, row);
    if (uplink) this.fixUplink(uplink, spec);
    else add.push(this.insertUplink(spec));
    // A former uplink (the interface changed); ovn-controller's patch ports carry no marker.
    for (const p of ports) if (p !== uplink && asMap(p.external_ids)[PROVIDER_KEYS.uplink] !== undefined) this.removePort(p);
    if (add.length > 0) this.ops.push({ op: 'mutate', table: OVS.bridge, where, mutations: [['ports', 'insert', ovsSet(add)]] });
    return this.ops.length > before;
  }

  /**
   * Rewrites ovn-bridge-mappings when it differs from the foreign entries plus ours; returns the
   * desired bridges whose entries changed. Conditional on the external_ids read (a `wait`): the
   * value is rewritten whole, and a mapping someone added meanwhile must not be lost; the
   * transaction then fails and the next sync starts from the new value.
   */
  mappingChanges(specs: Spec[]): string[] {
    const ids = asMap(this.snap.root.external_ids);
    const current = parseBridgeMappings(ids[BRIDGE_MAPPINGS_KEY]);
    const owned = new Set([...[...this.snap.bridges.values()].filter(isProviderBridge).map((b) => b.name as string), ...specs.map((s) => s.bridge)]);
    const foreign = current.filter((m) => m.bridge === undefined || !owned.has(m.bridge));
    for (const s of specs) {
      const clash = foreign.find((m) => m.physnet === s.provider);
      if (clash) {
        throw new InvalidConfigError(`provider ${s.provider}: ${BRIDGE_MAPPINGS_KEY} already maps it to ${clash.bridge ?? '?'}, `
          + `a bridge ovnode does not own (entry "${clash.text}"); remove that entry first`);
      }
    }
    const next = [...foreign.map((m) => m.text), ...specs.map((s) => `${s.provider}:${s.bridge}`)];
    const have = current.map((m) => m.text);
    const sortedNext = [...next].sort();
    if (have.length === next.length && [...have].sort().every((t, i) => t === sortedNext[i])) return [];
    const entriesOf = (list: BridgeMapping[], bridge: string): string => list.filter((m) => m.bridge === bridge).map((m) => m.text).sort().join(',');
    const nextParsed = parseBridgeMappings(next.join(','));
    const changed = specs.filter((s) => entriesOf(current, s.bridge) !== entriesOf(nextParsed, s.bridge)).map((s) => s.bridge);
    this.ops.unshift({
      op: 'wait', table: OVS.root, where: [], columns: ['external_ids'], until: '==', rows: [{ external_ids: ovsMap(strings(ids)) }], timeout: 0,
    });
    this.ops.push({
      op: 'mutate', table: OVS.root, where: [],
      mutations: [
        ['external_ids', 'delete', ovsSet([BRIDGE_MAPPINGS_KEY])],
        ...(next.length > 0 ? [['external_ids', 'insert', ovsMap({ [BRIDGE_MAPPINGS_KEY]: next.join(',') })]] satisfies Mutation[] : []),
      ],
    });
    return changed;
  }

  /**
   * Finds the Port rows holding the uplink (by port name, or as a member interface): returns the
   * one that is already right on `target`; any other is deleted when its bridge is ovnode's (or
   * none holds it), and refused otherwise.
   */
  private claimUplink(spec: Spec, target: Row | undefined): Row | undefined {
    const ifaceIds = new Set([...this.snap.ifaces.values()].filter((i) => i.name === spec.iface).map((i) => i._uuid));
    let keep: Row | undefined;
    for (const port of this.snap.ports.values()) {
      const members = asArray<string>(port.interfaces);
      if (port.name !== spec.iface && !members.some((u) => ifaceIds.has(u))) continue;
      const holder = this.snap.bridgeOfPort.get(port._uuid);
      if (target && holder === target && port.name === spec.iface && members.length === 1 && ifaceIds.has(members[0] as string)) {
        keep = port;
        continue;
      }
      if (holder && !isProviderBridge(holder)) {
        throw new InvalidConfigError(`provider ${spec.provider}: interface ${spec.iface} is a port of bridge ${String(holder.name)}, `
          + `which ovnode does not own; remove it from ${String(holder.name)} first`);
      }
      this.removePort(port);
    }
    return keep;
  }

  private fixUplink(port: Row, spec: Spec): void {
    const row: WireRow = {};
    if (!sameNumbers(asArray<number>(port.trunks), spec.trunks)) row.trunks = ovsSet(spec.trunks);
    // A tag or a vlan_mode would turn the trunk into an access (or native) port.
    if (asArray(port.tag).length > 0) row.tag = ovsSet([]);
    if (asArray(port.vlan_mode).length > 0) row.vlan_mode = ovsSet([]);
    if (Object.keys(row).length > 0) this.ops.push({ op: 'update', table: OVS.port, where: byUuid(port._uuid), row });
    this.mergeKeys(OVS.port, port, 'external_ids', { [PROVIDER_KEYS.uplink]: spec.provider });
    const iface = this.snap.ifaces.get(asArray<string>(port.interfaces)[0] as string);
    if (iface && iface.type !== '' && iface.type !== 'system') this.ops.push({ op: 'update', table: OVS.iface, where: byUuid(iface._uuid), row: { type: '' } });
  }

  /** Deletes a Port and its Interfaces explicitly (a new row of the same name may be inserted in the same transaction). */
  private removePort(port: Row): void {
    if (this.deletedPorts.has(port._uuid)) return;
    this.deletedPorts.add(port._uuid);
    const bridge = this.snap.bridgeOfPort.get(port._uuid);
    if (bridge && !this.deletedBridges.has(bridge._uuid)) {
      this.ops.push({ op: 'mutate', table: OVS.bridge, where: byUuid(bridge._uuid), mutations: [['ports', 'delete', ovsSet([uuid(port._uuid)])]] });
    }
    this.ops.push({ op: 'delete', table: OVS.port, where: byUuid(port._uuid) });
    for (const i of asArray<string>(port.interfaces)) this.ops.push({ op: 'delete', table: OVS.iface, where: byUuid(i) });
  }

  /** The uplink: type "" (a system device), a trunk of the spec's VLANs, marked as ovnode's. */
  private insertUplink(spec: Spec): Atom {
    return this.insertPort(spec.iface, {}, { trunks: ovsSet(spec.trunks), external_ids: ovsMap({ [PROVIDER_KEYS.uplink]: spec.provider }) });
  }

  private insertPort(name: string, iface: { type?: string }, port: WireRow = {}): Atom {
    const i = this.ref('iface');
    const p = this.ref('port');
    this.ops.push(
      { op: 'insert', table: OVS.iface, 'uuid-name': i, row: { name, ...(iface.type ? { type: iface.type } : {}) } },
      { op: 'insert', table: OVS.port, 'uuid-name': p, row: { name, interfaces: namedUuid(i), ...port } },
    );
    return namedUuid(p);
  }

  private mergeKeys(table: string, row: Row, column: string, want: Record<string, string>): void {
    const have = asMap(row[column]);
    if (Object.entries(want).every(([k, v]) => have[k] === v)) return;
    this.ops.push({ op: 'mutate', table, where: byUuid(row._uuid), mutations: [[column, 'delete', ovsSet(Object.keys(want))], [column, 'insert', ovsMap(want)]] });
  }

  private ref(prefix: string): string {
    return `${prefix}${++this.seq}`;
  }
}

const bridgeIds = (spec: Spec): Record<string, string> => ({ [PROVIDER_KEYS.owner]: PROVIDER_OWNER, [PROVIDER_KEYS.provider]: spec.provider });
