// The fake OVSDB server itself: commit semantics (garbage collection of non-root rows, weak
// references, unique indexes, atomicity, monitor updates for what the commit did) and the fault
// injection the rollback tests use, driven through the real OvsdbClient so that each case also
// shows what the client makes of it.
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { isOvnodeError, OvsdbError } from '../../../common/errors';
import { OvsdbClient, type OvsdbClientOptions } from '../../../daemon/ovsdb/client';
import type { Operation } from '../../../daemon/ovsdb/types';
import { asArray, asMap, namedUuid, ovsMap, ovsSet, uuid, type Row } from '../../../daemon/ovsdb/values';
import {
  FakeOvsdbServer, loadSchema, NB_SCHEMA_PATH, OVS_SCHEMA_PATH, schemaOf, TEST_SCHEMA, type FakeOvsdbServerOptions,
} from '../../fakes/fake-ovsdb-server';

const fakes: FakeOvsdbServer[] = [];
const clients: OvsdbClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(fakes.splice(0).map((f) => f.close()));
});

async function start(opts: FakeOvsdbServerOptions): Promise<FakeOvsdbServer> {
  const f = await FakeOvsdbServer.start(opts);
  fakes.push(f);
  return f;
}

async function connect(fake: FakeOvsdbServer, opts: Partial<OvsdbClientOptions> = {}): Promise<OvsdbClient> {
  const c = new OvsdbClient({ socketPath: fake.socketPath, database: fake.database, reconnectDelayMs: 5, ...opts });
  clients.push(c);
  await c.connect();
  return c;
}

type Change = [table: string, uuid: string, old: Row | undefined, new: Row | undefined];
function record(c: OvsdbClient): Change[] {
  const out: Change[] = [];
  c.on('change', (...ch) => out.push(ch));
  return out;
}

const uuidOf = (r: unknown): string => ((r as { uuid: [string, string] }).uuid)[1];
const errorOf = (results: unknown[]): unknown => results.find((r) => typeof r === 'object' && r !== null && 'error' in r);
const names = (f: FakeOvsdbServer, table: string): string[] => f.rows(table).map((r) => r.name as string).sort();
const cachedNames = (c: OvsdbClient, table: string): string[] => [...c.rows(table).values()].map((r) => r.name as string).sort();
/** The settled state of a promise right now (after pending I/O callbacks ran). */
async function state(p: Promise<unknown>): Promise<'pending' | 'resolved' | 'rejected'> {
  const tag = Symbol('pending');
  await new Promise((r) => setImmediate(r));
  return Promise.race([p.then(() => 'resolved' as const, () => 'rejected' as const), Promise.resolve(tag)])
    .then((v) => (v === tag ? 'pending' : v));
}

// Root set: Root, Holder, Single. Kid and Toy live only while strongly referenced.
const GC_SCHEMA = schemaOf('T', {
  Root: { name: 'string', kids: 'set:ref->Kid', watch: 'set:weak->Kid', pin: 'optional:weak->Kid', byKey: 'map:weak->Kid' },
  Holder: { name: 'string', must: 'set1:weak->Kid' },
  Kid: { name: 'string', zone: 'integer', slot: 'integer', toys: 'set:ref->Toy', best: 'optional:ref->Kid' },
  Toy: { name: 'string' },
  Single: { x: 'integer' },
}, {
  roots: ['Root', 'Holder', 'Single'],
  indexes: { Root: [['name']], Kid: [['name'], ['zone', 'slot']] },
  maxRows: { Single: 1 },
});

describe('schemaOf', () => {
  it('writes references, roots, indexes and maxRows in RFC 7047 form', () => {
    const t = (GC_SCHEMA as { tables: Record<string, { isRoot?: boolean; indexes?: unknown; maxRows?: number; columns: Record<string, { type: unknown }> }> }).tables;
    expect(t.Root?.isRoot).toBe(true);
    expect(t.Kid?.isRoot).toBeUndefined();
    expect(t.Kid?.indexes).toEqual([['name'], ['zone', 'slot']]);
    expect(t.Single?.maxRows).toBe(1);
    expect(t.Root?.columns.kids?.type).toEqual({ key: { type: 'uuid', refTable: 'Kid' }, min: 0, max: 'unlimited' });
    expect(t.Root?.columns.pin?.type).toEqual({ key: { type: 'uuid', refTable: 'Kid', refType: 'weak' }, min: 0, max: 1 });
    expect(t.Root?.columns.byKey?.type).toEqual({ key: 'string', value: { type: 'uuid', refTable: 'Kid', refType: 'weak' }, min: 0, max: 'unlimited' });
    expect(t.Holder?.columns.must?.type).toEqual({ key: { type: 'uuid', refTable: 'Kid', refType: 'weak' }, min: 1, max: 'unlimited' });
    expect(t.Root?.columns.name?.type).toBe('string');
  });
});

