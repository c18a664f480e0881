// Desired state -> the NB operations that make the NB match it, and nothing more: rows are
// identified by name (port groups, address sets, switches) or by content key (ACLs, QoS), so an
// unchanged rule is never touched, membership changes are set mutations, and a restart with the
// same inputs produces no operation at all (established connections never notice).

import { NB } from '../ovs/schema';
import { underlayKey } from '../ovn/topology';
import type { OvsdbClient } from '../ovsdb/client';
import type { Operation } from '../ovsdb/types';
import { asArray, asMap, namedUuid, ovsMap, ovsSet, uuid, type Atom, type Row } from '../ovsdb/values';
import { isRemoteNodeRow } from '../store/external-ids';
import { aclKey, qosKey, type DesiredAcl, type DesiredQos, type DesiredState, type DesiredSwitch } from './model';

export const OWNER_KEY = 'ovnode:policy';
export const ROW_KEY = 'ovnode:key';

export interface SwitchPlanner {
  /** Operations that create or update a subnet switch and its router port. */
  switchOps(s: DesiredSwitch, index: number): Operation[];
  /** Operations that remove a subnet switch we created (no pod ports left on it). */
  removeSwitchOps(name: string): Operation[];
}

export interface Plan { ops: Operation[]; counts: Record<string, number> }

class Planner {
  readonly ops: Operation[] = [];
  readonly counts: Record<string, number> = {};
  private seq = 0;

  constructor(private readonly nb: OvsdbClient) {}

  name(prefix: string): string { return `${prefix}${this.seq++}`; }
  count(what: string, n = 1): void { this.counts[what] = (this.counts[what] ?? 0) + n; }
  rows(table: string): Row[] { return [...this.nb.rows(table).values()]; }
  get(table: string, u: string): Row | undefined { return this.nb.rows(table).get(u); }
}

const ours = (r: Row): boolean => asMap(r.external_ids)[OWNER_KEY] !== undefined;

export function planReconcile(nb: OvsdbClient, desired: DesiredState, switches: SwitchPlanner): Plan {
  const p = new Planner(nb);
  planSwitches(p, desired, switches);
  planAddressSets(p, desired);
  planPortGroups(p, desired);
  planPorts(p, desired);
  return { ops: p.ops, counts: p.counts };
}

function lspUuids(byName: Map<string, string>, names: string[]): string[] {
  return names.map((n) => byName.get(n)).filter((u): u is string => u !== undefined);
}

/** One entry per key: two rules that say the same thing are one ACL. */
function uniqueByKey<T>(items: T[], key: (t: T) => string): T[] {
  const seen = new Map<string, T>();
  for (const i of items) if (!seen.has(key(i))) seen.set(key(i), i);
  return [...seen.values()];
}

function planSwitches(p: Planner, desired: DesiredState, switches: SwitchPlanner): void {
  const existing = new Map(p.rows(NB.ls).map((r) => [r.name as string, r]));
  desired.switches.forEach((s, i) => {
    const ls = existing.get(s.name);
    const ids = asMap(ls?.external_ids);
    const key = s.tunnelKey === undefined ? undefined : String(s.tunnelKey);
    if (!ls || ids['ovnode:cidrs'] !== s.cidrs.join(',') || ids['ovnode:gateways'] !== s.gateways.join(',')
      || asMap(ls.other_config)['requested-tnl-key'] !== key || (ids['ovnode:underlay'] ?? '') !== underlayKey(s.underlay)) {
      p.ops.push(...switches.switchOps(s, i));
      p.count('switches');
    }
    const where = ls ? [['_uuid', '==', uuid(ls._uuid)] as ['_uuid', '==', Atom]] : [['name', '==', s.name] as ['name', '==', Atom]];
    planRuleSet(p, { table: NB.ls, where, column: 'acls', current: asArray<string>(ls?.acls), rowTable: 'ACL' },
      s.acls.map((a) => ({ key: aclKey(a), row: () => aclRow(a) })));
    planRuleSet(p, { table: NB.ls, where, column: 'qos_rules', current: asArray<string>(ls?.qos_rules), rowTable: 'QoS' },
      s.qos.map((q) => ({ key: qosKey(q), row: () => qosRow(q) })));
  });
  const wanted = new Set(desired.switches.map((s) => s.name));
  for (const [name, ls] of existing) {
    if (wanted.has(name) || asMap(ls.external_ids)['ovnode:subnet'] !== 'true') continue;
    // Router and remote ports (other nodes' pods) go with the switch.
    const podPorts = asArray<string>(ls.ports).filter((u) => {
      const row = p.get(NB.lsp, u);
      return row?.type !== 'router' && !(row && isRemoteNodeRow(asMap(row.external_ids)));
    });
    if (podPorts.length > 0) continue; // pods of this node still use it: keep it until they are gone
    p.ops.push(...switches.removeSwitchOps(name));
    p.count('switchesRemoved');
  }
}

