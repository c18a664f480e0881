// The underlay bridge of the userspace datapath. OVS netdev tunnels (Geneve) are sent and received
// by ovs-vswitchd itself, not by kernel sockets, and it routes them through an OVS bridge whose
// local port holds the tunnel endpoint's address: so the overlay interface (--encap-interface,
// e.g. eth1) becomes a port of a netdev bridge `br-phy`, whose local port (a tap device) takes the
// interface's MAC (other_config:hwaddr), MTU, IPv4 addresses and routes, and the kernel is kept
// from answering on the raw interface. Start-up only (it may block briefly on /proc/sys writes).

import { readFileSync, writeFileSync } from 'node:fs';
import { createRtNetlink, type RtNetlinkSocket } from 'netlink';
import type { Logger } from 'pino';
import { InvalidConfigError } from '../../common/errors';
import { parseCidr, parseIp } from '../ipam/cidr';
import type { LinkInfo, Rtnl } from '../kernel/rtnl';
import type { OvsdbClient } from '../ovsdb/client';
import type { Condition, Operation, WireRow } from '../ovsdb/types';
import { asArray, asMap, decodeRow, namedUuid, ovsMap, ovsSet, uuid, type Atom, type Row } from '../ovsdb/values';
import { OVS } from '../ovs/schema';

export const UNDERLAY_BRIDGE = 'br-phy';

/**
 * Bridge external_ids recording what was moved onto the bridge: a restart after the tap device
 * was removed (or a release) still knows the encap address, its routes and the sysctls to restore.
 */
export const UNDERLAY_KEYS = {
  iface: 'ovnode:underlay-interface',
  addresses: 'ovnode:underlay-addresses',
  routes: 'ovnode:underlay-routes',
  sysctls: 'ovnode:underlay-sysctls',
} as const;

/**
 * Keeping the kernel quiet on the raw interface. Measured on the lab kernel (6.18, veth underlay,
 * test/integration/underlay-bridge.test.ts): every frame reaches both vswitchd (AF_PACKET) and the
 * kernel's stack; without these the kernel answers ARP for the br-phy address on eth1 too (two
 * replies per request, DUP pings) and answers each Geneve datagram with ICMP port unreachable for
 * UDP 6081 (Udp NoPorts and Icmp OutDestUnreachs grow). arp_ignore=8 never answers ARP on eth1;
 * rp_filter=1 drops every IPv4 packet received on it, because an interface without an IPv4
 * address fails source validation in strict and loose mode alike (fib_validate_source's
 * last_resort), so a host-wide all/rp_filter=2 cannot weaken it (the kernel uses the max of all
 * and the interface). Both are per-interface files, written without spawning a process; an
 * nftables netdev ingress chain with policy drop worked as well but needs the nft program.
 */
const GUARD_SYSCTLS: Readonly<Record<string, string>> = { rp_filter: '1', arp_ignore: '8' };

/** Kernel operations this module needs beyond Rtnl, in the netns the module works in. */
export interface UnderlayKernel {
  /** False when the interface did not have the address. */
  deleteAddress(index: number, cidr: string): Promise<boolean>;
  setMtu(index: number, mtu: number): Promise<void>;
  /** A file under /proc/sys, e.g. net/ipv4/conf/eth1/rp_filter. */
  readSysctl(key: string): string;
  writeSysctl(key: string, value: string): void;
  close(): void;
}

export interface UnderlayBridgeDeps { ovs: OvsdbClient; rtnl: Rtnl; kernel: UnderlayKernel; log: Logger }
export interface UnderlaySpec {
  /** The overlay interface, e.g. eth1 (--encap-interface). */
  interface: string;
  /** Default br-phy. */
  bridge?: string;
  /** ovs-vswitchd is about to be started, not adopted: the persisted ofport is stale. */
  freshSwitch?: boolean;
}
export interface UnderlayResult { encapIp: string; mtu: number }

