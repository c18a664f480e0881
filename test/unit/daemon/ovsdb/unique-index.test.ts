// UniqueIndex follows the monitor: rows inserted, renamed, deleted and re-created under the
// same name after the index was built are found (or not) exactly as a scan of the cache would.
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OvsdbClient } from '../../../../daemon/ovsdb/client';
import type { Operation } from '../../../../daemon/ovsdb/types';
import { uuid, type Row } from '../../../../daemon/ovsdb/values';
import { UniqueIndex } from '../../../../daemon/ovsdb/unique-index';
import { byName, startNb, type Nb } from '../policy/helpers';

let env: Nb;
let index: UniqueIndex;

beforeEach(async () => {
  env = await startNb();
  index = new UniqueIndex(env.nb, 'Address_Set');
});

afterEach(async () => {
  index.close();
  await env.close();
});

/** Runs ops and waits until the client's cache reflects `name` as `present`. */
async function change(ops: Operation[], name: string, present: boolean): Promise<void> {
  await env.nb.transact(ops);
  for (let i = 0; i < 200 && (byName(env.nb, 'Address_Set', name) !== undefined) !== present; i++) await new Promise((r) => setTimeout(r, 5));
}

const insert = (name: string): Operation => ({ op: 'insert', table: 'Address_Set', row: { name } });

describe('UniqueIndex', () => {
  it('finds what the cache holds, through inserts, renames, deletes and re-creations', async () => {
    await change([insert('a')], 'a', true);
    expect(index.get('a')?._uuid).toBe(byName(env.nb, 'Address_Set', 'a')?._uuid);
    expect(index.get('b')).toBeUndefined();

    // Built now: later changes come from the monitor's events.
    await change([insert('b')], 'b', true);
    expect(index.get('b')?.name).toBe('b');

    const a = byName(env.nb, 'Address_Set', 'a')?._uuid as string;
    await change([{ op: 'update', table: 'Address_Set', where: [['_uuid', '==', uuid(a)]], row: { name: 'a2' } }], 'a2', true);
    expect(index.get('a')).toBeUndefined();
    expect(index.get('a2')?._uuid).toBe(a);

    await change([{ op: 'delete', table: 'Address_Set', where: [['name', '==', 'b']] }], 'b', false);
    expect(index.get('b')).toBeUndefined();
    await change([insert('b')], 'b', true);
    const b = index.get('b');
    expect(b?._uuid).toBe(byName(env.nb, 'Address_Set', 'b')?._uuid);

    // A row of another table with the same name is not an address set.
    await env.nb.transact([{ op: 'insert', table: 'Port_Group', row: { name: 'pg-only' } }]);
    expect(index.get('pg-only')).toBeUndefined();
  });

  it('a row deleted and a new one inserted under its name in one transaction is the new one', async () => {
    await change([insert('x')], 'x', true);
    const old = index.get('x')?._uuid;
    await env.nb.transact([{ op: 'delete', table: 'Address_Set', where: [['name', '==', 'x']] }, insert('x')]);
    for (let i = 0; i < 200 && byName(env.nb, 'Address_Set', 'x')?._uuid === old; i++) await new Promise((r) => setTimeout(r, 5));
    const now = byName(env.nb, 'Address_Set', 'x')?._uuid;
    expect(now).not.toBe(old);
    expect(index.get('x')?._uuid).toBe(now);
  });

  it('a re-created row reported before the delete of the old one keeps its name', () => {
    // The order of rows within one update is the server's: drive the events by hand.
    const rows = new Map<string, Row>([['old', { _uuid: 'old', name: 'x' }]]);
    const client = Object.assign(new EventEmitter(), { rows: () => rows }) as unknown as OvsdbClient;
    const own = new UniqueIndex(client, 'Address_Set');
    expect(own.get('x')?._uuid).toBe('old');
    const fresh: Row = { _uuid: 'new', name: 'x' };
    rows.set('new', fresh);
    client.emit('change', 'Address_Set', 'new', undefined, fresh);
    rows.delete('old');
    client.emit('change', 'Address_Set', 'old', { _uuid: 'old', name: 'x' }, undefined);
    expect(own.get('x')?._uuid).toBe('new');
    own.close();
  });
});
