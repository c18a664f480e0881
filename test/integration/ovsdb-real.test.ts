// OvsdbClient against real ovsdb-server processes (Open_vSwitch and OVN_Northbound databases),
// each in its own temporary directory, killed by pid afterwards even when a test fails.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OvsdbClient } from '../../daemon/ovsdb/client';
import type { Condition } from '../../daemon/ovsdb/types';
import { asArray, asMap, namedUuid, ovsMap, ovsSet, uuid, type Row } from '../../daemon/ovsdb/values';
import { RealOvsdbServer } from './harness/ovsdb-server';

const run = promisify(execFile);
const VSWITCH_SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';
const NB_SCHEMA = '/usr/share/ovn/ovn-nb.ovsschema';

function requireTools(): void {
  const missing = [VSWITCH_SCHEMA, NB_SCHEMA, '/usr/sbin/ovsdb-server', '/usr/bin/ovsdb-tool'].filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new Error(`OVSDB integration tests need openvswitch-switch and ovn-central; missing: ${missing.join(', ')}`);
  }
}

const servers: RealOvsdbServer[] = [];
const clients: OvsdbClient[] = [];

async function startServer(schema: string): Promise<RealOvsdbServer> {
  const s = new RealOvsdbServer(mkdtempSync(join(tmpdir(), 'ovnode-ovsdb-it-')), schema);
  servers.push(s);
  await s.create();
  await s.start();
  return s;
}

function newClient(s: RealOvsdbServer, database: string): OvsdbClient {
  const c = new OvsdbClient({ socketPath: s.socketPath, database, reconnectDelayMs: 20 });
  clients.push(c);
  return c;
}

beforeAll(requireTools);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  for (const s of servers) {
    await s.stop().catch(() => undefined);
    rmSync(s.dir, { recursive: true, force: true });
  }
});