interface MovedRoute { dst: string; gateway?: string }
/** What prepare found and finish applies. */
export interface UnderlayPlan extends UnderlayResult {
  iface: LinkInfo;
  bridge: string;
  /** IPv4 addresses in CIDR notation, the encap address first. */
  addresses: string[];
  routes: MovedRoute[];
}

/** Opens the kernel seam in the current netns; `enter` wraps the synchronous parts (tests: Netns.runIn). */
export function openUnderlayKernel(enter: <T>(fn: () => T) => T = (fn) => fn()): UnderlayKernel {
  const sock = enter(() => createRtNetlink());
  return new NetlinkUnderlayKernel(sock, enter);
}

/** Idempotent set-up; returns the encap IPv4 address and the interface's MTU. Needs a running vswitchd. */
export async function ensureUnderlayBridge(deps: UnderlayBridgeDeps, spec: UnderlaySpec, signal: AbortSignal): Promise<UnderlayResult> {
  return finishUnderlayBridge(deps, await prepareUnderlayBridge(deps, spec), signal);
}

/**
 * First half, ovs-vswitchd need not run yet: reads the addresses (from the interface; after a
 * restart from the bridge's tap device; when that was removed, from the record in OVSDB) and
 * writes the bridge rows in one transaction, none when they are already right.
 */
export async function prepareUnderlayBridge(deps: UnderlayBridgeDeps, spec: UnderlaySpec): Promise<UnderlayPlan> {
  const bridge = spec.bridge ?? UNDERLAY_BRIDGE;
  const iface = await deps.rtnl.getLink(spec.interface);
  if (!iface) throw new InvalidConfigError(`--encap-interface ${spec.interface}: no such interface in this network namespace`);
  const { bridgeRow, localIface } = await selectRows(deps.ovs, bridge);
  const record = asMap(bridgeRow?.external_ids);
  if (record[UNDERLAY_KEYS.iface] !== undefined && record[UNDERLAY_KEYS.iface] !== spec.interface) {
    throw new InvalidConfigError(`${bridge} carries ${String(record[UNDERLAY_KEYS.iface])}, not ${spec.interface}: release it first`);
  }
  const tap = await deps.rtnl.getLink(bridge);
  const onIface = await v4Addresses(deps.rtnl, iface.index);
  const onTap = tap ? await v4Addresses(deps.rtnl, tap.index) : [];
  const recorded = splitList(record[UNDERLAY_KEYS.addresses]);
  const addresses = onIface.length > 0 ? onIface : onTap.length > 0 ? onTap : recorded;
  const first = addresses[0];
  if (!first) throw new InvalidConfigError(`--encap-interface ${spec.interface}: the interface has no IPv4 address`);
  const found = await routesVia(deps.rtnl, [iface.index, ...(tap ? [tap.index] : [])], addresses);
  const routes = onIface.length + onTap.length > 0 ? found : splitList(record[UNDERLAY_KEYS.routes]).map(parseRoute);
  const plan: UnderlayPlan = { iface, bridge, addresses, routes, encapIp: first.split('/')[0] as string, mtu: iface.mtu };
  const sysctls = record[UNDERLAY_KEYS.sysctls] !== undefined ? String(record[UNDERLAY_KEYS.sysctls])
    : Object.keys(GUARD_SYSCTLS).map((k) => `${k}=${deps.kernel.readSysctl(sysctlKey(spec.interface, k))}`).join(',');
  const ids = {
    [UNDERLAY_KEYS.iface]: spec.interface, [UNDERLAY_KEYS.addresses]: addresses.join(','),
    [UNDERLAY_KEYS.routes]: routes.map(formatRoute).join(','), [UNDERLAY_KEYS.sysctls]: sysctls,
  };
  const ops = bridgeOps({ ovs: deps.ovs, plan, bridgeRow, localIface, ids, freshSwitch: spec.freshSwitch === true });
  if (ops.length > 0) await deps.ovs.transact(ops);
  deps.log.debug({ step: 'underlay', bridge, interface: spec.interface, addresses, ops: ops.length }, 'underlay bridge rows');
  return plan;
}

