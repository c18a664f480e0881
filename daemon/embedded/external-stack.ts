// The OVS/OVN stack of a node when another process owns it (the ovnode-ovs DaemonSet pod on a
// cluster): the daemon only waits for its sockets and uses them. It never starts, restarts or
// stops a program, so restarting or upgrading the daemon cannot interrupt the datapath, and two
// supervisors never fight over one ovs-vswitchd.

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { stackPaths, type NodeStack, type StackPaths } from './stack';
import { waitForPath } from './supervised-process';

// Long: on a node being set up, the stack pod may start minutes after the daemon's (image pull).
const SOCKET_WAIT_MS = 600_000;

export class ExternalStack implements NodeStack {
  readonly paths: StackPaths;
  readonly owned = false;

  constructor(stateDir: string, private readonly log: Logger, private readonly waitMs = SOCKET_WAIT_MS) {
    this.paths = stackPaths(stateDir);
  }

  async startDatabases(): Promise<void> {
    const { ovsSocket, nbSocket, sbSocket } = this.paths;
    for (const path of [ovsSocket, nbSocket, sbSocket]) await this.waitFor(path);
  }

  // The switch is the owner's: its taps are never ours to remove.
  switchAlive(): boolean { return true; }

  async startSwitch(): Promise<void> {
    await this.waitFor(this.paths.vswitchdCtl);
  }

  // The database sessions' own state says whether the stack answers; see start.ts.
  healthy(): boolean { return true; }

  release(): void {}

  async stop(): Promise<void> {}

  private async waitFor(path: string): Promise<void> {
    this.log.info({ step: 'stack', path }, 'waiting for the OVS/OVN stack of this node');
    // The directory is watched for the socket: it may not exist yet when this pod starts first.
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    await waitForPath(path, this.waitMs);
  }
}
