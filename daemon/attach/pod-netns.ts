// The one check every caller-supplied CNI_NETNS goes through before the daemon touches it.

import { InvalidEnvError } from '../../common/errors';
import type { Deps } from '../context';

/**
 * Refuses anything that is not a network namespace other than the daemon's own (code 4),
 * without ever blocking the event loop on the caller's path: the inspection runs on a worker
 * thread, so a FIFO, a device or a hung network filesystem stalls only that request.
 */
export async function checkPodNetns(deps: Pick<Deps, 'native'>, netns: string): Promise<void> {
  const found = await deps.native.inspectNetns(netns);
  if (found.kind !== 'netns') throw new InvalidEnvError(`CNI_NETNS ${netns} is not a network namespace: ${found.reason}`);
  if (found.own) throw new InvalidEnvError(`CNI_NETNS ${netns} is the node's own network namespace`);
}
