// The one check every caller-supplied CNI_NETNS goes through before the daemon touches it.

import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { InvalidEnvError } from '../../common/errors';
import type { Deps } from '../context';

/** Which namespace a path named when it was inspected (nsfs device + inode). */
export interface NetnsIdentity { dev: number; ino: number }

/**
 * Refuses anything that is not a network namespace other than the daemon's own (code 4),
 * without ever blocking the event loop on the caller's path: the inspection runs on a worker
 * thread, so a FIFO, a device or a hung network filesystem stalls only that request.
 */
export async function checkPodNetns(deps: Pick<Deps, 'native'>, netns: string): Promise<NetnsIdentity> {
  const found = await deps.native.inspectNetns(netns);
  if (found.kind !== 'netns') throw new InvalidEnvError(`CNI_NETNS ${netns} is not a network namespace: ${found.reason}`);
  if (found.own) throw new InvalidEnvError(`CNI_NETNS ${netns} is the node's own network namespace`);
  return { dev: found.dev, ino: found.ino };
}

/**
 * Opens the pod's netns for use as a file descriptor (IFLA_NET_NS_FD), off the event loop, and
 * proves that what was opened is the namespace checkPodNetns inspected (same nsfs dev + inode):
 * the path cannot be swapped for a FIFO or another file between the check and the use.
 */
export async function openPodNetns(netns: string, inspected: NetnsIdentity): Promise<FileHandle> {
  // O_NONBLOCK: if the path was swapped for a FIFO meanwhile, open returns at once (libuv adds
  // O_CLOEXEC itself).
  const fh = await open(netns, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const st = await fh.stat();
    if (st.dev !== inspected.dev || st.ino !== inspected.ino) throw new InvalidEnvError(`CNI_NETNS ${netns} changed since it was checked`);
    return fh;
  } catch (e) {
    await fh.close();
    throw e;
  }
}
