// What pure NB/SB planners read from a FakeOvsdbServer, and how their planned operations are
// applied to it in tests (the real schema then enforces references and indexes).
import { afterEach, expect } from 'vitest';
import type { OvsdbClient } from '../../daemon/ovsdb/client';
import type { Operation } from '../../daemon/ovsdb/types';
import type { FakeOvsdbServer } from './fake-ovsdb-server';

export type View = Pick<OvsdbClient, 'rows'>;

/** Decoded rows by UUID, as OvsdbClient.rows() returns them from its cache. */
export const viewOf = (fake: FakeOvsdbServer): View => ({ rows: (t: string) => new Map(fake.rows(t).map((r) => [r._uuid, r])) });

/** Applies the operations and expects every one of them to succeed. */
export function applyOk(fake: FakeOvsdbServer, ops: Operation[]): void {
  const results = fake.apply(ops);
  expect(results.filter((r) => typeof r === 'object' && r !== null && 'error' in r)).toEqual([]);
  expect(results).toHaveLength(ops.length);
}

/** A list the test pushes its fake servers to: each is closed after every test. */
export function closedAfterEach(): FakeOvsdbServer[] {
  const fakes: FakeOvsdbServer[] = [];
  afterEach(async () => {
    for (const f of fakes.splice(0)) await f.close();
  });
  return fakes;
}
