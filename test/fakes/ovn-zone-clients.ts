// One zone's NB and SB as the cluster unit tests fake them: the real schemas on FakeOvsdbServers,
// and real OvsdbClients monitoring what the daemon monitors.

import type { PeerNode } from '../../daemon/cluster/node-contract';
import { NB_MONITOR, SB_MONITOR } from '../../daemon/node/monitors';
import { OvsdbClient } from '../../daemon/ovsdb/client';
import { FakeOvsdbServer, loadSchema, NB_SCHEMA_PATH } from './fake-ovsdb-server';

export const NB_SCHEMA = loadSchema(NB_SCHEMA_PATH);
export const SB_SCHEMA = loadSchema(NB_SCHEMA_PATH.replace('ovn-nb', 'ovn-sb'));

/** A connected client of the fake with the daemon's monitor; closed by the given cleanups. */
export async function monitoredClient(fake: FakeOvsdbServer, database: string, cleanups: Array<() => unknown>): Promise<OvsdbClient> {
  const c = new OvsdbClient({ socketPath: fake.socketPath, database, reconnectDelayMs: 5 });
  cleanups.push(() => c.close());
  await c.connect();
  await c.monitor(database === 'OVN_Northbound' ? NB_MONITOR : SB_MONITOR);
  return c;
}

export const LS = 'Logical_Switch';
export const LSP = 'Logical_Switch_Port';
export const PB = 'Port_Binding';

/** A joined node as its contract says (chassis ch-<node>). */
export const peer = (node: string, n: number): PeerNode => ({ node, chassisId: `ch-${node}`, encapIp: `10.250.0.${n}`, zone: node });
export const THREE_NODES: PeerNode[] = [peer('node1', 1), peer('node2', 2), peer('node3', 3)];