interface RuleSetTarget {
  table: string;
  where: Array<[string, '==', Atom]>;
  column: string;
  current: string[];
  rowTable: 'ACL' | 'QoS';
}

/**
 * Brings the ACL/QoS references of one parent row to the desired set, by content key. Rows are
 * built only for what is inserted: a run over an unchanged cluster builds none.
 */
function planRuleSet(p: Planner, t: RuleSetTarget, desired: Array<{ key: string; row: () => Record<string, unknown> }>): void {
  const currentByKey = new Map<string, string>();
  const stale: string[] = [];
  for (const u of t.current) {
    const row = p.get(t.rowTable, u);
    const key = row && ours(row) ? asMap(row.external_ids)[ROW_KEY] : undefined;
    if (key === undefined) continue; // not ours: leave it
    if (currentByKey.has(String(key))) stale.push(u); else currentByKey.set(String(key), u);
  }
  const want = uniqueByKey(desired, (d) => d.key);
  const wanted = new Set(want.map((d) => d.key));
  for (const [key, u] of currentByKey) if (!wanted.has(key)) stale.push(u);
  const fresh: Atom[] = [];
  for (const d of want) {
    if (currentByKey.has(d.key)) continue;
    const n = p.name(t.rowTable === 'ACL' ? 'acl' : 'qos');
    p.ops.push({ op: 'insert', table: t.rowTable, 'uuid-name': n, row: d.row() as never });
    fresh.push(namedUuid(n));
  }
  if (stale.length > 0) p.ops.push({ op: 'mutate', table: t.table, where: t.where, mutations: [[t.column, 'delete', ovsSet(stale.map(uuid))]] });
  if (fresh.length > 0) p.ops.push({ op: 'mutate', table: t.table, where: t.where, mutations: [[t.column, 'insert', ovsSet(fresh)]] });
  p.count(t.rowTable === 'ACL' ? 'aclsAdded' : 'qosAdded', fresh.length);
  p.count(t.rowTable === 'ACL' ? 'aclsRemoved' : 'qosRemoved', stale.length);
}

function aclRow(a: DesiredAcl): Record<string, unknown> {
  return {
    direction: a.direction, priority: a.priority, match: a.match, action: a.action,
    external_ids: ovsMap({ [OWNER_KEY]: a.owner, [ROW_KEY]: aclKey(a) }),
  };
}

function qosRow(q: DesiredQos): Record<string, unknown> {
  return {
    direction: q.direction, priority: q.priority, match: q.match,
    bandwidth: ['map', [['rate', q.rate], ['burst', q.burst]]],
    external_ids: ovsMap({ [OWNER_KEY]: q.owner, [ROW_KEY]: qosKey(q) }),
  };
}

function planAddressSets(p: Planner, desired: DesiredState): void {
  const existing = new Map(p.rows('Address_Set').filter(ours).map((r) => [r.name as string, r]));
  for (const as of desired.addressSets) {
    const row = existing.get(as.name);
    existing.delete(as.name);
    if (!row) {
      p.ops.push({ op: 'insert', table: 'Address_Set', row: { name: as.name, addresses: ovsSet(as.addresses), external_ids: ovsMap({ [OWNER_KEY]: as.owner }) } });
      p.count('addressSets');
      continue;
    }
    // In step last time, and neither the row (the NB cache replaces a row object that changes) nor
    // the desired list (kept across runs while its namespaces do not change) has changed since.
    if (setsInStep.get(row) === as.addresses) continue;
    const before = p.ops.length;
    diffSet(p, 'Address_Set', row, 'addresses', asArray<string>(row.addresses), as.addresses);
    if (p.ops.length === before) setsInStep.set(row, as.addresses);
  }
  for (const row of existing.values()) {
    p.ops.push({ op: 'delete', table: 'Address_Set', where: [['_uuid', '==', uuid(row._uuid)]] });
    p.count('addressSetsRemoved');
  }
}