/** Second half, with ovs-vswitchd running: the tap takes MTU, addresses and routes; the interface is silenced. */
export async function finishUnderlayBridge(deps: UnderlayBridgeDeps, plan: UnderlayPlan, signal: AbortSignal): Promise<UnderlayResult> {
  const { rtnl, kernel } = deps;
  // vswitchd creates (or re-opens: it is persistent) the tap when it adds the port, then sets ofport.
  await deps.ovs.waitFor(OVS.iface, (r) => r.name === plan.bridge && typeof r.ofport === 'number' && r.ofport > 0, signal);
  const tap = await rtnl.getLink(plan.bridge);
  if (!tap) throw new Error(`${plan.bridge} has an ofport but no kernel device`);
  if (tap.mtu !== plan.mtu) await kernel.setMtu(tap.index, plan.mtu);
  if (!tap.up) await rtnl.setUp(tap.index);
  if (!plan.iface.up) await rtnl.setUp(plan.iface.index);
  const onTap = await v4Addresses(rtnl, tap.index);
  for (const a of plan.addresses) if (!onTap.includes(a)) await rtnl.addAddress(tap.index, a);
  // Before the interface loses its addresses (and with them its routes); REPLACE moves a route.
  const tapRoutes = new Set((await routesVia(rtnl, [tap.index], plan.addresses)).map(formatRoute));
  for (const r of plan.routes) if (!tapRoutes.has(formatRoute(r))) await rtnl.addRoute({ ...r, oif: tap.index });
  // Secondaries first: deleting a primary address takes its secondaries with it.
  for (const a of (await v4Addresses(rtnl, plan.iface.index)).reverse()) await kernel.deleteAddress(plan.iface.index, a);
  for (const [k, v] of Object.entries(GUARD_SYSCTLS)) {
    const key = sysctlKey(plan.iface.name, k);
    if (kernel.readSysctl(key) !== v) kernel.writeSysctl(key, v);
  }
  deps.log.info({ step: 'underlay', bridge: plan.bridge, interface: plan.iface.name, encapIp: plan.encapIp, routes: plan.routes.length }, 'underlay bridge ready');
  return { encapIp: plan.encapIp, mtu: plan.mtu };
}

/**
 * Puts the addresses, routes and sysctls back on the interface and removes the bridge (full stop
 * of a stack the daemon owns). Needs the Open_vSwitch database; vswitchd removes the tap when it
 * runs, and the tap is deleted here in case it does not.
 */
export async function releaseUnderlayBridge(deps: UnderlayBridgeDeps, spec: UnderlaySpec): Promise<void> {
  const bridge = spec.bridge ?? UNDERLAY_BRIDGE;
  const { rtnl, kernel } = deps;
  const { bridgeRow } = await selectRows(deps.ovs, bridge);
  const record = asMap(bridgeRow?.external_ids);
  const iface = await rtnl.getLink(spec.interface);
  const tap = await rtnl.getLink(bridge);
  if (iface) {
    const onTap = tap ? await v4Addresses(rtnl, tap.index) : [];
    const addresses = onTap.length > 0 ? onTap : splitList(record[UNDERLAY_KEYS.addresses]);
    const routes = tap && onTap.length > 0 ? await routesVia(rtnl, [tap.index], addresses) : splitList(record[UNDERLAY_KEYS.routes]).map(parseRoute);
    for (const a of addresses) await rtnl.addAddress(iface.index, a);
    for (const r of routes) await rtnl.addRoute({ ...r, oif: iface.index });
    for (const kv of splitList(record[UNDERLAY_KEYS.sysctls])) {
      const [k, v] = kv.split('=');
      if (k && v !== undefined && k in GUARD_SYSCTLS) kernel.writeSysctl(sysctlKey(spec.interface, k), v);
    }
  }
  if (bridgeRow) {
    await deps.ovs.transact([
      { op: 'delete', table: OVS.bridge, where: [['_uuid', '==', uuid(bridgeRow._uuid)]] },
      { op: 'mutate', table: OVS.root, where: [], mutations: [['bridges', 'delete', ovsSet([uuid(bridgeRow._uuid)])]] },
    ]);
  }
  await rtnl.deleteLink(bridge);
  deps.log.info({ step: 'underlay', bridge, interface: spec.interface }, 'underlay bridge released');
}

