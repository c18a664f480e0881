// Other nodes' chassis written into a real OVN southbound database (ovsdb-server with the SB
// schema, in a directory of the test's): peers appear as remote chassis with their Geneve encap,
// follow address changes, go when their node goes; the local chassis and rows not written by
// ovnode are never touched; conflicting peers are refused, not written. One transaction per pass.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { PeerNode } from '../../daemon/cluster/node-contract';
import { RemoteChassis } from '../../daemon/cluster/remote-chassis';
import { REMOTE_NODE } from '../../daemon/store/external-ids';
import { SB_MONITOR } from '../../daemon/node/monitors';
import { OvsdbClient } from '../../daemon/ovsdb/client';
import { asArray, asMap, namedUuid, ovsMap, ovsSet, type Row } from '../../daemon/ovsdb/values';
import { RealOvsdbServer } from './harness/ovsdb-server';

const SB_SCHEMA = '/usr/share/ovn/ovn-sb.ovsschema';
const LOCAL = 'node1';

let dir: string;
let server: RealOvsdbServer;
let sb: OvsdbClient;

const peer = (n: number, ip = `10.250.0.${10 + n}`): PeerNode => ({ node: `node${n}`, chassisId: `node${n}`, encapIp: ip, zone: `node${n}` });

/** Chassis as `name ip hostname remote?`, encaps resolved, sorted. */
function chassisTable(): string[] {
  const encaps = sb.rows('Encap');
  return [...sb.rows('Chassis').values()].map((c: Row) => {
    const ips = asArray<string>(c.encaps).map((u) => `${encaps.get(u)?.type}:${encaps.get(u)?.ip}`).join(',');
    const remote = asMap(c.other_config)['is-remote'] === 'true' ? 'remote' : 'local';
    return `${c.name} ${ips} ${c.hostname} ${remote}${asMap(c.external_ids)[REMOTE_NODE] ? ' ovnode' : ''}`;
  }).sort();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ovnode-sb-'));
  server = new RealOvsdbServer(dir, SB_SCHEMA);
  await server.create();
  await server.start();
  sb = new OvsdbClient({ socketPath: server.socketPath, database: 'OVN_Southbound' });
  await sb.connect(AbortSignal.timeout(10_000));
  await sb.monitor(SB_MONITOR);
  // The local chassis, as ovn-controller registers it.
  await sb.transact([
    { op: 'insert', table: 'Encap', 'uuid-name': 'e', row: { type: 'geneve', ip: '10.250.0.11', chassis_name: LOCAL } },
    { op: 'insert', table: 'Chassis', row: { name: LOCAL, hostname: LOCAL, encaps: ovsSet([namedUuid('e')]) } },
  ]);
});

afterAll(async () => {
  await sb?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

let remote: RemoteChassis;
let transactions: number;

beforeEach(() => {
  remote = new RemoteChassis({ sb, localChassis: LOCAL, log: pino({ enabled: false }) });
  transactions = 0;
  const transact = sb.transact.bind(sb);
  sb.transact = (ops) => { transactions++; return transact(ops); };
});

describe('remote chassis in a real OVN southbound database', () => {
  it('writes every peer but itself as a remote chassis with its geneve encap, in one transaction', async () => {
    await remote.sync([peer(1), peer(2), peer(3)]);
    expect(chassisTable()).toEqual([
      'node1 geneve:10.250.0.11 node1 local',
      'node2 geneve:10.250.0.12 node2 remote ovnode',
      'node3 geneve:10.250.0.13 node3 remote ovnode',
    ]);
    expect(transactions).toBe(1);
    await remote.sync([peer(1), peer(2), peer(3)]);
    expect(transactions).toBe(1); // nothing to change, nothing sent
  });

  it('follows a new encap address (the old Encap row is collected) and removes a node that left', async () => {
    await remote.sync([peer(2, '10.250.0.99'), peer(3)]);
    await remote.sync([peer(2, '10.250.0.99')]);
    expect(chassisTable()).toEqual([
      'node1 geneve:10.250.0.11 node1 local',
      'node2 geneve:10.250.0.99 node2 remote ovnode',
    ]);
    expect([...sb.rows('Encap').values()].map((e) => e.ip).sort()).toEqual(['10.250.0.11', '10.250.0.99']);
  });

  it('refuses peers that would collide: the local encap address, a duplicate chassis id or address', async () => {
    await remote.sync([
      peer(2, '10.250.0.99'),
      { node: 'node4', chassisId: 'node4', encapIp: '10.250.0.11', zone: 'node4' }, // the local chassis' address
      { node: 'node5', chassisId: 'node2', encapIp: '10.250.0.15', zone: 'node5' }, // node2's chassis id
      { node: 'node6', chassisId: 'node6', encapIp: '10.250.0.99', zone: 'node6' }, // node2's address
    ]);
    expect(chassisTable()).toEqual([
      'node1 geneve:10.250.0.11 node1 local',
      'node2 geneve:10.250.0.99 node2 remote ovnode',
    ]);
  });

  it('never touches a chassis it did not write, even one named like a peer', async () => {
    await sb.transact([
      { op: 'insert', table: 'Encap', 'uuid-name': 'e', row: { type: 'geneve', ip: '10.250.0.17', chassis_name: 'node7' } },
      { op: 'insert', table: 'Chassis', row: { name: 'node7', hostname: 'elsewhere', encaps: ovsSet([namedUuid('e')]), other_config: ovsMap({ 'is-remote': 'true' }) } },
    ]);
    await remote.sync([peer(2, '10.250.0.99'), peer(7)]);
    await remote.sync([]);
    expect(chassisTable()).toEqual([
      'node1 geneve:10.250.0.11 node1 local',
      'node7 geneve:10.250.0.17 elsewhere remote',
    ]);
  });

  it('puts a chassis edited behind its back right on the next pass', async () => {
    await remote.sync([peer(2)]);
    const row = [...sb.rows('Chassis').values()].find((c) => c.name === 'node2') as Row;
    await sb.transact([{ op: 'update', table: 'Chassis', where: [['_uuid', '==', ['uuid', row._uuid]]], row: { hostname: 'tampered', other_config: ovsMap({}) } }]);
    await remote.sync([peer(2)]);
    expect(chassisTable()).toContain('node2 geneve:10.250.0.12 node2 remote ovnode');
  });
});
