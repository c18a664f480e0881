// OvsdbClient reconnection: backoff while the server is away, monitor resync, protocol errors.
import { once } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OvsdbClient } from '../../../daemon/ovsdb/client';
import { ovsMap, type Row } from '../../../daemon/ovsdb/values';
import { FakeOvsdbServer, TEST_SCHEMA } from '../../fakes/fake-ovsdb-server';

let fake: FakeOvsdbServer;
let client: OvsdbClient;

beforeEach(async () => {
  fake = await FakeOvsdbServer.start({ schema: TEST_SCHEMA });
  client = new OvsdbClient({ socketPath: fake.socketPath, database: 'Open_vSwitch', reconnectDelayMs: 5 });
});

afterEach(async () => {
  await client.close();
  await fake.close();
});

const bridge = (name: string): unknown => ({ op: 'insert', table: 'Bridge', row: { name, external_ids: ovsMap({}) } });
const names = (): string[] => [...client.rows('Bridge').values()].map((r) => r.name as string).sort();

describe('reconnect', () => {
  it('resyncs monitors after a drop: the cache converges and changes are emitted', async () => {
    fake.apply([bridge('br-a'), bridge('br-b'), bridge('br-c')]);
    await client.connect();
    await client.monitor({ Bridge: { columns: ['name', 'external_ids'] }, Port: { columns: ['name'], where: [] } });
    expect(names()).toEqual(['br-a', 'br-b', 'br-c']);
    const seen: [string, string | undefined, string | undefined][] = [];
    client.on('change', (table, _id, o?: Row, n?: Row) => seen.push([table, o?.name as string, n?.name as string]));
    const disconnected = once(client, 'disconnected');
    const reconnected = once(client, 'reconnect');

    fake.dropConnections();
    // Changed while the client is away: its retry timer cannot have fired yet.
    fake.apply([
      { op: 'delete', table: 'Bridge', where: [['name', '==', 'br-a']] },
      { op: 'update', table: 'Bridge', where: [['name', '==', 'br-b']], row: { external_ids: ovsMap({ k: 'v' }) } },
      bridge('br-d'),
      { op: 'insert', table: 'Port', row: { name: 'p1' } },
    ]);
    await disconnected;
    expect(client.connected).toBe(false);
    expect(names()).toEqual(['br-a', 'br-b', 'br-c']); // stale, not emptied, while disconnected
    expect(await reconnected).toEqual([1]);

    expect(client.connected).toBe(true);
    expect(client.reconnects).toBe(1);
    expect(names()).toEqual(['br-b', 'br-c', 'br-d']);
    expect([...client.rows('Bridge').values()].find((r) => r.name === 'br-b')?.external_ids).toEqual({ k: 'v' });
    expect(seen.sort()).toEqual([
      ['Bridge', 'br-a', undefined],
      ['Bridge', 'br-b', 'br-b'],
      ['Bridge', undefined, 'br-d'],
      ['Port', undefined, 'p1'],
    ].sort());
    // Updates flow on the new session.
    fake.apply([bridge('br-e')]);
    await client.echo();
    expect(names()).toContain('br-e');
  });

  it('keeps trying with backoff while the server is down, and counts each recovery', async () => {
    await client.connect();
    await client.monitor({ Bridge: { columns: ['name'] } });
    for (let i = 1; i <= 2; i++) {
      await fake.stop();
      fake.apply([bridge(`br-${i}`)]);
      await new Promise((r) => setTimeout(r, 40)); // several failed attempts
      expect(client.connected).toBe(false);
      const reconnected = once(client, 'reconnect');
      await fake.listen();
      expect(await reconnected).toEqual([i]);
    }
    expect(client.reconnects).toBe(2);
    expect(names()).toEqual(['br-1', 'br-2']);
  });

  it('connect() waits for a server that is not there yet, and its signal stops the wait', async () => {
    await fake.stop();
    const ac = new AbortController();
    const aborted = client.connect(ac.signal);
    const waiting = client.connect();
    const reason = new Error('gave up');
    ac.abort(reason);
    await expect(aborted).rejects.toBe(reason);
    await new Promise((r) => setTimeout(r, 20));
    await fake.listen();
    await waiting;
    expect(client.connected).toBe(true);
    expect(client.reconnects).toBe(0); // the first connection is not a reconnect
  });

  it('drops the connection on a malformed stream and reconnects', async () => {
    await client.connect();
    const reconnected = once(client, 'reconnect');
    fake.sendRaw('not json');
    await reconnected;
    await client.echo();
  });

  it('stops reconnecting once closed', async () => {
    await client.connect();
    const disconnected = once(client, 'disconnected');
    fake.dropConnections();
    await disconnected;
    await client.close();
    await new Promise((r) => setTimeout(r, 40));
    expect(fake.connectionCount).toBe(0);
    expect(client.connected).toBe(false);
  });
});