/** A root row "r" with kids k1..kN (zone 0, slot i), each referenced strongly from r.kids. */
function rootWithKids(n: number, extra: Record<string, unknown> = {}): unknown[] {
  const kids = Array.from({ length: n }, (_, i) => `k${i + 1}`);
  return [
    { op: 'insert', table: 'Root', row: { name: 'r', kids: ovsSet(kids.map(namedUuid)), ...extra } },
    ...kids.map((k, i) => ({ op: 'insert', table: 'Kid', 'uuid-name': k, row: { name: k, slot: i + 1 } })),
  ];
}

const kidUuid = (f: FakeOvsdbServer, name: string): string => f.rows('Kid').find((r) => r.name === name)?._uuid as string;
const dropKid = (f: FakeOvsdbServer, name: string): unknown[] =>
  f.apply([{ op: 'mutate', table: 'Root', where: [['name', '==', 'r']], mutations: [['kids', 'delete', uuid(kidUuid(f, name))]] }]);

describe('garbage collection (non-root tables)', () => {
  it('collects a row nobody references at the commit that inserted it; monitors never see it', async () => {
    const fake = await start({ database: 'T', schema: GC_SCHEMA });
    const client = await connect(fake);
    await client.monitor({ Kid: { columns: ['name'] } });
    const seen = record(client);
    const res = fake.apply([
      { op: 'insert', table: 'Kid', row: { name: 'orphan' } },
      // Inside the transaction the row is still there (collection happens at commit).
      { op: 'select', table: 'Kid', where: [['name', '==', 'orphan']], columns: ['name'] },
    ]);
    expect(errorOf(res)).toBeUndefined();
    expect(uuidOf(res[0])).toMatch(/^[0-9a-f-]{36}$/);
    expect(res[1]).toEqual({ rows: [{ name: 'orphan' }] });
    expect(fake.rows('Kid')).toEqual([]);
    await client.echo();
    expect(seen).toEqual([]);
  });

  it('deletes a row when its last strong reference goes, cascading; monitors get the deletes', async () => {
    const fake = await start({ database: 'T', schema: GC_SCHEMA });
    fake.apply([
      ...rootWithKids(2),
      { op: 'insert', table: 'Toy', 'uuid-name': 't1', row: { name: 'ball' } },
      { op: 'mutate', table: 'Kid', where: [['name', '==', 'k1']], mutations: [['toys', 'insert', namedUuid('t1')]] },
    ]);
    expect(names(fake, 'Kid')).toEqual(['k1', 'k2']);
    const client = await connect(fake);
    await client.monitor({ Kid: { columns: ['name'] } });
    await client.monitor({ Toy: { columns: ['name'], where: [] } }); // update2
    const seen = record(client);

    expect(errorOf(dropKid(fake, 'k1'))).toBeUndefined();
    expect(names(fake, 'Kid')).toEqual(['k2']);
    expect(fake.rows('Toy')).toEqual([]); // only k1 held it
    await client.echo();
    expect(seen.map(([t, , o, n]) => [t, o?.name, n?.name]).sort()).toEqual([['Kid', 'k1', undefined], ['Toy', 'ball', undefined]]);
    expect(cachedNames(client, 'Kid')).toEqual(['k2']);
    expect(client.rows('Toy').size).toBe(0);
  });

  it('keeps a row another row still references, and does not count self-references', async () => {
    const fake = await start({ database: 'T', schema: GC_SCHEMA });
    fake.apply([
      ...rootWithKids(2),
      { op: 'insert', table: 'Toy', 'uuid-name': 't', row: { name: 'shared' } },
      { op: 'mutate', table: 'Kid', where: [], mutations: [['toys', 'insert', namedUuid('t')]] },
    ]);
    dropKid(fake, 'k1');
    expect(names(fake, 'Toy')).toEqual(['shared']); // k2 still holds it
    const k2 = kidUuid(fake, 'k2');
    fake.apply([{ op: 'update', table: 'Kid', where: [['name', '==', 'k2']], row: { best: uuid(k2) } }]);
    dropKid(fake, 'k2');
    expect(fake.rows('Kid')).toEqual([]); // its reference to itself kept nothing alive
    expect(fake.rows('Toy')).toEqual([]);
  });

  it('refuses a strong reference to a missing row and the deletion of a referenced row', async () => {
    const fake = await start({ database: 'T', schema: GC_SCHEMA });
    fake.apply(rootWithKids(1));
    const dangling = '00000000-0000-0000-0000-000000000001';
    const bad = fake.apply([{ op: 'mutate', table: 'Root', where: [], mutations: [['kids', 'insert', uuid(dangling)]] }]);
    expect(bad[1]).toEqual({
      error: 'referential integrity violation',
      details: expect.stringMatching(new RegExp(`^Table Root column kids row [0-9a-f-]+ references nonexistent row ${dangling} in table Kid\\.$`)),
    });
    const k1 = kidUuid(fake, 'k1');
    const del = fake.apply([{ op: 'delete', table: 'Kid', where: [['name', '==', 'k1']] }]);
    expect(del).toEqual([{ count: 1 }, { error: 'referential integrity violation', details: `cannot delete Kid row ${k1} because of 1 remaining reference(s)` }]);
    expect(names(fake, 'Kid')).toEqual(['k1']);
    // Unlinking and deleting in one transaction is fine (what deleteLsps does).
    const both = fake.apply([
      { op: 'mutate', table: 'Root', where: [], mutations: [['kids', 'delete', uuid(k1)]] },
      { op: 'delete', table: 'Kid', where: [['_uuid', '==', uuid(k1)]] },
    ]);
    expect(both).toEqual([{ count: 1 }, { count: 1 }]);
    expect(fake.rows('Kid')).toEqual([]);
  });

  it('makes every table a root when the schema marks none (TEST_SCHEMA, schemaOf without roots)', async () => {
    const fake = await start({ schema: TEST_SCHEMA });
    fake.apply([{ op: 'insert', table: 'Port', row: { name: 'p' } }]);
    expect(names(fake, 'Port')).toEqual(['p']);
  });
});

