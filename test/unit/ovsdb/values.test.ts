// Wire-value helpers and schema-free decoding (RFC 7047 §5.1).
import { describe, expect, it } from 'vitest';
import {
  asArray, asMap, decodeRow, decodeValue, namedUuid, ovsMap, ovsSet, uuid, valuesEqual,
} from '../../../daemon/ovsdb/values';

describe('encoders', () => {
  it('build the RFC 7047 wire forms', () => {
    expect(ovsMap({ 'iface-id': 'ns_pod', sandbox: 'abc' })).toEqual(['map', [['iface-id', 'ns_pod'], ['sandbox', 'abc']]]);
    expect(ovsMap({})).toEqual(['map', []]);
    expect(ovsSet([1, 2])).toEqual(['set', [1, 2]]);
    expect(ovsSet([])).toEqual(['set', []]);
    expect(uuid('u1')).toEqual(['uuid', 'u1']);
    expect(namedUuid('port')).toEqual(['named-uuid', 'port']);
  });
});

describe('decodeValue', () => {
  const cases: { desc: string; wire: unknown; want: unknown }[] = [
    { desc: 'string atom', wire: 'br-int', want: 'br-int' },
    { desc: 'integer atom', wire: 7, want: 7 },
    { desc: 'boolean atom', wire: false, want: false },
    { desc: 'uuid', wire: ['uuid', 'a-b'], want: 'a-b' },
    { desc: 'named-uuid', wire: ['named-uuid', 'x'], want: 'x' },
    { desc: 'empty set', wire: ['set', []], want: [] },
    { desc: 'set of uuids', wire: ['set', [['uuid', 'a'], ['uuid', 'b']]], want: ['a', 'b'] },
    { desc: 'map', wire: ['map', [['k', 'v'], ['n', 1]]], want: { k: 'v', n: 1 } },
    { desc: 'map with uuid values', wire: ['map', [['p', ['uuid', 'u']]]], want: { p: 'u' } },
    { desc: 'empty map', wire: ['map', []], want: {} },
  ];
  for (const c of cases) it(c.desc, () => expect(decodeValue(c.wire)).toEqual(c.want));

  it('rejects what is not a value', () => {
    expect(() => decodeValue({ a: 1 })).toThrow(/not an OVSDB atom/);
    expect(() => decodeValue(['map', [['only-key']]])).toThrow(/bad map pair/);
  });
});

describe('decodeRow', () => {
  it('decodes every column and adds _uuid, ignoring a wire _uuid', () => {
    const row = decodeRow('r1', {
      _uuid: ['uuid', 'other'],
      name: 'p1',
      interfaces: ['uuid', 'i1'],
      external_ids: ['map', [['a', 'b']]],
      tag: ['set', []],
    });
    expect(row).toEqual({ _uuid: 'r1', name: 'p1', interfaces: 'i1', external_ids: { a: 'b' }, tag: [] });
  });
});

describe('asArray and asMap', () => {
  const cases: { desc: string; v: unknown; array: unknown[] }[] = [
    { desc: 'undefined', v: undefined, array: [] },
    { desc: 'lone atom (one-element set)', v: 'u1', array: ['u1'] },
    { desc: 'array', v: ['a', 'b'], array: ['a', 'b'] },
    { desc: 'empty array', v: [], array: [] },
  ];
  for (const c of cases) it(`asArray: ${c.desc}`, () => expect(asArray(c.v)).toEqual(c.array));

  it('asMap gives {} for anything but a record', () => {
    expect(asMap({ a: 'b' })).toEqual({ a: 'b' });
    expect(asMap(undefined)).toEqual({});
    expect(asMap([])).toEqual({});
  });
});

describe('valuesEqual', () => {
  it('compares structurally, sets in any order', () => {
    expect(valuesEqual({ _uuid: 'u', ports: ['a', 'b'], ids: { k: 'v' } }, { ids: { k: 'v' }, ports: ['b', 'a'], _uuid: 'u' })).toBe(true);
    expect(valuesEqual({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(valuesEqual({ a: 1 }, { b: 1 })).toBe(false);
    expect(valuesEqual(['a', 'a'], ['a', 'b'])).toBe(false);
    expect(valuesEqual([1], ['1'])).toBe(false);
    expect(valuesEqual([], {})).toBe(false);
  });
});
