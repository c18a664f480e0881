// OvsdbClient monitors: the cache, 'change' events, update2 diffs, waitFor, framing end to end.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { OvsdbClient } from '../../../daemon/ovsdb/client';
import { JsonStreamSplitter } from '../../../daemon/ovsdb/framing';
import type { Condition } from '../../../daemon/ovsdb/types';
import { asMap, ovsMap, ovsSet, uuid, type Row } from '../../../daemon/ovsdb/values';
import { FakeOvsdbServer, TEST_SCHEMA, type FakeOvsdbServerOptions } from '../../fakes/fake-ovsdb-server';

type Change = [table: string, uuid: string, old: Row | undefined, new: Row | undefined];

let fake: FakeOvsdbServer;
let client: OvsdbClient;
let changes: Change[];

async function setup(opts: FakeOvsdbServerOptions = { schema: TEST_SCHEMA }): Promise<void> {
  fake = await FakeOvsdbServer.start(opts);
  client = new OvsdbClient({ socketPath: fake.socketPath, database: 'Open_vSwitch', reconnectDelayMs: 5 });
  changes = [];
  client.on('change', (...c) => changes.push(c));
  await client.connect();
}

afterEach(async () => {
  await client.close();
  await fake.close();
});

function insertIface(name: string, ids: Record<string, string> = {}): string {
  const [r] = fake.apply([{ op: 'insert', table: 'Interface', row: { name, external_ids: ovsMap(ids) } }]) as { uuid: [string, string] }[];
  return (r as { uuid: [string, string] }).uuid[1];
}

/** Every notification the server sent before an echo reply has been applied once it resolves. */
const settle = (): Promise<void> => client.echo();

/** Sets of one element decode to the bare atom on one side and may be stored as a set on the other. */
function norm(row: Row | undefined): Record<string, unknown> | undefined {
  if (!row) return row;
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Array.isArray(v) && v.length === 1 ? v[0] : v]));
}

describe('monitor (RFC 7047 update)', () => {
  it('loads initial rows, then emits insert, modify and delete', async () => {
    await setup();
    const first = insertIface('veth0', { a: '1' });
    await client.monitor({ Interface: { columns: ['name', 'external_ids', 'ofport'] } });
    expect(client.rows('Interface').get(first)).toEqual({ _uuid: first, name: 'veth0', external_ids: { a: '1' }, ofport: [] });
    expect(changes).toEqual([['Interface', first, undefined, client.rows('Interface').get(first)]]);

    changes.length = 0;
    const second = insertIface('veth1');
    fake.apply([{ op: 'update', table: 'Interface', where: [['_uuid', '==', uuid(first)]], row: { ofport: 7, type: 'internal' } }]);
    fake.apply([{ op: 'delete', table: 'Interface', where: [['name', '==', 'veth1']] }]);
    fake.apply([{ op: 'update', table: 'Interface', where: [], row: { type: 'x' } }]); // unmonitored column: no event
    await settle();
    expect(changes.map(([, id, o, n]) => [id, o?.ofport, n?.ofport, n?.name])).toEqual([
      [second, undefined, [], 'veth1'],
      [first, [], 7, 'veth0'],
      [second, [], undefined, undefined],
    ]);
    expect([...client.rows('Interface').keys()]).toEqual([first]);
    expect(client.rows('Interface').get(first)).not.toHaveProperty('type');
  });

  it('applies an update that arrives right behind the monitor reply', async () => {
    await setup();
    fake.afterReply = (method) => {
      if (method !== 'monitor_cond') return;
      fake.afterReply = undefined;
      insertIface('late');
    };
    await client.monitor({ Interface: {} });
    expect([...client.rows('Interface').values()].map((r) => r.name)).toEqual(['late']);
  });

  it('refuses a table monitored twice and reports a monitor the server refuses', async () => {
    await setup();
    await client.monitor({ Interface: {} });
    await expect(client.monitor({ Interface: {} })).rejects.toThrow(/already monitored: Interface/);
    await expect(client.monitor({ Nope: {} })).rejects.toThrow(/monitor_cond failed: unknown table/);
    await expect(client.waitFor('Nope', () => true)).rejects.toThrow(/not monitored/);
    await settle();
  });

  it('can be registered before connecting and is set up by connect()', async () => {
    fake = await FakeOvsdbServer.start({ schema: TEST_SCHEMA });
    const id = insertIface('veth0');
    client = new OvsdbClient({ socketPath: fake.socketPath, database: 'Open_vSwitch' });
    const ready = client.monitor({ Interface: { columns: ['name'] } });
    await client.connect();
    expect(client.rows('Interface').get(id)).toEqual({ _uuid: id, name: 'veth0' });
    await ready;
  });
});

