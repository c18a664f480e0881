// Start-up reconciliation: attachments whose pod netns is gone (the pod died while the daemon
// was down, or the node rebooted) are removed with everything they held.

import type { Deps } from '../context';
import { HOST_IF_RE } from '../intent/intent';
import { OVS } from '../ovs/schema';
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
  removed += await removeOrphanVeths(deps);
  return removed;
}

/** Host veths of ours (named by hostIfName) that no OVS port references: a DEL's background
 * removal, or an ADD, was cut short by a crash. */
async function removeOrphanVeths(deps: Deps): Promise<number> {
  const referenced = new Set([...deps.ovs.rows(OVS.port).values()].map((p) => p.name as string));
  let n = 0;
  for (const name of await deps.plumber.hostVethNames()) {
    if (!HOST_IF_RE.test(name) || referenced.has(name)) continue;
    if (await deps.plumber.destroy(name)) {
      deps.log.info({ step: 'reconcile', veth: name }, 'removed orphan host veth');
      n++;
    }
  }
  return n;
}
