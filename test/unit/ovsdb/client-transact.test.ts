// OvsdbClient transactions, echo and close against the in-memory fake server.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isOvnodeError, OvsdbError, OvsdbOutcomeUnknownError } from '../../../common/errors';
import { OvsdbClient } from '../../../daemon/ovsdb/client';
import type { Operation } from '../../../daemon/ovsdb/types';
import { namedUuid, ovsMap, ovsSet, uuid } from '../../../daemon/ovsdb/values';
import { FakeOvsdbServer, TEST_SCHEMA } from '../../fakes/fake-ovsdb-server';

let fake: FakeOvsdbServer;
let client: OvsdbClient;

beforeEach(async () => {
  fake = await FakeOvsdbServer.start({ schema: TEST_SCHEMA });
  fake.apply([{ op: 'insert', table: 'Open_vSwitch', row: {} }]);
  client = new OvsdbClient({ socketPath: fake.socketPath, database: 'Open_vSwitch', reconnectDelayMs: 5 });
  await client.connect();
});

afterEach(async () => {
  await client.close();
  await fake.close();
});

/** Bridge + Port + Interface in one transaction, the Port referring forward to the Interface. */
const attachOps: Operation[] = [
  { op: 'insert', table: 'Port', row: { name: 'veth1', interfaces: namedUuid('iface') }, 'uuid-name': 'port' },
  { op: 'insert', table: 'Interface', row: { name: 'veth1', external_ids: ovsMap({ 'iface-id': 'ns_pod' }) }, 'uuid-name': 'iface' },
  { op: 'insert', table: 'Bridge', row: { name: 'br-int', ports: ovsSet([namedUuid('port')]) }, 'uuid-name': 'br' },
  { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['bridges', 'insert', ovsSet([namedUuid('br')])]] },
  { op: 'comment', comment: 'ovnode: attach veth1' },
];