describe('weak references', () => {
  it('removes references to a deleted row from sets, optional columns and map values; monitors get the modify', async () => {
    const fake = await start({ database: 'T', schema: GC_SCHEMA });
    fake.apply(rootWithKids(3, {
      watch: ovsSet([namedUuid('k1'), namedUuid('k2')]), pin: namedUuid('k1'), byKey: ['map', [['a', namedUuid('k1')], ['b', namedUuid('k3')]]],
    }));
    const [k2, k3] = [kidUuid(fake, 'k2'), kidUuid(fake, 'k3')];
    const client = await connect(fake);
    await client.monitor({ Root: { columns: ['watch', 'pin', 'byKey'] } });
    const seen = record(client);

    dropKid(fake, 'k1');
    expect(fake.rows('Root')[0]).toMatchObject({ watch: k2, pin: [], byKey: { b: k3 } });
    await client.echo();
    const [root] = [...client.rows('Root').values()];
    expect(root).toMatchObject({ watch: k2, pin: [], byKey: { b: k3 } });
    // One modify of Root for the kids mutation and the weak references it emptied.
    expect(seen.filter(([t]) => t === 'Root')).toHaveLength(1);
  });

  it('drops references to rows that never existed at commit, silently', async () => {
    const fake = await start({ database: 'T', schema: GC_SCHEMA });
    fake.apply(rootWithKids(1));
    const k1 = kidUuid(fake, 'k1');
    const res = fake.apply([{ op: 'mutate', table: 'Root', where: [], mutations: [['watch', 'insert', ovsSet([uuid(k1), uuid('00000000-0000-0000-0000-00000000000f')])]] }]);
    expect(res).toEqual([{ count: 1 }]);
    expect(fake.rows('Root')[0]?.watch).toEqual(k1);
  });

  it('fails the commit when removing them leaves a column below its minimum, and changes nothing', async () => {
    const fake = await start({ database: 'T', schema: GC_SCHEMA });
    fake.apply([...rootWithKids(2), { op: 'insert', table: 'Holder', row: { name: 'h', must: namedUuid('k1') } }]);
    const client = await connect(fake);
    await client.monitor({ Kid: { columns: ['name'] }, Holder: { columns: ['must'] } });
    const seen = record(client);
    const k1 = kidUuid(fake, 'k1');

    const res = dropKid(fake, 'k1');
    expect(res[1]).toEqual({
      error: 'constraint violation',
      details: expect.stringMatching(/^Deletion of 1 weak reference\(s\) to deleted \(or never-existing\) rows from column "must" in "Holder" row [0-9a-f-]+ caused this column to become empty/),
    });
    expect(names(fake, 'Kid')).toEqual(['k1', 'k2']);
    expect(fake.rows('Holder')[0]?.must).toEqual(k1);
    // A min-1 weak column defaults to the all-zeros UUID, which is removed at once.
    const bare = fake.apply([{ op: 'insert', table: 'Holder', row: { name: 'h2' } }]);
    expect(errorOf(bare)).toEqual({ error: 'constraint violation', details: expect.stringContaining('contained all-zeros UUID') });
    await client.echo();
    expect(seen).toEqual([]);
  });
});