function diffSet(p: Planner, table: string, row: Row, column: string, current: string[], want: readonly string[], atom: (s: string) => Atom = (s) => s): void {
  // Most sets are unchanged on most runs: tell so without building two sets and two lists.
  if (current.length === want.length && (current.length === 0 || sameMembers(current, want))) return;
  const cur = new Set(current);
  const next = new Set(want);
  const add = [...next].filter((x) => !cur.has(x));
  const del = [...cur].filter((x) => !next.has(x));
  const where: Array<[string, '==', Atom]> = [['_uuid', '==', uuid(row._uuid)]];
  if (del.length > 0) p.ops.push({ op: 'mutate', table, where, mutations: [[column, 'delete', ovsSet(del.map(atom))]] });
  if (add.length > 0) p.ops.push({ op: 'mutate', table, where, mutations: [[column, 'insert', ovsSet(add.map(atom))]] });
  p.count(`${column}Changed`, add.length + del.length);
}

function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return sameAsSets(a, b);
  return true;
}

function sameAsSets(a: readonly string[], b: readonly string[]): boolean {
  const inA = new Set(a);
  return inA.size === new Set(b).size && b.every((x) => inA.has(x));
}

// Rows found in step with what was desired, so that the next run skips them while nothing on
// either side changed: a run after one label change then plans only the sets it touched, not the
// hundreds of groups and sets of a large cluster. Keyed by NB cache row objects, which the cache
// replaces when a row changes (and drops with it); desired lists are kept across runs by the
// policy translation and the peer index, so an unchanged one is the same array.
const setsInStep = new WeakMap<Row, readonly string[]>();
const groupsInStep = new WeakMap<Row, { acls: readonly DesiredAcl[]; ports: string; aclRows: ReadonlyArray<Row | undefined> }>();

function sameRows(a: ReadonlyArray<Row | undefined>, b: ReadonlyArray<Row | undefined>): boolean {
  return a.length === b.length && a.every((r, i) => r !== undefined && r === b[i]);
}

function planPortGroups(p: Planner, desired: DesiredState): void {
  const existing = new Map(p.rows('Port_Group').filter(ours).map((r) => [r.name as string, r]));
  const lspByName = new Map(p.rows(NB.lsp).map((r) => [r.name as string, r._uuid]));
  for (const pg of desired.portGroups) {
    const row = existing.get(pg.name);
    existing.delete(pg.name);
    const ports = lspUuids(lspByName, pg.ports);
    if (!row) {
      const acls: Atom[] = uniqueByKey(pg.acls, aclKey).map((a) => {
        const n = p.name('acl');
        p.ops.push({ op: 'insert', table: 'ACL', 'uuid-name': n, row: aclRow(a) as never });
        return namedUuid(n);
      });
      p.ops.push({
        op: 'insert', table: 'Port_Group',
        row: { name: pg.name, ports: ovsSet(ports.map(uuid)), acls: ovsSet(acls), external_ids: ovsMap({ [OWNER_KEY]: pg.owner }) },
      });
      p.count('portGroups');
      p.count('aclsAdded', acls.length);
      continue;
    }
    const aclUuids = asArray<string>(row.acls);
    const aclRows = aclUuids.map((u) => p.get('ACL', u));
    const portsKey = ports.join(',');
    const memo = groupsInStep.get(row);
    if (memo && memo.acls === pg.acls && memo.ports === portsKey && sameRows(memo.aclRows, aclRows)) continue;
    const before = p.ops.length;
    diffSet(p, 'Port_Group', row, 'ports', asArray<string>(row.ports), ports, uuid);
    planRuleSet(p, { table: 'Port_Group', where: [['_uuid', '==', uuid(row._uuid)]], column: 'acls', current: aclUuids, rowTable: 'ACL' },
      pg.acls.map((a) => ({ key: aclKey(a), row: () => aclRow(a) })));
    if (p.ops.length === before) groupsInStep.set(row, { acls: pg.acls, ports: portsKey, aclRows });
  }
  for (const row of existing.values()) {
    p.ops.push({ op: 'delete', table: 'Port_Group', where: [['_uuid', '==', uuid(row._uuid)]] });
    p.count('portGroupsRemoved');
  }
}

function planPorts(p: Planner, desired: DesiredState): void {
  const byName = new Map(p.rows(NB.lsp).map((r) => [r.name as string, r]));
  for (const port of desired.ports) {
    const row = byName.get(port.lspName);
    if (!row) continue;
    const cur = asArray<string>(row.port_security);
    if (cur.length === port.portSecurity.length && cur.every((c, i) => c === port.portSecurity[i])) continue;
    p.ops.push({ op: 'update', table: NB.lsp, where: [['_uuid', '==', uuid(row._uuid)]], row: { port_security: ovsSet(port.portSecurity) } });
    p.count('portSecurity');
  }
}