describe('transact', () => {
  it('resolves named-uuids across the transaction and returns per-operation results', async () => {
    const res = await client.transact(attachOps);
    expect(res).toHaveLength(5);
    const [port, iface, br] = res.map((r) => r.uuid?.[1]);
    expect(res[3]).toEqual({ count: 1 });
    expect(fake.rows('Port')).toEqual([expect.objectContaining({ _uuid: port, name: 'veth1', interfaces: iface })]);
    expect(fake.rows('Bridge')[0]).toMatchObject({ _uuid: br, ports: [port] });
    expect(fake.rows('Open_vSwitch')[0]?.bridges).toEqual(br);
    expect(fake.rows('Interface')[0]?.external_ids).toEqual({ 'iface-id': 'ns_pod' });
  });

  it('applies update, mutate and delete with conditions', async () => {
    await client.transact(attachOps);
    const ops: Operation[] = [
      { op: 'update', table: 'Interface', where: [['name', '==', 'veth1']], row: { ofport: 3 } },
      { op: 'mutate', table: 'Interface', where: [['external_ids', 'includes', ovsMap({ 'iface-id': 'ns_pod' })]],
        mutations: [['external_ids', 'insert', ovsMap({ sandbox: 'abc' })], ['ofport', '+=', 2]] },
      { op: 'mutate', table: 'Port', where: [['name', '!=', 'other']], mutations: [['trunks', 'insert', ovsSet([10, 20])]] },
      { op: 'delete', table: 'Bridge', where: [['name', '==', 'nope']] },
    ];
    expect(await client.transact(ops)).toEqual([{ count: 1 }, { count: 1 }, { count: 1 }, { count: 0 }]);
    expect(fake.rows('Interface')[0]).toMatchObject({ ofport: 5, external_ids: { 'iface-id': 'ns_pod', sandbox: 'abc' } });
    expect(fake.rows('Port')[0]?.trunks).toEqual([10, 20]);
  });

  it('selects and decodes rows, _uuid always included', async () => {
    const [, iface] = (await client.transact(attachOps)).map((r) => r.uuid?.[1]);
    const rows = await client.select('Interface', [['_uuid', '==', uuid(iface as string)]], ['name', 'external_ids']);
    expect(rows).toEqual([{ _uuid: iface, name: 'veth1', external_ids: { 'iface-id': 'ns_pod' } }]);
  });

  it('rejects with the failing operation and its error, and applies nothing', async () => {
    const ops: Operation[] = [
      { op: 'insert', table: 'Bridge', row: { name: 'br-x' } },
      { op: 'wait', table: 'Bridge', where: [['name', '==', 'br-int']], columns: ['name'], until: '==', rows: [{ name: 'br-int' }], timeout: 0 },
    ];
    const err = await client.transact(ops).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OvsdbError);
    expect(isOvnodeError(err) && err.cniCode).toBe(103);
    expect((err as Error).message).toMatch(/operation 1 \(wait Bridge\): timed out/);
    expect(fake.rows('Bridge')).toEqual([]);
  });

  it('rejects a commit failure (one result past the operations)', async () => {
    fake.failNextTransaction('referential integrity violation', 'dangling port');
    await expect(client.transact(attachOps)).rejects.toThrow(/failed at commit: referential integrity violation: dangling port/);
    expect(fake.rows('Port')).toEqual([]);
  });

  it('rejects an error reply for the whole request', async () => {
    const other = new OvsdbClient({ socketPath: fake.socketPath, database: 'Nope' });
    await other.connect();
    await expect(other.transact([{ op: 'comment', comment: 'x' }])).rejects.toThrow(/transact failed: unknown database: Nope/);
    await other.close();
  });

  it('does not abandon a transaction: an overdue reply recycles the connection and the outcome is unknown', async () => {
    const impatient = new OvsdbClient({ socketPath: fake.socketPath, database: 'Open_vSwitch', replyTimeoutMs: 200 });
    await impatient.connect();
    fake.stallNextTransaction();
    const reconnected = new Promise<void>((resolve) => impatient.once('reconnect', () => resolve()));
    const err = await impatient.transact(attachOps).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OvsdbOutcomeUnknownError);
    expect((err as OvsdbOutcomeUnknownError).cniCode).toBe(11);
    await reconnected;
    expect(impatient.connected).toBe(true);
    await impatient.close();
  });

  it('rejects an in-flight transaction when the connection drops, without replaying it', async () => {
    fake.stallNextTransaction();
    const p = client.transact(attachOps);
    await client.echo(); // the request has reached the server
    fake.dropConnections();
    await expect(p).rejects.toThrow(/transact: connection closed before the reply/);
    await new Promise((resolve) => client.once('reconnect', resolve));
    expect(fake.requests.filter((r) => r.method === 'transact')).toHaveLength(1);
  });

  it('rejects immediately while not connected', async () => {
    await fake.stop();
    await new Promise((resolve) => client.once('disconnected', resolve));
    expect(client.connected).toBe(false);
    await expect(client.transact(attachOps)).rejects.toThrow(/not connected/);
  });
});

describe('echo', () => {
  it('round-trips a client echo', async () => {
    await client.echo();
    expect(fake.requests.at(-1)?.method).toBe('echo');
  });

  it('answers the server echo requests (inactivity probe)', async () => {
    await fake.sendEcho();
    expect(client.connected).toBe(true);
  });
});

describe('close', () => {
  it('rejects pending requests, emits disconnected and never reconnects', async () => {
    fake.stallNextTransaction();
    const p = client.transact(attachOps);
    const disconnected = new Promise((resolve) => client.once('disconnected', resolve));
    await client.echo();
    await client.close();
    await expect(p).rejects.toThrow(OvsdbError);
    await disconnected;
    expect(client.connected).toBe(false);
    await new Promise((r) => setTimeout(r, 30));
    expect(fake.connectionCount).toBe(0);
    await expect(client.transact(attachOps)).rejects.toThrow(/not connected/);
    await expect(client.connect()).rejects.toThrow(/closed/);
  });
});
