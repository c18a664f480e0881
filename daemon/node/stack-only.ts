// `ovnoded stack`: runs and supervises a node's OVS/OVN programs and nothing else. On a cluster
// this is the ovnode-ovs pod: on the userspace datapath ovs-vswitchd is the datapath, and deleting
// a pod kills its processes, so the stack lives in a pod that is only replaced on purpose
// (updateStrategy OnDelete) while the daemon's pod comes and goes (it adopts these programs).

import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import { loadNative } from '../../native/index';
import { EmbeddedStack } from '../embedded/stack';
import { openRtnl } from '../kernel/rtnl';
import { OVS } from '../ovs/schema';
import { OvsdbClient } from '../ovsdb/client';
import { NODE_TAP_DEVICES } from './start';

export interface RunningStack { stop(): Promise<void> }

export async function startStackOnly(stateDir: string, log: Logger): Promise<RunningStack> {
  const native = loadNative();
  const stack = new EmbeddedStack(stateDir, log, (pid) => native.watchExit(pid));
  const userspace = !existsSync('/sys/module/openvswitch');
  const stop = async (): Promise<void> => {
    await stack.stop();
    if (userspace) await removeLeftoverTaps(log);
  };
  try {
    await stack.startDatabases();
    // ovn-controller exits at once while the Open_vSwitch table has no row (the daemon, which
    // writes the chassis settings into it, may start later): create the row as `ovs-vsctl init` does.
    await ensureRootRow(stack.paths.ovsSocket, log);
    if (!stack.switchAlive() && userspace) await removeLeftoverTaps(log);
    await stack.startSwitch();
  } catch (e) {
    await stop();
    throw e;
  }
  return { stop };
}

async function ensureRootRow(socketPath: string, log: Logger): Promise<void> {
  const ovs = new OvsdbClient({ socketPath, database: 'Open_vSwitch', logger: log });
  try {
    await ovs.connect();
    await ovs.transact([
      // Inserted only when the table is empty: the wait fails (and aborts the insert) otherwise.
      { op: 'wait', table: OVS.root, where: [], columns: [], until: '==', rows: [], timeout: 0 },
      { op: 'insert', table: OVS.root, row: {} },
    ]).catch((e: unknown) => {
      if (!/timed out/i.test(String(e))) throw e;
    });
  } finally {
    ovs.close();
  }
}

// The userspace datapath's tap devices outlive ovs-vswitchd (a killed pod, a crash): a fresh
// ovs-vswitchd cannot create its ports while the old ones exist.
async function removeLeftoverTaps(log: Logger): Promise<void> {
  const rtnl = openRtnl();
  try {
    for (const name of NODE_TAP_DEVICES) {
      if (await rtnl.deleteLink(name)) log.info({ step: 'stack', device: name }, 'removed a leftover tap device');
    }
  } finally {
    rtnl.close();
  }
}
