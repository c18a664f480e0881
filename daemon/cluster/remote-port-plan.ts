// The NB and SB operations that make this zone's remote ports what remote-ports.ts decided: the
// NB rows (one LSP per port, linked to its switch), and in the SB the chassis of each port's
// binding (northd creates the binding and leaves its chassis empty; this zone sets it to the
// peer's, and ovn-controller then tunnels the port's packets to that chassis, as it does for a VM
// on another hypervisor under one central OVN). Rows carry the peer's node name in external_ids:
// only those are changed or removed; a local port of the same name, or one requesting the same
// key, always wins.
//
// The ports are ordinary (VIF) ports bound elsewhere, not ovn-ic's `remote` type: ovn-controller
// floods a switch's broadcast to each `remote` port separately (an OpenFlow action list per port
// in one flow), and past about a thousand of them on one switch that flow outgrows OpenFlow's
// 64 KB message limit, vswitchd refuses it (OFPBAC_BAD_LEN) and ovn-controller drops and redoes
// its whole br-int connection over and over: measured with bench:cluster's 5000 pods. A VIF
// bound to another chassis is flooded once per chassis, and the receiving chassis delivers a
// flood from a tunnel to its local ports only, so no packet loops between zones.
//
// The planners read the NB through NbPortView: a full pass scans the tables once, an incremental
// pass looks its few ports up by name.

import type { OvsdbClient } from '../ovsdb/client';
import type { Operation, WireRow } from '../ovsdb/types';
import { asArray, asMap, namedUuid, ovsMap, ovsSet, uuid, type Row } from '../ovsdb/values';
import { NB, SB } from '../ovs/schema';
import { isRemoteNodeRow, REMOTE_NODE } from '../store/external-ids';
import { REMOTE_PORT_POD, slotOf, type RemotePort, type Skip } from './remote-ports';

/** A port this controller holds for another node (marked with that node). */
export const isOurs = (row: Row | undefined): boolean => row !== undefined && isRemoteNodeRow(asMap(row.external_ids));

/** What planning a port needs to know of the NB. */
export interface NbPortView {
  /** This controller's port of that name. */
  remoteRow(name: string): Row | undefined;
  /** A port of that name is not this controller's (a local pod's). */
  isLocal(name: string): boolean;
  /** A local port requests this key on this switch (slotOf). */
  localSlot(slot: string): boolean;
  /** The switch a port is linked to. */
  switchOf(portUuid: string): Row | undefined;
}

/** Every port of the NB, read once: for a full pass. */
export interface ScannedPorts extends NbPortView {
  /** This controller's ports, by name. */
  ours: ReadonlyMap<string, Row>;
  /** Names and slots of local ports (a later incremental view reuses them). */
  local: ReadonlySet<string>;
  localSlots: ReadonlySet<string>;
}

export function scanPorts(nb: Pick<OvsdbClient, 'rows'>): ScannedPorts {
  const switchOf = new Map<string, Row>();
  for (const ls of nb.rows(NB.ls).values()) for (const u of asArray<string>(ls.ports)) switchOf.set(u, ls);
  const ours = new Map<string, Row>();
  const local = new Set<string>();
  const localSlots = new Set<string>();
  for (const row of nb.rows(NB.lsp).values()) {
    if (isOurs(row)) { ours.set(row.name as string, row); continue; }
    local.add(row.name as string);
    // A local port's key on a switch: a remote port may not request it (a freed address still in
    // use here until the local DEL completes).
    const key = asMap(row.options)['requested-tnl-key'];
    const ls = switchOf.get(row._uuid);
    if (key !== undefined && ls) localSlots.add(slotOf(ls.name as string, String(key)));
  }
  return {
    ours, local, localSlots,
    remoteRow: (name) => ours.get(name),
    isLocal: (name) => local.has(name),
    localSlot: (slot) => localSlots.has(slot),
    switchOf: (u) => switchOf.get(u),
  };
}