describe('unique indexes', () => {
  it('refuses two inserted rows with the same name, committing nothing', async () => {
    const fake = await start({ database: 'T', schema: GC_SCHEMA });
    fake.apply(rootWithKids(1));
    const client = await connect(fake);
    await client.monitor({ Kid: { columns: ['name'] } });
    const seen = record(client);
    const err = await client.transact([
      { op: 'insert', table: 'Kid', 'uuid-name': 'a', row: { name: 'dup', slot: 10 } },
      { op: 'insert', table: 'Kid', 'uuid-name': 'b', row: { name: 'dup', slot: 11 } },
      { op: 'mutate', table: 'Root', where: [], mutations: [['kids', 'insert', ovsSet([namedUuid('a'), namedUuid('b')])]] },
    ]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OvsdbError);
    expect((err as Error).message).toMatch(
      /^OVSDB transaction failed at commit: constraint violation: Transaction causes multiple rows in "Kid" table to have identical values \(dup\) for index on column "name"\.  First row, with UUID \S+, was inserted by this transaction\.  Second row, with UUID \S+, was inserted by this transaction\.$/,
    );
    expect(names(fake, 'Kid')).toEqual(['k1']);
    await client.echo();
    expect(seen).toEqual([]);
  });

  it('refuses a row that takes an existing row\'s name or composite key', async () => {
    const fake = await start({ database: 'T', schema: GC_SCHEMA });
    fake.apply(rootWithKids(2));
    const add = (row: Record<string, unknown>): unknown[] => fake.apply([
      { op: 'insert', table: 'Kid', 'uuid-name': 'n', row },
      { op: 'mutate', table: 'Root', where: [], mutations: [['kids', 'insert', namedUuid('n')]] },
    ]);
    expect(errorOf(add({ name: 'k1', slot: 9 }))).toEqual({
      error: 'constraint violation',
      details: expect.stringContaining('existed in the database before this transaction and was not modified by the transaction.'),
    });
    expect(errorOf(add({ name: 'other', slot: 2 }))).toEqual({
      error: 'constraint violation',
      details: expect.stringContaining('identical values (0 and 2) for index on columns "zone" and "slot"'),
    });
    expect(errorOf(add({ name: 'other', zone: 1, slot: 2 }))).toBeUndefined(); // same slot, other zone
    const renamed = fake.apply([{ op: 'update', table: 'Kid', where: [['name', '==', 'k2']], row: { name: 'k1' } }]);
    expect(errorOf(renamed)).toEqual({ error: 'constraint violation', details: expect.stringContaining('had the following index values before the transaction: k2.') });
    expect(names(fake, 'Kid')).toEqual(['k1', 'k2', 'other']);
  });

  it('checks after garbage collection: replacing a row by name in one transaction works, collected rows never clash', async () => {
    const fake = await start({ database: 'T', schema: GC_SCHEMA });
    fake.apply(rootWithKids(1));
    const old = kidUuid(fake, 'k1');
    // The stale-port replacement of attachPort: unlink the old row, insert its successor.
    const res = fake.apply([
      { op: 'mutate', table: 'Root', where: [], mutations: [['kids', 'delete', uuid(old)]] },
      { op: 'insert', table: 'Kid', 'uuid-name': 'new', row: { name: 'k1', slot: 1 } },
      { op: 'mutate', table: 'Root', where: [], mutations: [['kids', 'insert', namedUuid('new')]] },
    ]);
    expect(errorOf(res)).toBeUndefined();
    expect(fake.rows('Kid').map((r) => [r.name, r._uuid])).toEqual([['k1', uuidOf(res[1])]]);
    const orphans = fake.apply([
      { op: 'insert', table: 'Kid', row: { name: 'o', slot: 5 } },
      { op: 'insert', table: 'Kid', row: { name: 'o', slot: 5 } },
    ]);
    expect(errorOf(orphans)).toBeUndefined();
    expect(names(fake, 'Kid')).toEqual(['k1']);
  });

  it('enforces maxRows', async () => {
    const fake = await start({ database: 'T', schema: GC_SCHEMA });
    const res = fake.apply([{ op: 'insert', table: 'Single', row: {} }, { op: 'insert', table: 'Single', row: {} }]);
    expect(res[2]).toEqual({
      error: 'constraint violation',
      details: 'transaction causes "Single" table to contain 2 rows, greater than the schema-defined limit of 1 row(s)',
    });
    expect(fake.rows('Single')).toEqual([]);
  });
});

