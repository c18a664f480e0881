// The services controller's NB plan: desired Load_Balancer rows and the NB as it is (cached rows)
// in, operations out. It creates, updates and deletes only rows marked as its own, and keeps the
// load_balancer column of every ovnode switch (external_ids ovnode:cidrs) and of the cluster
// router holding exactly its rows beside whatever others put there, with set mutations. A plan
// for an NB that already matches is empty, which is what makes a second pass or a restart write
// nothing.

import type { OvsdbClient } from '../ovsdb/client';
import type { Atom } from '../ovsdb/values';
import type { Mutation, Operation, WireRow } from '../ovsdb/types';
import { asArray, asMap, namedUuid, ovsMap, ovsSet, uuid, valuesEqual, type Row } from '../ovsdb/values';
import { ROUTER } from '../ovn/topology';
import { NB } from '../ovs/schema';
import { LB_OWNER, LB_OWNER_KEY, LB_SERVICE_KEY, SWITCH_CIDRS_KEY } from './names';
import type { DesiredLb } from './types';

export const LB_TABLE = 'Load_Balancer';
/** Columns of Logical_Switch and Logical_Router the plan reads besides name and external_ids. */
export const LB_COLUMN = 'load_balancer';

export type NbView = Pick<OvsdbClient, 'rows'>;

export interface LbPlanInput {
  nb: NbView;
  /** The rows wanted for the Services in scope. */
  desired: readonly DesiredLb[];
  /**
   * Services (`namespace/name`) whose rows this plan reconciles; rows of other Services are left
   * as they are. Undefined: every Service, so rows of Services not desired are deleted.
   */
  scope?: ReadonlySet<string>;
}

/** Thrown when the NB cache lacks a column the plan must read: planning blind would rewrite every pass. */
export class UnmonitoredColumnError extends Error {}

export function isOwnedLb(row: Row): boolean {
  return asMap(row.external_ids)[LB_OWNER_KEY] === LB_OWNER;
}

function lbRow(d: DesiredLb): WireRow {
  return {
    name: d.name,
    protocol: d.protocol,
    vips: ovsMap(d.vips),
    options: ovsMap(d.options),
    external_ids: ovsMap({ [LB_OWNER_KEY]: LB_OWNER, [LB_SERVICE_KEY]: d.service }),
  };
}

function sameLb(row: Row, d: DesiredLb): boolean {
  return asArray<string>(row.protocol)[0] === d.protocol
    && valuesEqual(asMap(row.vips), d.vips)
    && valuesEqual(asMap(row.options), d.options)
    && valuesEqual(asMap(row.external_ids), { [LB_OWNER_KEY]: LB_OWNER, [LB_SERVICE_KEY]: d.service });
}

/** ovnode's switches and the cluster router: the rows whose load_balancer sets are kept. */
function targets(nb: NbView): Array<{ table: string; row: Row }> {
  const out: Array<{ table: string; row: Row }> = [];
  for (const row of nb.rows(NB.ls).values()) {
    const cidrs = asMap(row.external_ids)[SWITCH_CIDRS_KEY];
    if (typeof cidrs === 'string' && cidrs !== '') out.push({ table: NB.ls, row });
  }
  for (const row of nb.rows(NB.lr).values()) if (row.name === ROUTER) out.push({ table: NB.lr, row });
  for (const t of out) {
    if (!(LB_COLUMN in t.row)) throw new UnmonitoredColumnError(`${t.table}.${LB_COLUMN} is not in the NB monitor (see servicesNbMonitor)`);
  }
  return out;
}

/** Creates, updates and deletes own rows in scope; returns the operations and the own rows after them. */
function planRows(input: LbPlanInput, ops: Operation[]): { kept: Set<string>; added: Atom[]; deleted: Set<string> } {
  const inScope = (service: string): boolean => input.scope === undefined || input.scope.has(service);
  const byName = new Map<string, Row[]>();
  const kept = new Set<string>();
  const deleted = new Set<string>();
  for (const row of input.nb.rows(LB_TABLE).values()) {
    if (!isOwnedLb(row)) continue;
    kept.add(row._uuid);
    if (!inScope(String(asMap(row.external_ids)[LB_SERVICE_KEY] ?? ''))) continue;
    const list = byName.get(row.name as string);
    if (list) list.push(row);
    else byName.set(row.name as string, [row]);
  }
  const remove = (row: Row): void => {
    kept.delete(row._uuid);
    deleted.add(row._uuid);
    ops.push({ op: 'delete', table: LB_TABLE, where: [['_uuid', '==', uuid(row._uuid)]] });
  };
  const added: Atom[] = [];
  for (const d of input.desired) {
    if (!inScope(d.service)) continue;
    const rows = byName.get(d.name);
    byName.delete(d.name);
    const [first, ...extra] = rows ?? [];
    // Two rows of one name (a transaction retried after an unknown outcome): keep the first.
    extra.forEach(remove);
    if (first) {
      if (!sameLb(first, d)) ops.push({ op: 'update', table: LB_TABLE, where: [['_uuid', '==', uuid(first._uuid)]], row: lbRow(d) });
      continue;
    }
    const ref = `lb${added.length}`;
    ops.push({ op: 'insert', table: LB_TABLE, 'uuid-name': ref, row: lbRow(d) });
    added.push(namedUuid(ref));
  }
  for (const rows of byName.values()) rows.forEach(remove);
  return { kept, added, deleted };
}

/** The operations that make the NB's own Load_Balancer rows and their attachments match `desired`. */
export function planServiceLbs(input: LbPlanInput): Operation[] {
  const ops: Operation[] = [];
  const attachTo = targets(input.nb);
  const { kept, added, deleted } = planRows(input, ops);
  for (const { table, row } of attachTo) {
    const current = new Set(asArray<string>(row[LB_COLUMN]));
    const insert: Atom[] = [...added];
    for (const u of kept) if (!current.has(u)) insert.push(uuid(u));
    // Only own rows leave the set: other load balancers on the switch are someone else's.
    const remove = [...current].filter((u) => deleted.has(u)).map(uuid);
    const mutations: Mutation[] = [];
    if (remove.length > 0) mutations.push([LB_COLUMN, 'delete', ovsSet(remove)]);
    if (insert.length > 0) mutations.push([LB_COLUMN, 'insert', ovsSet(insert)]);
    if (mutations.length > 0) ops.push({ op: 'mutate', table, where: [['_uuid', '==', uuid(row._uuid)]], mutations });
  }
  return ops;
}
