// OVS side of an attachment: the Port + Interface rows on br-int, written in ONE transaction,
// and the event-driven wait for ovn-controller's `ovn-installed` mark on the Interface.

import { OvsdbError } from '../../common/errors';
import type { OvsdbClient } from '../ovsdb/client';
import type { Operation } from '../ovsdb/types';
import { asArray, asMap, namedUuid, ovsMap, ovsSet, uuid, type Row } from '../ovsdb/values';
import type { Attachment } from '../store/attachment';
import { EXT, toInterfaceExternalIds } from '../store/external-ids';
import { OVS } from './schema';

export interface PortSpec { bridge: string; attachment: Attachment }

/** UUIDs of Port rows on the bridge that carry this name or this iface-id (stale leftovers). */
function stalePorts(ovs: OvsdbClient, name: string, ifaceId: string): string[] {
  const ifaces = [...ovs.rows(OVS.iface).values()]
    .filter((r) => r.name === name || asMap(r.external_ids)[EXT.ifaceId] === ifaceId)
    .map((r) => r._uuid);
  return [...ovs.rows(OVS.port).values()]
    .filter((p) => p.name === name || asArray<string>(p.interfaces).some((i) => ifaces.includes(i)))
    .map((p) => p._uuid);
}

/** The new Port row's UUID; OvsdbOutcomeUnknownError when it may or may not have committed. */
export async function attachPort(ovs: OvsdbClient, { bridge, attachment }: PortSpec): Promise<string> {
  const name = attachment.hostIfName;
  const stale = stalePorts(ovs, name, attachment.lspName);
  const ops: Operation[] = [];
  if (stale.length > 0) {
    // A port of an earlier sandbox of the same pod, or of an interrupted ADD: replace it in the
    // same transaction so ovn-controller never sees two claims on one iface-id.
    ops.push({ op: 'mutate', table: OVS.bridge, where: [['name', '==', bridge]], mutations: [['ports', 'delete', ovsSet(stale.map(uuid))]] });
  }
  const portOp = ops.length + 1;
  ops.push(
    { op: 'insert', table: OVS.iface, 'uuid-name': 'iface', row: { name, external_ids: ovsMap(toInterfaceExternalIds(attachment)) } },
    {
      op: 'insert', table: OVS.port, 'uuid-name': 'port',
      row: { name, interfaces: namedUuid('iface'), external_ids: ovsMap({ [EXT.owner]: 'ovnode', [EXT.sandbox]: attachment.sandbox }) },
    },
    { op: 'mutate', table: OVS.bridge, where: [['name', '==', bridge]], mutations: [['ports', 'insert', ovsSet([namedUuid('port')])]] },
    { op: 'comment', comment: `ovnode: add ${attachment.lspName} (${attachment.sandbox})` },
  );
  const results = await ovs.transact(ops);
  const mutate = results[ops.length - 2];
  if (!mutate || mutate.count !== 1) throw new OvsdbError(`bridge ${bridge} does not exist`);
  return (results[portOp]?.uuid as [string, string])[1];
}

/**
 * Removes the named ports in one transaction (Port and Interface rows are garbage-collected
 * with the bridge's reference); returns the names that existed. Port names are derived from the
 * sandbox (hostIfName), so a name belongs to one sandbox only.
 */
export async function detachPorts(ovs: OvsdbClient, bridge: string, names: string[]): Promise<string[]> {
  const rows = [...ovs.rows(OVS.port).values()].filter((p) => names.includes(p.name as string));
  if (rows.length === 0) return [];
  await ovs.transact([
    { op: 'mutate', table: OVS.bridge, where: [['name', '==', bridge]], mutations: [['ports', 'delete', ovsSet(rows.map((r) => uuid(r._uuid)))]] },
    { op: 'comment', comment: `ovnode: delete port ${rows.map((r) => r.name).join(',')}` },
  ]);
  return rows.map((r) => r.name as string);
}

/** Port rows of this name that this sandbox wrote (the name is derived from the sandbox too). */
export function ownPortUuids(ovs: OvsdbClient, name: string, sandbox: string): string[] {
  return [...ovs.rows(OVS.port).values()]
    .filter((p) => p.name === name && asMap(p.external_ids)[EXT.sandbox] === sandbox)
    .map((p) => p._uuid);
}

/** Removes exactly this Port row (and with it its Interface); a no-op when it is gone already. */
export async function detachPortRow(ovs: OvsdbClient, bridge: string, portUuid: string): Promise<void> {
  await ovs.transact([
    { op: 'mutate', table: OVS.bridge, where: [['name', '==', bridge]], mutations: [['ports', 'delete', ovsSet([uuid(portUuid)])]] },
    { op: 'comment', comment: `ovnode: roll back port ${portUuid}` },
  ]);
}

export async function detachPort(ovs: OvsdbClient, bridge: string, name: string): Promise<boolean> {
  return (await detachPorts(ovs, bridge, [name])).length > 0;
}

export function isOvnInstalled(row: Row): boolean {
  return asMap(row.external_ids)[EXT.ovnInstalled] === 'true';
}

/** Waits, on the monitor's updates, until ovn-controller has installed flows for the port. */
export function waitOvnInstalled(ovs: OvsdbClient, name: string, signal: AbortSignal): Promise<Row> {
  return ovs.waitFor(OVS.iface, (r) => r.name === name && isOvnInstalled(r), signal);
}