describe('atomicity', () => {
  it('commits nothing and notifies nobody when any operation fails, however late', async () => {
    const fake = await start({ schema: TEST_SCHEMA });
    const client = await connect(fake);
    await client.monitor({ Bridge: { columns: ['name'] } });
    const seen = record(client);
    const failing: Operation[][] = [
      [{ op: 'insert', table: 'Bridge', row: { name: 'b1' } }, { op: 'insert', table: 'Nope', row: {} }],
      [{ op: 'insert', table: 'Bridge', row: { name: 'b1' } }, { op: 'insert', table: 'Bridge', row: { nope: 1 } } as unknown as Operation],
      [{ op: 'insert', table: 'Bridge', row: { name: 'b1' } }, { op: 'abort' }],
      [{ op: 'insert', table: 'Bridge', row: { name: 'b1' }, 'uuid-name': 'x' }, { op: 'insert', table: 'Bridge', row: { name: 'b2' }, 'uuid-name': 'x' }],
      [{ op: 'insert', table: 'Bridge', row: { name: 'b1', fail_mode: ovsSet(['a', 'b']) } }],
      [{ op: 'insert', table: 'Bridge', row: { name: 'b1' } }, { op: 'mutate', table: 'Port', where: [], mutations: [['tag', 'insert', ovsSet([1, 2])]] }],
    ];
    fake.apply([{ op: 'insert', table: 'Port', row: { name: 'p' } }]);
    const errors: string[] = [];
    for (const ops of failing) errors.push(await client.transact(ops).then(() => 'committed', (e: Error) => e.message));
    expect(errors).toEqual([
      'OVSDB transaction failed at operation 1 (insert Nope): syntax error: No table named Nope.',
      'OVSDB transaction failed at operation 1 (insert Bridge): unknown column: No column nope in table Bridge.',
      'OVSDB transaction failed at operation 1 (abort): aborted: aborted by request',
      'OVSDB transaction failed at operation 1 (insert Bridge): duplicate uuid-name: This "uuid-name" appeared on an earlier "insert" operation.',
      'OVSDB transaction failed at operation 0 (insert Bridge): syntax error: set must have 0 to 1 members but 2 are present',
      expect.stringMatching(/^OVSDB transaction failed at operation 1 \(mutate Port\): constraint violation: Attempted to store 2 elements/),
    ]);
    expect(fake.rows('Bridge')).toEqual([]);
    expect(fake.rows('Port')[0]?.tag).toEqual([]);
    await client.echo();
    expect(seen).toEqual([]);
  });

  it('sends one update per committed transaction to every monitoring client', async () => {
    const fake = await start({ schema: TEST_SCHEMA });
    const [a, b] = [await connect(fake), await connect(fake)];
    await a.monitor({ Bridge: { columns: ['name'] } });
    await b.monitor({ Bridge: { columns: ['name'], where: [] } });
    const [seenA, seenB] = [record(a), record(b)];
    await a.transact([{ op: 'insert', table: 'Bridge', row: { name: 'b1' } }, { op: 'insert', table: 'Bridge', row: { name: 'b2' } }]);
    await b.echo();
    expect(seenA.map(([, , , n]) => n?.name).sort()).toEqual(['b1', 'b2']);
    expect(seenB.map(([, , , n]) => n?.name).sort()).toEqual(['b1', 'b2']);
    expect(cachedNames(b, 'Bridge')).toEqual(['b1', 'b2']);
  });
});

describe('the real OVN_Northbound schema (installed by scripts/install-deps.sh)', () => {
  async function nb(): Promise<{ fake: FakeOvsdbServer; client: OvsdbClient }> {
    const fake = await start({ database: 'OVN_Northbound', schema: loadSchema(NB_SCHEMA_PATH) });
    fake.apply([{ op: 'insert', table: 'Logical_Switch', row: { name: 'ovn-default' } }]);
    const client = await connect(fake);
    await client.monitor({ Logical_Switch: { columns: ['name', 'ports'] }, Logical_Switch_Port: { columns: ['name'] }, Port_Group: { columns: ['name', 'ports'] } });
    return { fake, client };
  }
  const addLsp = (name: string, ref = 'lsp'): Operation[] => [
    { op: 'insert', table: 'Logical_Switch_Port', 'uuid-name': ref, row: { name } },
    { op: 'mutate', table: 'Logical_Switch', where: [['name', '==', 'ovn-default']], mutations: [['ports', 'insert', ovsSet([namedUuid(ref)])]] },
  ];

  it('refuses two Logical_Switch_Port rows with one name', async () => {
    const { fake, client } = await nb();
    await client.transact(addLsp('pod.ns'));
    await expect(client.transact(addLsp('pod.ns'))).rejects.toThrow(
      /failed at commit: constraint violation: Transaction causes multiple rows in "Logical_Switch_Port" table to have identical values \(pod\.ns\) for index on column "name"/,
    );
    expect(names(fake, 'Logical_Switch_Port')).toEqual(['pod.ns']);
  });

  it('drops an LSP unlinked from its switch, and its Port_Group membership (weak) with it', async () => {
    const { fake, client } = await nb();
    const [lsp] = await client.transact([...addLsp('pod.ns'), { op: 'insert', table: 'Port_Group', row: { name: 'pg', ports: namedUuid('lsp') } }]);
    const id = (lsp?.uuid as [string, string])[1];
    await client.echo();
    expect(asArray([...client.rows('Port_Group').values()][0]?.ports)).toEqual([id]);
    const seen = record(client);
    await client.transact([{ op: 'mutate', table: 'Logical_Switch', where: [['name', '==', 'ovn-default']], mutations: [['ports', 'delete', ovsSet([uuid(id)])]] }]);
    expect(fake.rows('Logical_Switch_Port')).toEqual([]);
    expect(fake.rows('Port_Group')[0]?.ports).toEqual([]);
    await client.echo();
    expect(seen.map(([t, , o, n]) => [t, o !== undefined, n !== undefined]).sort()).toEqual([
      ['Logical_Switch', true, true], ['Logical_Switch_Port', true, false], ['Port_Group', true, true],
    ]);
    expect(client.rows('Logical_Switch_Port').size).toBe(0);
    expect(asArray([...client.rows('Port_Group').values()][0]?.ports)).toEqual([]);
  });

  it('drops an LSP inserted without a switch (the real server does too)', async () => {
    const { fake, client } = await nb();
    const [res] = await client.transact([{ op: 'insert', table: 'Logical_Switch_Port', row: { name: 'lost' } }]);
    expect(res?.uuid).toBeDefined();
    expect(fake.rows('Logical_Switch_Port')).toEqual([]);
  });
});