describe('real ovsdb-server: Open_vSwitch', () => {
  let server: RealOvsdbServer;
  let client: OvsdbClient;
  const changes: [string, Row | undefined, Row | undefined][] = [];
  const ours: Condition[] = [['external_ids', 'includes', ovsMap({ owner: 'ovnode' })]];

  beforeAll(async () => {
    server = await startServer(VSWITCH_SCHEMA);
    client = newClient(server, 'Open_vSwitch');
    client.on('change', (table, _id, o, n) => changes.push([table, o, n]));
    await client.connect(AbortSignal.timeout(10_000));
    // A fresh database has no root row; Bridge, Port and Interface rows are garbage collected
    // unless reachable from it (RFC 7047 §3.2 isRoot).
    await client.transact([{ op: 'insert', table: 'Open_vSwitch', row: {} }]);
    await client.monitor({ Interface: { columns: ['name', 'type', 'external_ids', 'ofport'] }, Bridge: { columns: ['name', 'ports'] } });
    await client.monitor({ Port: { columns: ['name', 'interfaces', 'trunks', 'tag', 'external_ids'], where: ours } });
  });

  const byName = (table: string, name: string): Row | undefined =>
    [...client.rows(table).values()].find((r) => r.name === name);

  it('inserts Bridge + Port + Interface with named-uuids in one transaction', async () => {
    const res = await client.transact([
      { op: 'insert', table: 'Interface', row: { name: 'veth-a', type: 'internal', external_ids: ovsMap({ sandbox: 's1' }) }, 'uuid-name': 'ifa' },
      { op: 'insert', table: 'Port', row: { name: 'veth-a', interfaces: namedUuid('ifa'), external_ids: ovsMap({ owner: 'ovnode' }) }, 'uuid-name': 'pa' },
      { op: 'insert', table: 'Bridge', row: { name: 'br-test', ports: ovsSet([namedUuid('pa')]) }, 'uuid-name': 'br' },
      { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['bridges', 'insert', ovsSet([namedUuid('br')])]] },
      { op: 'comment', comment: 'ovnode integration test' },
    ]);
    const [ifa, pa, br] = res.map((r) => r.uuid?.[1]);
    const iface = await client.waitFor('Interface', (r) => r._uuid === ifa, AbortSignal.timeout(5000));
    expect(iface).toMatchObject({ name: 'veth-a', type: 'internal', external_ids: { sandbox: 's1' }, ofport: [] });
    const port = await client.waitFor('Port', (r) => r._uuid === pa, AbortSignal.timeout(5000));
    expect(asArray(port.interfaces)).toEqual([ifa]);
    expect(port.trunks).toEqual([]); // omitted by update2 as a default, restored from the schema
    expect(asArray(client.rows('Bridge').get(br as string)?.ports)).toEqual([pa]);
    expect(changes).toContainEqual(['Interface', undefined, iface]);
  });

  it('reports the failing part of a rejected transaction', async () => {
    const dangling = uuid('00000000-0000-0000-0000-000000000001');
    await expect(client.transact([{ op: 'insert', table: 'Bridge', row: { name: 'br-bad', ports: dangling } }]))
      .rejects.toThrow(/failed at commit: referential integrity violation/);
    await expect(client.transact([{ op: 'insert', table: 'Nope', row: {} }]))
      .rejects.toThrow(/operation 0 \(insert Nope\): syntax error/);
  });

  it('waits for a row whose external_ids gets a key later, then sees modify and delete', async () => {
    const installed = client.waitFor('Interface', (r) => asMap(r.external_ids)['ovn-installed'] === 'true', AbortSignal.timeout(5000));
    await client.transact([{ op: 'mutate', table: 'Interface', where: [['name', '==', 'veth-a']],
      mutations: [['external_ids', 'insert', ovsMap({ 'ovn-installed': 'true' })]] }]);
    expect((await installed).external_ids).toEqual({ sandbox: 's1', 'ovn-installed': 'true' });
    expect(changes.at(-1)?.[1]?.external_ids).toEqual({ sandbox: 's1' });

    await client.transact([
      { op: 'insert', table: 'Interface', row: { name: 'veth-b' }, 'uuid-name': 'ifb' },
      { op: 'insert', table: 'Port', row: { name: 'veth-b', interfaces: namedUuid('ifb') }, 'uuid-name': 'pb' },
      { op: 'mutate', table: 'Bridge', where: [['name', '==', 'br-test']], mutations: [['ports', 'insert', ovsSet([namedUuid('pb')])]] },
    ]);
    const b = await client.waitFor('Interface', (r) => r.name === 'veth-b', AbortSignal.timeout(5000));
    const pb = (await client.select('Port', [['name', '==', 'veth-b']], ['name']))[0]?._uuid as string;
    // Unreferenced Port and Interface rows are garbage collected: deleting the reference deletes them.
    await client.transact([{ op: 'mutate', table: 'Bridge', where: [['name', '==', 'br-test']], mutations: [['ports', 'delete', uuid(pb)]] }]);
    await client.echo();
    await expect.poll(() => client.rows('Interface').has(b._uuid)).toBe(false);
    expect(changes).toContainEqual(['Interface', b, undefined]);
  });

  it('monitor_cond: rows enter and leave the where clause, set and map diffs converge', async () => {
    await client.transact([
      { op: 'insert', table: 'Port', row: { name: 'p-other', interfaces: namedUuid('i'), external_ids: ovsMap({ owner: 'else' }) }, 'uuid-name': 'p' },
      { op: 'insert', table: 'Interface', row: { name: 'p-other' }, 'uuid-name': 'i' },
      { op: 'mutate', table: 'Bridge', where: [['name', '==', 'br-test']], mutations: [['ports', 'insert', namedUuid('p')]] },
    ]);
    await client.echo();
    expect(byName('Port', 'p-other')).toBeUndefined();
    const steps: unknown[][] = [
      // Map insert leaves existing keys alone (RFC 7047 §5.1): delete the key first.
      [['external_ids', 'delete', ovsSet(['owner'])], ['external_ids', 'insert', ovsMap({ owner: 'ovnode' })]],
      [['trunks', 'insert', ovsSet([10])]],
      [['trunks', 'insert', ovsSet([20])]],
      [['trunks', 'insert', ovsSet([30])], ['trunks', 'delete', ovsSet([10])]],
      [['tag', 'insert', ovsSet([7])], ['external_ids', 'insert', ovsMap({ a: '1' })]],
      [['tag', 'delete', ovsSet([7])], ['external_ids', 'delete', ovsSet(['a'])]],
    ];
    for (const mutations of steps) {
      await client.transact([{ op: 'mutate', table: 'Port', where: [['name', '==', 'p-other']], mutations } as never]);
      const [want] = await client.select('Port', [['name', '==', 'p-other']], ['name', 'interfaces', 'trunks', 'tag', 'external_ids']);
      await expect.poll(() => byName('Port', 'p-other')).toEqual(want);
    }
    await client.transact([{ op: 'update', table: 'Port', where: [['name', '==', 'p-other']], row: { external_ids: ovsMap({}) } }]);
    await expect.poll(() => byName('Port', 'p-other')).toBeUndefined();
  });

  it('reconnects after the server is killed and restarted on the same socket, resyncing the cache', async () => {
    const disconnected = new Promise((r) => client.once('disconnected', r));
    await server.stop();
    await disconnected;
    // Changed while no server runs: written straight into the database file.
    await server.transactOffline([
      { op: 'mutate', table: 'Interface', where: [['name', '==', 'veth-a']], mutations: [['external_ids', 'insert', ovsMap({ offline: 'yes' })]] },
    ]);
    const reconnected = new Promise<number>((r) => client.once('reconnect', r));
    await server.start();
    expect(await reconnected).toBe(1);
    expect(client.reconnects).toBe(1);
    expect(byName('Interface', 'veth-a')?.external_ids).toMatchObject({ offline: 'yes' });
    expect(changes.at(-1)?.[2]?.external_ids).toMatchObject({ offline: 'yes' });
    await client.transact([{ op: 'update', table: 'Interface', where: [['name', '==', 'veth-a']], row: { type: '' } }]);
    await expect.poll(() => byName('Interface', 'veth-a')?.type).toBe('');
  });
});