describe('monitor_cond (update2)', () => {
  const ours: Condition[] = [['external_ids', 'includes', ovsMap({ owner: 'ovnode' })]];
  const columns = ['name', 'interfaces', 'trunks', 'tag', 'external_ids'];

  async function port(name: string, owner: string): Promise<string> {
    const [r] = fake.apply([{ op: 'insert', table: 'Port', row: { name, external_ids: ovsMap({ owner }) } }]) as { uuid: [string, string] }[];
    return (r as { uuid: [string, string] }).uuid[1];
  }

  /** The cache must equal the server's rows that match, column for column. */
  function expectConverged(): void {
    const want = fake.rows('Port').filter((r) => asMap(r.external_ids).owner === 'ovnode')
      .map((r) => norm(Object.fromEntries(Object.entries(r).filter(([k]) => k === '_uuid' || columns.includes(k))) as Row));
    expect([...client.rows('Port').values()].map(norm)).toEqual(want);
  }

  const steps: { desc: string; mutations: unknown[] }[] = [
    { desc: 'set: first element', mutations: [['trunks', 'insert', ovsSet([10])]] },
    { desc: 'set: second element (one-atom diff on a one-element set)', mutations: [['trunks', 'insert', ovsSet([20])]] },
    { desc: 'set: add and remove at once', mutations: [['trunks', 'insert', ovsSet([30])], ['trunks', 'delete', ovsSet([10])]] },
    { desc: 'set: back to one element', mutations: [['trunks', 'delete', ovsSet([20])]] },
    { desc: 'set: empty', mutations: [['trunks', 'delete', ovsSet([30])]] },
    { desc: 'optional: set', mutations: [['tag', 'insert', ovsSet([5])]] },
    { desc: 'optional: cleared', mutations: [['tag', 'delete', ovsSet([5])]] },
    { desc: 'map: add keys', mutations: [['external_ids', 'insert', ovsMap({ a: '1', b: '2' })]] },
    { desc: 'map: remove a key', mutations: [['external_ids', 'delete', ovsSet(['a'])]] },
  ];

  for (const withSchema of [true, false]) {
    it(`applies set, optional and map diffs ${withSchema ? 'with the schema' : 'without get_schema'}`, async () => {
      await setup(withSchema ? { schema: TEST_SCHEMA } : {});
      const id = await port('p1', 'ovnode');
      await client.monitor({ Port: { columns, where: ours } });
      expect(fake.requests.map((r) => r.method)).toContain('monitor_cond');
      expectConverged();
      const relevant = withSchema ? steps : steps.filter((s) => !s.desc.includes('one-atom diff'));
      for (const step of relevant) {
        fake.apply([{ op: 'mutate', table: 'Port', where: [['_uuid', '==', uuid(id)]], mutations: step.mutations }]);
        await settle();
        expectConverged();
      }
    });
  }

  it('applies a map value change (new value for a key present on both sides)', async () => {
    await setup();
    const id = await port('p1', 'ovnode');
    await client.monitor({ Port: { columns, where: ours } });
    fake.apply([{ op: 'update', table: 'Port', where: [], row: { external_ids: ovsMap({ owner: 'ovnode', x: 'y' }) } }]);
    fake.apply([{ op: 'update', table: 'Port', where: [], row: { external_ids: ovsMap({ owner: 'ovnode', x: 'z' }) } }]);
    await settle();
    expect(client.rows('Port').get(id)?.external_ids).toEqual({ owner: 'ovnode', x: 'z' });
  });

  it('sees rows enter and leave the condition as insert and delete', async () => {
    await setup();
    const mine = await port('p1', 'ovnode');
    await port('p2', 'someone-else');
    await client.monitor({ Port: { columns, where: ours } });
    expect([...client.rows('Port').keys()]).toEqual([mine]);
    changes.length = 0;
    fake.apply([{ op: 'update', table: 'Port', where: [['name', '==', 'p2']], row: { external_ids: ovsMap({ owner: 'ovnode' }) } }]);
    fake.apply([{ op: 'update', table: 'Port', where: [['name', '==', 'p1']], row: { external_ids: ovsMap({}) } }]);
    await settle();
    expect(changes.map(([, , o, n]) => [o?.name, n?.name])).toEqual([[undefined, 'p2'], ['p1', undefined]]);
    expectConverged();
  });
});