describe('the real Open_vSwitch schema (installed by scripts/install-deps.sh)', () => {
  async function ovs(): Promise<FakeOvsdbServer> {
    const fake = await start({ database: 'Open_vSwitch', schema: loadSchema(OVS_SCHEMA_PATH) });
    const res = fake.apply([
      { op: 'insert', table: 'Open_vSwitch', row: { bridges: namedUuid('br') } },
      { op: 'insert', table: 'Bridge', 'uuid-name': 'br', row: { name: 'br-int' } },
    ]);
    expect(errorOf(res)).toBeUndefined();
    return fake;
  }
  const attach = (name: string): unknown[] => [
    { op: 'insert', table: 'Interface', 'uuid-name': 'i', row: { name } },
    { op: 'insert', table: 'Port', 'uuid-name': 'p', row: { name, interfaces: namedUuid('i') } },
    { op: 'mutate', table: 'Bridge', where: [['name', '==', 'br-int']], mutations: [['ports', 'insert', namedUuid('p')]] },
  ];

  it('collects Port and Interface with the bridge reference, refuses a second Port of one name', async () => {
    const fake = await ovs();
    expect(errorOf(fake.apply(attach('veth1')))).toBeUndefined();
    expect(errorOf(fake.apply(attach('veth1')))).toEqual({ error: 'constraint violation', details: expect.stringContaining('identical values (veth1) for index on column "name"') });
    const port = fake.rows('Port')[0]?._uuid as string;
    fake.apply([{ op: 'mutate', table: 'Bridge', where: [['name', '==', 'br-int']], mutations: [['ports', 'delete', uuid(port)]] }]);
    expect(fake.rows('Port')).toEqual([]);
    expect(fake.rows('Interface')).toEqual([]);
  });

  it('refuses a Port without interfaces (min 1: the default is a reference to nothing) and renaming one', async () => {
    const fake = await ovs();
    const res = fake.apply([{ op: 'insert', table: 'Port', row: { name: 'p' } }]);
    expect(errorOf(res)).toEqual({ error: 'referential integrity violation', details: expect.stringContaining('references nonexistent row 00000000-0000-0000-0000-000000000000 in table Interface') });
    fake.apply(attach('veth1'));
    expect(errorOf(fake.apply([{ op: 'update', table: 'Port', where: [], row: { name: 'x' } }])))
      .toEqual({ error: 'constraint violation', details: 'Cannot update immutable column name in table Port.' });
  });
});

// ---- fault injection, through the real client ----

const bridge = (name: string, comment = `add ${name}`): Operation[] => [
  { op: 'insert', table: 'Bridge', row: { name, external_ids: ovsMap({ owner: 'test' }) } },
  { op: 'comment', comment },
];

async function faulty(opts: Partial<OvsdbClientOptions> = {}): Promise<{ fake: FakeOvsdbServer; client: OvsdbClient }> {
  const fake = await start({ schema: TEST_SCHEMA });
  const client = await connect(fake, opts);
  await client.monitor({ Bridge: { columns: ['name', 'external_ids'] } });
  return { fake, client };
}

