// OVN NB side of an attachment: the Logical_Switch_Port with addresses and port_security, in
// ONE transaction that also replaces a same-named port left by an earlier sandbox of the pod.

import { isIP } from 'node:net';
import { InvalidConfigError, OvsdbError } from '../../common/errors';
import { checkUnicastMac } from '../ipam/mac';
import type { OvsdbClient } from '../ovsdb/client';
import type { Operation } from '../ovsdb/types';
import { asArray, asMap, namedUuid, ovsMap, ovsSet, uuid } from '../ovsdb/values';
import type { Attachment } from '../store/attachment';
import { EXT, OWNER, toLspExternalIds } from '../store/external-ids';
import { NB } from '../ovs/schema';

export interface LspSpec {
  attachment: Attachment;
  /** port_security entries ("MAC IP... VIP..."), empty when port security is off. */
  portSecurity: string[];
  /** The port's key on a switch spanning nodes (cluster/tunnel-keys.ts); unset: northd picks one. */
  tunnelKey?: number;
  /** More NB options (a VM port's requested chassis and activation strategy). */
  options?: Record<string, string>;
  /** More operations for the same transaction, given the new port's named-uuid. */
  extraOps?: (lspRef: string) => Operation[];
}

/** "MAC IP [IP...]", the form of both `addresses` and `port_security` (ovn-nb(5)). */
export function addressLine(a: Attachment): string {
  return [a.mac, ...a.ips].join(' ');
}

/** The switch rows that reference the LSP with this name. */
function owners(nb: OvsdbClient, lspUuid: string): string[] {
  return [...nb.rows(NB.ls).values()].filter((ls) => asArray<string>(ls.ports).includes(lspUuid)).map((ls) => ls.name as string);
}

export function findLsp(nb: OvsdbClient, name: string) {
  return [...nb.rows(NB.lsp).values()].find((r) => r.name === name);
}

/**
 * Refuses a line ovn-northd could not parse. northd drops an unparsable port_security line as a
 * whole, which leaves the port with no port security at all: a pod could then use any address.
 */
export function assertAddressLine(line: string, column: string): void {
  const [mac, ...ips] = line.split(' ');
  const bad = mac === undefined || 'error' in checkUnicastMac(mac) ? mac
    : ips.find((ip) => ip === '' || isIP(ip.split('/')[0] as string) === 0);
  if (bad !== undefined) throw new InvalidConfigError(`refusing to write ${column} ${JSON.stringify(line)}: ${JSON.stringify(bad)} is not valid there`);
}

/** The new row's UUID; OvsdbOutcomeUnknownError when it may or may not have committed. */
export async function createLsp(nb: OvsdbClient, { attachment, portSecurity, tunnelKey, options, extraOps }: LspSpec): Promise<string> {
  assertAddressLine(addressLine(attachment), 'addresses');
  for (const line of portSecurity) assertAddressLine(line, 'port_security');
  const ops: Operation[] = [];
  const old = findLsp(nb, attachment.lspName);
  if (old) {
    // LSP names are unique (schema index): drop the old reference and row in this transaction.
    ops.push(...removeOps(nb, old._uuid));
  }
  const line = addressLine(attachment);
  const insertOp = ops.length;
  ops.push(
    {
      op: 'insert', table: NB.lsp, 'uuid-name': 'lsp',
      row: {
        name: attachment.lspName,
        addresses: ovsSet([line]),
        port_security: ovsSet(portSecurity),
        options: ovsMap({ ...options, ...(tunnelKey === undefined ? {} : { 'requested-tnl-key': String(tunnelKey) }) }),
        external_ids: ovsMap(toLspExternalIds(attachment)),
      },
    },
    { op: 'mutate', table: NB.ls, where: [['name', '==', attachment.logicalSwitch]], mutations: [['ports', 'insert', ovsSet([namedUuid('lsp')])]] },
  );
  const switchOp = ops.length - 1;
  ops.push(...(extraOps?.('lsp') ?? []), { op: 'comment', comment: `ovnode: add ${attachment.lspName} (${attachment.sandbox})` });
  const results = await nb.transact(ops);
  if (results[switchOp]?.count !== 1) throw new OvsdbError(`logical switch ${attachment.logicalSwitch} does not exist`);
  return (results[insertOp]?.uuid as [string, string])[1];
}

/** Unlinks the row from every switch that holds it and deletes it (by UUID: exactly that row). */
function removeOps(nb: OvsdbClient, lspUuid: string, alsoSwitch?: string): Operation[] {
  const switches = new Set(owners(nb, lspUuid));
  if (alsoSwitch !== undefined) switches.add(alsoSwitch);
  return [
    ...[...switches].map((ls): Operation => ({ op: 'mutate', table: NB.ls, where: [['name', '==', ls]], mutations: [['ports', 'delete', ovsSet([uuid(lspUuid)])]] })),
    { op: 'delete', table: NB.lsp, where: [['_uuid', '==', uuid(lspUuid)]] },
  ];
}

export interface LspRef { uuid: string; name: string; sandbox: string }

/**
 * Deletes exactly this row (a rollback of our own insert). `logicalSwitch` is where it was
 * inserted: right after the insert the monitor may not have shown the row yet.
 */
export async function deleteLspRow(nb: OvsdbClient, lspUuid: string, logicalSwitch: string): Promise<void> {
  await nb.transact([...removeOps(nb, lspUuid, logicalSwitch), { op: 'comment', comment: `ovnode: roll back logical switch port ${lspUuid}` }]);
}

/**
 * Deletes the given rows in one transaction, each by UUID, so a row that another sandbox of the
 * same pod replaced meanwhile is left alone; idempotent. Returns the rows the server confirmed
 * deleting (only their addresses may be freed).
 */
export async function deleteLsps(nb: OvsdbClient, rows: readonly LspRef[]): Promise<LspRef[]> {
  if (rows.length === 0) return [];
  const ops: Operation[] = [];
  const deleteAt: number[] = [];
  for (const row of rows) {
    const rowOps = removeOps(nb, row.uuid);
    ops.push(...rowOps);
    deleteAt.push(ops.length - 1);
  }
  ops.push({ op: 'comment', comment: `ovnode: delete ${rows.map((r) => `${r.name} (${r.sandbox})`).join(',')}` });
  const results = await nb.transact(ops);
  return rows.filter((_, i) => results[deleteAt[i] as number]?.count === 1);
}

/** LSP rows of this name that an attachment of this sandbox + interface wrote. */
export function ownLsps(nb: OvsdbClient, name: string, sandbox: string, ifName: string): LspRef[] {
  return [...nb.rows(NB.lsp).values()]
    .filter((r) => r.name === name && isOwnedBy(r.external_ids, sandbox, ifName))
    .map((r) => ({ uuid: r._uuid, name, sandbox }));
}

function isOwnedBy(externalIds: unknown, sandbox: string, ifName: string): boolean {
  const ids = asMap(externalIds);
  return ids[EXT.owner] === OWNER && ids[EXT.sandbox] === sandbox && (ids[EXT.ifName] ?? 'eth0') === ifName;
}
