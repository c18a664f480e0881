// Finding attachments in the monitored OVSDB views (the daemon's only store: it survives any
// daemon crash because it is the database itself).

import type { OvsdbClient } from '../ovsdb/client';
import { asMap } from '../ovsdb/values';
import { NB, OVS } from '../ovs/schema';
import type { Attachment } from './attachment';
import { fromInterfaceExternalIds, fromLspExternalIds } from './external-ids';

export interface Found { fromOvs: Attachment[]; fromNb: Attachment[] }

export function ovsAttachments(ovs: OvsdbClient): Attachment[] {
  const out: Attachment[] = [];
  for (const row of ovs.rows(OVS.iface).values()) {
    const a = fromInterfaceExternalIds(row.name as string, asMap(row.external_ids) as Record<string, string>);
    if (a) out.push(a);
  }
  return out;
}

export function nbAttachments(nb: OvsdbClient): Attachment[] {
  const out: Attachment[] = [];
  for (const row of nb.rows(NB.lsp).values()) {
    const a = fromLspExternalIds(row.name as string, asMap(row.external_ids) as Record<string, string>);
    if (a) out.push(a);
  }
  return out;
}

export function findAttachment(deps: { ovs: OvsdbClient; nb: OvsdbClient }, sandbox: string, ifName: string): Found {
  const match = (a: Attachment): boolean => a.sandbox === sandbox && a.ifName === ifName;
  return { fromOvs: ovsAttachments(deps.ovs).filter(match), fromNb: nbAttachments(deps.nb).filter(match) };
}