/** The Bridge row and its local Interface row, with the columns the daemon's monitor leaves out. */
async function selectRows(ovs: OvsdbClient, bridge: string): Promise<{ bridgeRow?: Row; localIface?: Row }> {
  const [b, i] = await ovs.transact([
    { op: 'select', table: OVS.bridge, where: [['name', '==', bridge]], columns: ['_uuid', 'ports', 'datapath_type', 'other_config', 'external_ids'] },
    { op: 'select', table: OVS.iface, where: [['name', '==', bridge]], columns: ['_uuid', 'mtu_request'] },
  ]);
  const decode = (r: Record<string, unknown> | undefined): Row | undefined => (r ? decodeRow(String((r._uuid as [string, string])[1]), r) : undefined);
  return { bridgeRow: decode(b?.rows?.[0]), localIface: decode(i?.rows?.[0]) };
}

interface BridgeOpsInput {
  ovs: OvsdbClient; plan: UnderlayPlan; bridgeRow: Row | undefined; localIface: Row | undefined;
  ids: Record<string, string>; freshSwitch: boolean;
}

/** An Interface and its Port, named in the transaction by the port's name. */
function portOps(name: string, type: string, mtu?: number): Operation[] {
  const tag = name.replace(/\W/g, '_');
  return [
    { op: 'insert', table: OVS.iface, 'uuid-name': `if_${tag}`, row: { name, type, ...(mtu ? { mtu_request: mtu } : {}) } },
    { op: 'insert', table: OVS.port, 'uuid-name': `port_${tag}`, row: { name, interfaces: namedUuid(`if_${tag}`) } },
  ];
}
const portRef = (name: string): Atom => namedUuid(`port_${name.replace(/\W/g, '_')}`);

/** The operations that make br-phy right: created whole, or only what differs (often nothing). */
function bridgeOps(x: BridgeOpsInput): Operation[] {
  const { plan, bridgeRow } = x;
  const otherConfig = { hwaddr: plan.iface.mac, 'disable-in-band': 'true' };
  if (!bridgeRow) {
    return [
      ...portOps(plan.bridge, 'internal', plan.mtu),
      ...portOps(plan.iface.name, ''),
      {
        op: 'insert', table: OVS.bridge, 'uuid-name': 'br',
        row: {
          name: plan.bridge, ports: ovsSet([portRef(plan.bridge), portRef(plan.iface.name)]), datapath_type: 'netdev',
          other_config: ovsMap(otherConfig), external_ids: ovsMap(x.ids),
        },
      },
      { op: 'mutate', table: OVS.root, where: [], mutations: [['bridges', 'insert', ovsSet([namedUuid('br')])]] },
    ];
  }
  const ops: Operation[] = [];
  const where: Condition[] = [['_uuid', '==', uuid(bridgeRow._uuid)]];
  if (bridgeRow.datapath_type !== 'netdev') ops.push({ op: 'update', table: OVS.bridge, where, row: { datapath_type: 'netdev' } });
  for (const [column, want] of [['other_config', otherConfig], ['external_ids', x.ids]] as const) {
    const have = asMap(bridgeRow[column]);
    if (Object.entries(want).every(([k, v]) => have[k] === v)) continue;
    ops.push({ op: 'mutate', table: OVS.bridge, where, mutations: [[column, 'delete', ovsSet(Object.keys(want))], [column, 'insert', ovsMap(want)]] });
  }
  const portNames = new Set(asArray<string>(bridgeRow.ports).map((u) => x.ovs.rows(OVS.port).get(u)?.name));
  for (const [name, type] of [[plan.bridge, 'internal'], [plan.iface.name, '']] as const) {
    if (portNames.has(name)) continue;
    ops.push(...portOps(name, type, name === plan.bridge ? plan.mtu : undefined));
    ops.push({ op: 'mutate', table: OVS.bridge, where, mutations: [['ports', 'insert', ovsSet([portRef(name)])]] });
  }
  if (x.localIface && portNames.has(plan.bridge)) {
    const row: WireRow = {};
    if (asArray<number>(x.localIface.mtu_request)[0] !== plan.mtu) row.mtu_request = plan.mtu;
    // As for br-int's ports (ovs/bridge.ts): the ofport left by the previous vswitchd would make
    // "the tap exists" look true before the new one has created it.
    if (x.freshSwitch) row.ofport = ovsSet([]);
    if (Object.keys(row).length > 0) ops.push({ op: 'update', table: OVS.iface, where: [['_uuid', '==', uuid(x.localIface._uuid)]], row });
  }
  return ops;
}