describe('faults', () => {
  it('commit-then-drop-reply: committed, the monitor update arrives, the transact stays pending until the client gives up', async () => {
    const { fake, client } = await faulty({ replyTimeoutMs: 400 });
    const fault = fake.faults.next({ kind: 'commit-then-drop-reply' });
    const p = client.transact(bridge('b1'));
    const row = await client.waitFor('Bridge', (r) => r.name === 'b1');
    expect(asMap(row.external_ids)).toEqual({ owner: 'test' });
    expect(await fault.fired).toMatchObject({ committed: true, results: [{ uuid: ['uuid', row._uuid] }, {}] });
    await client.echo(); // the connection still works...
    expect(await state(p)).toBe('pending'); // ...but this reply never comes
    const reconnected = once(client, 'reconnect');
    // The client's reply timeout recycles the connection: the outcome is unknown to it.
    const err = await p.catch((e: unknown) => e);
    expect(isOvnodeError(err) && [err.name, err.code, err.cniCode, err.message])
      .toEqual(['OvsdbOutcomeUnknownError', 'OVNODE_OVSDB_OUTCOME_UNKNOWN', 11, 'transact: connection closed before the reply']);
    await reconnected;
    expect(cachedNames(client, 'Bridge')).toEqual(['b1']);
    expect(fake.faults.armed).toBe(0);
  });

  it('commit-then-disconnect: committed, the transact rejects at once as outcome unknown, the resync shows the row', async () => {
    const { fake, client } = await faulty();
    const seen = record(client);
    const fault = fake.faults.next({ kind: 'commit-then-disconnect' });
    const disconnected = once(client, 'disconnected');
    const reconnected = once(client, 'reconnect');
    const err = await client.transact(bridge('b1')).catch((e: unknown) => e);
    expect(isOvnodeError(err) && [err.name, err.message, err.cause]).toEqual(['OvsdbOutcomeUnknownError', 'transact: connection closed before the reply', undefined]);
    expect((await fault.fired).committed).toBe(true);
    expect(names(fake, 'Bridge')).toEqual(['b1']);
    await disconnected;
    // Nothing about the transaction reached this connection before the cut.
    expect(seen).toEqual([]);
    expect(client.rows('Bridge').size).toBe(0);
    // While it is away, nothing is sent.
    await expect(client.transact(bridge('b2'))).rejects.toMatchObject({ name: 'OvsdbUnavailableError' });
    await reconnected;
    expect(cachedNames(client, 'Bridge')).toEqual(['b1']);
    expect(seen.map(([, , o, n]) => [o, n?.name])).toEqual([[undefined, 'b1']]);
  });

  it('disconnect-before-commit: nothing committed, the same outcome-unknown error', async () => {
    const { fake, client } = await faulty();
    const fault = fake.faults.next({ kind: 'disconnect-before-commit' });
    const reconnected = once(client, 'reconnect');
    const err = await client.transact(bridge('b1')).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'OvsdbOutcomeUnknownError', message: 'transact: connection closed before the reply' });
    expect(await fault.fired).toEqual({ request: expect.objectContaining({ tables: ['Bridge'] }), committed: false, results: undefined });
    await reconnected;
    expect(fake.rows('Bridge')).toEqual([]);
    expect(client.rows('Bridge').size).toBe(0);
    await client.transact(bridge('b1')); // the next transact is not affected
    expect(names(fake, 'Bridge')).toEqual(['b1']);
  });

  it('drop-request: nothing committed, no reply; the client recycles the connection after its reply timeout', async () => {
    const { fake, client } = await faulty({ replyTimeoutMs: 300 });
    fake.faults.next({ kind: 'drop-request' });
    const p = client.transact(bridge('b1'));
    await client.echo();
    expect(await state(p)).toBe('pending');
    await expect(p).rejects.toMatchObject({ name: 'OvsdbOutcomeUnknownError' });
    expect(fake.rows('Bridge')).toEqual([]);
  });

  it('fail-commit: the operations run, the commit fails with the given error, nothing changes', async () => {
    const { fake, client } = await faulty();
    const fault = fake.faults.next({ kind: 'fail-commit', error: 'constraint violation', details: 'injected' });
    const err = await client.transact(bridge('b1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OvsdbError);
    expect((err as Error).message).toBe('OVSDB transaction failed at commit: constraint violation: injected');
    expect((await fault.fired).committed).toBe(false);
    expect(fake.rows('Bridge')).toEqual([]);
    expect(client.connected).toBe(true);
  });

  it('delay-reply: committed at once, replied later', async () => {
    const { fake, client } = await faulty();
    fake.faults.next({ kind: 'delay-reply', ms: 200 });
    const t0 = Date.now();
    const p = client.transact(bridge('b1'));
    await client.waitFor('Bridge', (r) => r.name === 'b1');
    expect(await state(p)).toBe('pending');
    await p;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
  });

  it('hold (before-reply): the test decides when the committed transaction is answered', async () => {
    const { fake, client } = await faulty();
    const gate = fake.faults.hold({ table: 'Bridge', op: 'insert' });
    const p = client.transact(bridge('b1'));
    const held = await gate.reached;
    expect(held.committed).toBe(true);
    expect(names(fake, 'Bridge')).toEqual(['b1']);
    await client.transact([{ op: 'comment', comment: 'other requests go on meanwhile' }]);
    expect(await state(p)).toBe('pending');
    gate.release();
    const [res] = await p;
    expect(res?.uuid?.[1]).toBe(fake.rows('Bridge')[0]?._uuid);
    expect((await gate.done).committed).toBe(true);
  });

  it('hold (before-commit): nothing committed until release; disconnect() cuts it off uncommitted', async () => {
    const { fake, client } = await faulty();
    const first = fake.faults.hold(undefined, { at: 'before-commit' });
    const p1 = client.transact(bridge('b1'));
    expect((await first.reached).committed).toBe(false);
    expect(fake.rows('Bridge')).toEqual([]);
    first.release();
    await p1;
    expect(names(fake, 'Bridge')).toEqual(['b1']);

    const second = fake.faults.hold(undefined, { at: 'before-commit' });
    const p2 = client.transact(bridge('b2'));
    await second.reached;
    const reconnected = once(client, 'reconnect');
    second.disconnect();
    await expect(p2).rejects.toMatchObject({ name: 'OvsdbOutcomeUnknownError' });
    expect(await second.done).toMatchObject({ committed: false });
    await reconnected;
    expect(names(fake, 'Bridge')).toEqual(['b1']);

    // Released after its connection died: never run, as ovsdb-server drops a closed session's requests.
    const third = fake.faults.hold(undefined, { at: 'before-commit' });
    const p3 = client.transact(bridge('b3'));
    await third.reached;
    fake.dropConnections();
    await expect(p3).rejects.toMatchObject({ name: 'OvsdbOutcomeUnknownError' });
    third.release();
    expect(await third.done).toMatchObject({ committed: false, results: undefined });
    expect(names(fake, 'Bridge')).toEqual(['b1']);
  });

  it('hold (before-reply) + disconnect(): committed, then cut — commit-then-disconnect at a moment the test picks', async () => {
    const { fake, client } = await faulty();
    const gate = fake.faults.hold();
    const p = client.transact(bridge('b1'));
    await gate.reached;
    await client.waitFor('Bridge', (r) => r.name === 'b1'); // this connection saw the update
    gate.disconnect();
    await expect(p).rejects.toMatchObject({ name: 'OvsdbOutcomeUnknownError' });
    expect(names(fake, 'Bridge')).toEqual(['b1']);
  });

  it('applies only to matching transacts, as many times as asked, until cancelled', async () => {
    const { fake, client } = await faulty();
    const byComment = fake.faults.next({ kind: 'fail-commit', match: { comment: /^add b-bad/ }, times: 2 });
    const byPredicate = fake.faults.next({ kind: 'fail-commit', details: 'predicate', match: (req) => req.ops.some((o) => o.op === 'insert' && o.row.name === 'b-pred') });
    const never = fake.faults.next({ kind: 'disconnect-before-commit', match: { table: 'Interface' } });
    expect(fake.faults.armed).toBe(3);

    await client.transact(bridge('b-ok'));
    await expect(client.transact(bridge('b-bad1'))).rejects.toThrow(/at commit: fake failure: injected by the test/);
    await expect(client.transact(bridge('b-bad2'))).rejects.toThrow(/at commit/);
    await client.transact(bridge('b-bad3')); // used up
    await expect(client.transact(bridge('b-pred'))).rejects.toThrow(/at commit: fake failure: predicate/);
    expect(byComment.outcomes.map((o) => o.request.ops[0])).toMatchObject([{ row: { name: 'b-bad1' } }, { row: { name: 'b-bad2' } }]);
    expect(byPredicate.outcomes).toHaveLength(1);
    never.cancel();
    expect(fake.faults.armed).toBe(0);
    await client.transact([{ op: 'insert', table: 'Interface', row: { name: 'i' } }]);
    expect(names(fake, 'Bridge')).toEqual(['b-bad3', 'b-ok']);
  });

  it('keeps failNextTransaction and stallNextTransaction as shorthands', async () => {
    const { fake, client } = await faulty({ replyTimeoutMs: 80 });
    fake.failNextTransaction('referential integrity violation', 'dangling');
    await expect(client.transact(bridge('b1'))).rejects.toThrow(/at commit: referential integrity violation: dangling/);
    fake.stallNextTransaction();
    await expect(client.transact(bridge('b1'))).rejects.toMatchObject({ name: 'OvsdbOutcomeUnknownError' });
    expect(fake.rows('Bridge')).toEqual([]);
  });

  it('leaves apply() alone: faults are for client requests only', async () => {
    const { fake } = await faulty();
    fake.faults.next({ kind: 'disconnect-before-commit' });
    fake.apply(bridge('b1'));
    expect(names(fake, 'Bridge')).toEqual(['b1']);
    expect(fake.faults.armed).toBe(1);
  });
});