/**
 * A view for a pass over a few ports: rows by name from a unique index, local ports as the last
 * full scan found them (a local port that changes since makes the next pass a full one).
 */
export function indexedPorts(nb: Pick<OvsdbClient, 'rows'>, byName: (name: string) => Row | undefined, scanned: Pick<ScannedPorts, 'local' | 'localSlots'>): NbPortView {
  return {
    remoteRow: (name) => {
      const row = byName(name);
      return row && isOurs(row) ? row : undefined;
    },
    isLocal: (name) => scanned.local.has(name),
    localSlot: (slot) => scanned.localSlots.has(slot),
    switchOf: (u) => {
      for (const ls of nb.rows(NB.ls).values()) if (asArray<string>(ls.ports).includes(u)) return ls;
      return undefined;
    },
  };
}

/** requested-chassis: the port's chassis, then a migrating VM's other one. */
const requestedChassis = (p: Pick<RemotePort, 'chassis' | 'additionalChassis'>): string => [p.chassis, ...(p.additionalChassis ?? [])].join(',');

function portRow(p: RemotePort): WireRow {
  return {
    name: p.lspName,
    type: '',
    addresses: ovsSet([p.address]),
    options: ovsMap({ 'requested-chassis': requestedChassis(p), 'requested-tnl-key': String(p.tunnelKey) }),
    external_ids: ovsMap({ [REMOTE_NODE]: p.node, [REMOTE_PORT_POD]: p.pod }),
  };
}

function sameRow(row: Row, p: RemotePort): boolean {
  const opts = asMap(row.options);
  const ids = asMap(row.external_ids);
  const addrs = asArray<string>(row.addresses);
  return row.type === '' && addrs.length === 1 && addrs[0] === p.address && opts['requested-chassis'] === requestedChassis(p)
    && opts['requested-tnl-key'] === String(p.tunnelKey) && Object.keys(opts).length === 2
    && ids[REMOTE_NODE] === p.node && ids[REMOTE_PORT_POD] === p.pod;
}

/** Operations of one pass, and the addresses remote ports gave up in it. */
class PortPlan {
  readonly ops: Operation[] = [];
  /** Addresses a remote port no longer has here: their conntrack state goes (a reused address must not inherit a flow of the pod that had it). */
  readonly gone: string[] = [];
  readonly #unlinked = new Set<string>();

  constructor(private readonly view: NbPortView, private readonly skip: Skip) {}

  /** Makes the port of this name `p`, or removes it (undefined). Returns whether the port is wanted. */
  port(name: string, p: RemotePort | undefined): boolean {
    const row = this.view.remoteRow(name);
    if (p && this.view.isLocal(p.lspName)) { this.skip(p.pod, `a local port ${p.lspName} exists (the pod's previous sandbox here is being removed)`); return false; }
    if (p && this.view.localSlot(slotOf(p.logicalSwitch, p.tunnelKey))) {
      this.skip(p.pod, `tunnel key ${p.tunnelKey} on ${p.logicalSwitch} is still a local port's`);
      if (row) this.unlink(row);
      return false;
    }
    if (!p) { if (row) this.unlink(row); return false; }
    if (row && this.view.switchOf(row._uuid)?.name === p.logicalSwitch) {
      if (!sameRow(row, p)) {
        const [mac, ...ips] = p.address.split(' ');
        const sameMac = asArray<string>(row.addresses)[0]?.startsWith(`${mac ?? ''} `) === true;
        const now = new Set(ips);
        this.gone.push(...addressesOf(row).filter((ip) => !now.has(ip) || !sameMac));
        this.ops.push({ op: 'update', table: NB.lsp, where: [['_uuid', '==', uuid(row._uuid)]], row: portRow(p) });
      }
      return true;
    }
    if (row) this.unlink(row);
    const ref = `rp${this.ops.length}`;
    this.ops.push(
      { op: 'insert', table: NB.lsp, 'uuid-name': ref, row: portRow(p) },
      { op: 'mutate', table: NB.ls, where: [['name', '==', p.logicalSwitch]], mutations: [['ports', 'insert', ovsSet([namedUuid(ref)])]] },
    );
    return true;
  }

