// OVN NB side of an attachment: the Logical_Switch_Port with addresses and port_security, in
// ONE transaction that also replaces a same-named port left by an earlier sandbox of the pod.

import { OvsdbError } from '../../common/errors';
import type { OvsdbClient } from '../ovsdb/client';
import type { Operation } from '../ovsdb/types';
import { asArray, namedUuid, ovsMap, ovsSet, uuid } from '../ovsdb/values';
import type { Attachment } from '../store/attachment';
import { toLspExternalIds } from '../store/external-ids';
import { NB } from '../ovs/schema';

export interface LspSpec {
  attachment: Attachment;
  /** port_security entries ("MAC IP... VIP..."), empty when port security is off. */
  portSecurity: string[];
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

export async function createLsp(nb: OvsdbClient, { attachment, portSecurity, extraOps }: LspSpec, signal?: AbortSignal): Promise<void> {
  const ops: Operation[] = [];
  const old = findLsp(nb, attachment.lspName);
  if (old) {
    // LSP names are unique (schema index): drop the old reference and row in this transaction.
    for (const ls of owners(nb, old._uuid)) {
      ops.push({ op: 'mutate', table: NB.ls, where: [['name', '==', ls]], mutations: [['ports', 'delete', ovsSet([uuid(old._uuid)])]] });
    }
    ops.push({ op: 'delete', table: NB.lsp, where: [['_uuid', '==', uuid(old._uuid)]] });
  }
  const line = addressLine(attachment);
  ops.push(
    {
      op: 'insert', table: NB.lsp, 'uuid-name': 'lsp',
      row: {
        name: attachment.lspName,
        addresses: ovsSet([line]),
        port_security: ovsSet(portSecurity),
        external_ids: ovsMap(toLspExternalIds(attachment)),
      },
    },
    { op: 'mutate', table: NB.ls, where: [['name', '==', attachment.logicalSwitch]], mutations: [['ports', 'insert', ovsSet([namedUuid('lsp')])]] },
  );
  const switchOp = ops.length - 1;
  ops.push(...(extraOps?.('lsp') ?? []), { op: 'comment', comment: `ovnode: add ${attachment.lspName} (${attachment.sandbox})` });
  const results = await nb.transact(ops, signal ? { signal } : undefined);
  if (results[switchOp]?.count !== 1) throw new OvsdbError(`logical switch ${attachment.logicalSwitch} does not exist`);
}

/** Deletes the named LSPs in one transaction; idempotent; returns the names that existed. */
export async function deleteLsps(nb: OvsdbClient, names: string[]): Promise<string[]> {
  const rows = names.map((n) => findLsp(nb, n)).filter((r): r is NonNullable<typeof r> => r !== undefined);
  if (rows.length === 0) return [];
  const ops: Operation[] = [];
  for (const row of rows) {
    for (const ls of owners(nb, row._uuid)) {
      ops.push({ op: 'mutate', table: NB.ls, where: [['name', '==', ls]], mutations: [['ports', 'delete', ovsSet([uuid(row._uuid)])]] });
    }
    ops.push({ op: 'delete', table: NB.lsp, where: [['_uuid', '==', uuid(row._uuid)]] });
  }
  await nb.transact(ops);
  return rows.map((r) => r.name as string);
}

export async function deleteLsp(nb: OvsdbClient, name: string): Promise<boolean> {
  return (await deleteLsps(nb, [name])).length > 0;
}