describe('real ovsdb-server: OVN_Northbound', () => {
  it('inserts a Logical_Switch and a Logical_Switch_Port with addresses and port_security', async () => {
    const server = await startServer(NB_SCHEMA);
    const nb = newClient(server, 'OVN_Northbound');
    await nb.connect(AbortSignal.timeout(10_000));
    await nb.monitor({ Logical_Switch_Port: { columns: ['name', 'addresses', 'port_security', 'external_ids'] } });
    const mac = '0a:58:0a:f4:00:05';
    const res = await nb.transact([
      { op: 'insert', table: 'Logical_Switch_Port', 'uuid-name': 'lsp', row: {
        name: 'ns_pod-a',
        addresses: ovsSet([`${mac} 10.244.0.5 fd00::5`]),
        port_security: ovsSet([`${mac} 10.244.0.5 fd00::5`]),
        external_ids: ovsMap({ pod: 'ns/pod-a', sandbox: 's1' }),
      } },
      { op: 'insert', table: 'Logical_Switch', 'uuid-name': 'ls', row: { name: 'node1', ports: ovsSet([namedUuid('lsp')]), other_config: ovsMap({ subnet: '10.244.0.0/24' }) } },
    ]);
    const [lsp, ls] = res.map((r) => r.uuid?.[1]);
    const [sw] = await nb.select('Logical_Switch', [['name', '==', 'node1']]);
    expect(sw).toMatchObject({ _uuid: ls, ports: lsp, other_config: { subnet: '10.244.0.0/24' } });
    const port = await nb.waitFor('Logical_Switch_Port', (r) => r.name === 'ns_pod-a', AbortSignal.timeout(5000));
    expect(port).toEqual({
      _uuid: lsp,
      name: 'ns_pod-a',
      addresses: `${mac} 10.244.0.5 fd00::5`,
      port_security: `${mac} 10.244.0.5 fd00::5`,
      external_ids: { pod: 'ns/pod-a', sandbox: 's1' },
    });
  });
});
