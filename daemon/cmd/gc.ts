// GC (CNI 1.1): remove every attachment of this network that the runtime no longer lists in
// cni.dev/valid-attachments.

import { InvalidConfigError } from '../../common/errors';
import type { RequestContext } from '../context';
import { attachmentKey } from '../store/attachment';
import { nbAttachments, ovsAttachments } from '../store/lookup';
import { removeAttachment } from './del';

export async function cmdGc(ctx: RequestContext, withLock: <T>(key: string, fn: () => Promise<T>) => Promise<T>): Promise<void> {
  const { req, deps, log } = ctx;
  const valid = req.conf.validAttachments;
  if (!valid) throw new InvalidConfigError('GC needs "cni.dev/valid-attachments"');
  const keep = new Set(valid.map((v) => attachmentKey(v.containerId, v.ifName)));
  const stale = new Map<string, { sandbox: string; ifName: string }>();
  for (const a of [...ovsAttachments(deps.ovs), ...nbAttachments(deps.nb)]) {
    if (a.network !== req.conf.name) continue;
    const key = attachmentKey(a.sandbox, a.ifName);
    if (!keep.has(key)) stale.set(key, { sandbox: a.sandbox, ifName: a.ifName });
  }
  for (const { sandbox, ifName } of stale.values()) {
    const removed = await withLock(sandbox, () => removeAttachment(deps, sandbox, ifName));
    log.info({ step: 'gc', sandbox, ifName, ...removed }, 'garbage-collected attachment');
  }
}
