// Start-up reconciliation: attachments whose pod netns is gone (the pod died while the daemon
// was down, or the node rebooted) are removed with everything they held.

import type { Deps } from '../context';
import { removeAttachment } from '../cmd/del';
import { attachmentKey } from '../store/attachment';
import { nbAttachments, ovsAttachments } from '../store/lookup';

export async function reconcile(deps: Deps): Promise<number> {
  const seen = new Map<string, { sandbox: string; ifName: string; netns: string }>();
  for (const a of [...ovsAttachments(deps.ovs), ...nbAttachments(deps.nb)]) {
    seen.set(attachmentKey(a.sandbox, a.ifName), { sandbox: a.sandbox, ifName: a.ifName, netns: a.netns });
  }
  let removed = 0;
  for (const a of seen.values()) {
    if (a.netns && deps.native.exists(a.netns)) continue;
    const r = await removeAttachment(deps, a.sandbox, a.ifName);
    deps.log.info({ step: 'reconcile', sandbox: a.sandbox, ifname: a.ifName, ...r }, 'removed attachment whose netns is gone');
    removed++;
  }
  deps.metrics.attachments.set(ovsAttachments(deps.ovs).length);
  return removed;
}
