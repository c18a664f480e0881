// Column shapes from the schema and update2 diff application (ovsdb-server(7) §4.1.14).
import { describe, expect, it } from 'vitest';
import { applyColumnDiff, defaultValue, fillDefaults, parseColumnType, parseSchema, type ColumnType } from '../../../daemon/ovsdb/schema';

describe('parseColumnType', () => {
  const cases: { desc: string; type: unknown; want: ColumnType }[] = [
    { desc: 'atomic type name', type: 'string', want: { kind: 'scalar', key: 'string' } },
    { desc: 'object with defaults min 1 max 1', type: { key: 'integer' }, want: { kind: 'scalar', key: 'integer' } },
    { desc: 'optional', type: { key: { type: 'integer', minInteger: 1 }, min: 0, max: 1 }, want: { kind: 'optional', key: 'integer' } },
    { desc: 'unlimited set', type: { key: 'uuid', min: 0, max: 'unlimited' }, want: { kind: 'set', key: 'uuid' } },
    { desc: 'bounded set', type: { key: 'integer', min: 0, max: 4096 }, want: { kind: 'set', key: 'integer' } },
    { desc: 'map', type: { key: 'string', value: 'string', min: 0, max: 'unlimited' }, want: { kind: 'map', key: 'string' } },
  ];
  for (const c of cases) it(c.desc, () => expect(parseColumnType(c.type)).toEqual(c.want));

  it('parses a database schema', () => {
    const s = parseSchema({ name: 'X', tables: { T: { columns: { a: { type: 'boolean' } } } } });
    expect(s.get('T')?.get('a')).toEqual({ kind: 'scalar', key: 'boolean' });
  });
});

describe('defaults', () => {
  it('gives the decoded default of each shape', () => {
    expect(defaultValue({ kind: 'map', key: 'string' })).toEqual({});
    expect(defaultValue({ kind: 'set', key: 'uuid' })).toEqual([]);
    expect(defaultValue({ kind: 'optional', key: 'integer' })).toEqual([]);
    expect(defaultValue({ kind: 'scalar', key: 'integer' })).toBe(0);
    expect(defaultValue({ kind: 'scalar', key: 'boolean' })).toBe(false);
    expect(defaultValue({ kind: 'scalar', key: 'string' })).toBe('');
  });

  it('fills only monitored columns that are missing', () => {
    const t = new Map<string, ColumnType>([
      ['name', { kind: 'scalar', key: 'string' }],
      ['external_ids', { kind: 'map', key: 'string' }],
      ['ofport', { kind: 'optional', key: 'integer' }],
    ]);
    expect(fillDefaults({ _uuid: 'u', name: 'a' }, t, ['name', 'external_ids'])).toEqual({ _uuid: 'u', name: 'a', external_ids: {} });
    expect(fillDefaults({ _uuid: 'u' }, t)).toEqual({ _uuid: 'u', name: '', external_ids: {}, ofport: [] });
  });
});

describe('applyColumnDiff', () => {
  const set: ColumnType = { kind: 'set', key: 'uuid' };
  const opt: ColumnType = { kind: 'optional', key: 'integer' };
  const map: ColumnType = { kind: 'map', key: 'string' };
  const cases: { desc: string; old: unknown; diff: unknown; col?: ColumnType; want: unknown }[] = [
    { desc: 'set: add to empty', old: [], diff: ['uuid', 'a'], col: set, want: 'a' },
    { desc: 'set: one element gains a second (lone atom diff)', old: 'a', diff: ['uuid', 'b'], col: set, want: ['a', 'b'] },
    { desc: 'set: remove one of two', old: ['a', 'b'], diff: ['uuid', 'a'], col: set, want: 'b' },
    { desc: 'set: add and remove at once', old: ['a', 'b'], diff: ['set', [['uuid', 'b'], ['uuid', 'c']]], col: set, want: ['a', 'c'] },
    { desc: 'set: remove the last', old: 'a', diff: ['uuid', 'a'], col: set, want: [] },
    { desc: 'optional: new value', old: 1, diff: 2, col: opt, want: 2 },
    { desc: 'optional: cleared', old: 1, diff: ['set', []], col: opt, want: [] },
    { desc: 'scalar: new value', old: 'a', diff: 'b', col: { kind: 'scalar', key: 'string' }, want: 'b' },
    {
      desc: 'map: add, change, remove',
      old: { keep: '1', drop: '2', change: '3' },
      diff: ['map', [['drop', '2'], ['change', '4'], ['add', '5']]],
      col: map,
      want: { keep: '1', change: '4', add: '5' },
    },
    { desc: 'map: add to missing column', old: undefined, diff: ['map', [['a', 'b']]], col: map, want: { a: 'b' } },
    // Without a schema the shape is guessed from the values.
    { desc: 'no schema: map diff', old: { a: '1' }, diff: ['map', [['a', '1'], ['b', '2']]], want: { b: '2' } },
    { desc: 'no schema: multi-element set diff', old: ['a', 'b'], diff: ['set', [['uuid', 'a'], ['uuid', 'c']]], want: ['b', 'c'] },
    { desc: 'no schema: lone atom on a multi-element set', old: ['a', 'b'], diff: ['uuid', 'a'], want: 'b' },
    { desc: 'no schema: lone atom equal to the old one removes it', old: 'a', diff: 'a', want: [] },
    { desc: 'no schema: empty set clears', old: 5, diff: ['set', []], want: [] },
    { desc: 'no schema: other lone atom replaces', old: 1, diff: 2, want: 2 },
  ];
  for (const c of cases) it(c.desc, () => expect(applyColumnDiff(c.old, c.diff, c.col)).toEqual(c.want));
});