  /** Unlinks and deletes a row (once, however often asked). */
  unlink(row: Row): void {
    if (this.#unlinked.has(row._uuid)) return;
    this.#unlinked.add(row._uuid);
    this.gone.push(...addressesOf(row));
    const ls = this.view.switchOf(row._uuid);
    if (ls) this.ops.push({ op: 'mutate', table: NB.ls, where: [['_uuid', '==', uuid(ls._uuid)]], mutations: [['ports', 'delete', ovsSet([uuid(row._uuid)])]] });
    this.ops.push({ op: 'delete', table: NB.lsp, where: [['_uuid', '==', uuid(row._uuid)]] });
  }
}

const addressesOf = (row: Row): string[] => asArray<string>(row.addresses).flatMap((l) => l.split(' ').slice(1));

/** NB operations that make this zone's remote ports exactly `desired`. */
export function planRemotePorts(nb: Pick<OvsdbClient, 'rows'>, desired: readonly RemotePort[], skip: Skip = () => {}, gone: string[] = [], scanned: ScannedPorts = scanPorts(nb)): Operation[] {
  const plan = new PortPlan(scanned, skip);
  const wanted = new Set<string>();
  for (const p of desired) if (plan.port(p.lspName, p)) wanted.add(p.lspName);
  for (const [name, row] of scanned.ours) if (!wanted.has(name)) plan.unlink(row);
  gone.push(...plan.gone);
  return plan.ops;
}

/** NB operations for the named ports only: each made what `desired` has for it, or removed. */
export function planChangedPorts(view: NbPortView, names: Iterable<string>, desired: ReadonlyMap<string, RemotePort>, skip: Skip = () => {}, gone: string[] = []): Operation[] {
  const plan = new PortPlan(view, skip);
  for (const name of names) plan.port(name, desired.get(name));
  gone.push(...plan.gone);
  return plan.ops;
}

function chassisByName(sb: Pick<OvsdbClient, 'rows'>): Map<string, string> {
  const out = new Map<string, string>();
  for (const c of sb.rows(SB.chassis).values()) out.set(c.name as string, c._uuid);
  return out;
}

/**
 * SB operations binding these bindings to their port's chassis (and a migrating VM's port also to
 * its additional one, as that chassis' ovn-controller would have claimed it in a shared SB): only
 * bindings of this controller's NB ports (`ours`), never a local pod's port that happens to have
 * a desired name.
 */
export function planBindings(sb: Pick<OvsdbClient, 'rows'>, bindings: Iterable<Row>, desired: ReadonlyMap<string, Pick<RemotePort, 'chassis' | 'additionalChassis'>>, ours: (name: string) => boolean): Operation[] {
  const chassis = chassisByName(sb);
  const ops: Operation[] = [];
  for (const pb of bindings) {
    const name = pb.logical_port as string;
    if (!ours(name)) continue;
    const want = desired.get(name);
    const target = want === undefined ? undefined : chassis.get(want.chassis);
    if (target === undefined) continue;
    const row: WireRow = {};
    if (asArray<string>(pb.chassis)[0] !== target) row.chassis = uuid(target);
    const additional = (want?.additionalChassis ?? []).map((c) => chassis.get(c)).filter((u): u is string => u !== undefined);
    const have = asArray<string>(pb.additional_chassis);
    if (have.length !== additional.length || additional.some((u) => !have.includes(u))) row.additional_chassis = ovsSet(additional.map((u) => uuid(u)));
    if (Object.keys(row).length > 0) ops.push({ op: 'update', table: SB.pb, where: [['_uuid', '==', uuid(pb._uuid)]], row });
  }
  return ops;
}