describe('waitFor', () => {
  const installed = (r: Row): boolean => asMap(r.external_ids)['ovn-installed'] === 'true';

  it('resolves at once with a cached row, or on the update that brings one', async () => {
    await setup();
    insertIface('veth0', { 'ovn-installed': 'true' });
    await client.monitor({ Interface: { columns: ['name', 'external_ids'] } });
    expect((await client.waitFor('Interface', installed)).name).toBe('veth0');

    const p = client.waitFor('Interface', (r) => r.name === 'veth1' && installed(r));
    const id = insertIface('veth1');
    await settle();
    fake.apply([{ op: 'mutate', table: 'Interface', where: [['_uuid', '==', uuid(id)]],
      mutations: [['external_ids', 'insert', ovsMap({ 'ovn-installed': 'true' })]] }]);
    expect(await p).toMatchObject({ _uuid: id, name: 'veth1' });
  });

  it('rejects with the signal reason on abort, before or while waiting', async () => {
    await setup();
    await client.monitor({ Interface: {} });
    const reason = new Error('CNI deadline');
    const ac = new AbortController();
    const p = client.waitFor('Interface', installed, ac.signal);
    ac.abort(reason);
    await expect(p).rejects.toBe(reason);
    await expect(client.waitFor('Interface', installed, ac.signal)).rejects.toBe(reason);
  });

  it('rejects when the predicate throws, and when the client closes', async () => {
    await setup();
    await client.monitor({ Interface: {} });
    const bad = client.waitFor('Interface', () => { throw new Error('boom'); });
    const pending = client.waitFor('Interface', () => false);
    insertIface('x');
    await expect(bad).rejects.toThrow('boom');
    const closed = expect(pending).rejects.toThrow(/closed/);
    await client.close();
    await closed;
  });
});

describe('framing end to end', () => {
  it('reassembles messages the server writes in 3-byte pieces, multibyte and JSON syntax in strings', async () => {
    const push = vi.spyOn(JsonStreamSplitter.prototype, 'push');
    await setup({ schema: TEST_SCHEMA, writeChunkBytes: 3 });
    const ids = { brace: '}{"]', quote: 'a "quoted" \\ value', text: 'héllo 漢字 🚀' };
    const id = insertIface('weird', ids);
    await client.monitor({ Interface: { columns: ['name', 'external_ids'] } });
    expect(client.rows('Interface').get(id)?.external_ids).toEqual(ids);
    fake.apply([{ op: 'update', table: 'Interface', where: [], row: { name: '🚀{"x":"}"}' } }]);
    await settle();
    expect(client.rows('Interface').get(id)?.name).toBe('🚀{"x":"}"}');
    // The pieces really arrived one by one (the fake's own reads add only a handful of calls).
    expect(push.mock.calls.length).toBeGreaterThan(200);
    push.mockRestore();
  });
});