class NetlinkUnderlayKernel implements UnderlayKernel {
  constructor(private readonly sock: RtNetlinkSocket, private readonly enter: <T>(fn: () => T) => T) {}

  async deleteAddress(index: number, cidr: string): Promise<boolean> {
    const [ip, prefix] = cidr.split('/');
    const buf = v4Buffer(ip as string);
    try {
      await this.sock.delAddress({ family: 2 /* AF_INET */, prefixlen: Number(prefix), index }, { local: buf, address: buf });
      return true;
    } catch (e) {
      if (/EADDRNOTAVAIL/.test(String(e))) return false;
      throw e;
    }
  }

  async setMtu(index: number, mtu: number): Promise<void> {
    await this.sock.setLink({ index }, { mtu });
  }

  // Synchronous on purpose: /proc/sys/net resolves to the netns of the thread that opens the file,
  // and an asynchronous write would open it on a libuv pool thread, whose netns is not ours to choose.
  readSysctl(key: string): string { return this.enter(() => readFileSync(`/proc/sys/${key}`, 'utf8').trim()); }
  writeSysctl(key: string, value: string): void { this.enter(() => writeFileSync(`/proc/sys/${key}`, value)); }
  close(): void { this.sock.socket.close(); }
}

// An interface name with a dot (eth1.100) is a literal directory name under /proc/sys.
const sysctlKey = (ifName: string, name: string): string => `net/ipv4/conf/${ifName}/${name}`;

function v4Buffer(ip: string): Buffer {
  const { family, value } = parseIp(ip);
  if (family !== 4) throw new Error(`not an IPv4 address: ${ip}`);
  const b = Buffer.alloc(4);
  b.writeUInt32BE(Number(value));
  return b;
}

async function v4Addresses(rtnl: Rtnl, index: number): Promise<string[]> {
  return (await rtnl.listAddresses(index)).filter((a) => !a.includes(':'));
}

/** IPv4 routes through these links other than the connected ones of `addresses` (the kernel's own). */
async function routesVia(rtnl: Rtnl, oifs: number[], addresses: string[]): Promise<MovedRoute[]> {
  const connected = new Set(addresses.map((a) => parseCidr(a).text));
  const seen = new Map<string, MovedRoute>();
  for (const r of await rtnl.listRoutes(4)) {
    if (r.oif === undefined || !oifs.includes(r.oif) || (!r.gateway && connected.has(r.dst))) continue;
    const route: MovedRoute = r.gateway ? { dst: r.dst, gateway: r.gateway } : { dst: r.dst };
    seen.set(formatRoute(route), route);
  }
  return [...seen.values()];
}

const formatRoute = (r: MovedRoute): string => (r.gateway ? `${r.dst} via ${r.gateway}` : r.dst);
function parseRoute(text: string): MovedRoute {
  const [dst, gateway] = text.split(' via ');
  return gateway ? { dst: dst as string, gateway } : { dst: dst as string };
}
const splitList = (v: unknown): string[] => (typeof v === 'string' && v !== '' ? v.split(',') : []);
