// OVSDB wire values (RFC 7047 §5.1) and their decoded, caller-friendly form. Decoding is
// schema-free: a value is decoded from its own wire shape, so a one-element set (which the
// server sends as the bare atom, §5.1) decodes to that atom; asArray() papers over it.

/** <atom>: a scalar, or a UUID as ["uuid", ...] / ["named-uuid", ...] (RFC 7047 §5.1). */
export type Atom = string | number | boolean | ['uuid', string] | ['named-uuid', string];
/** <value>: an atom, a <set> or a <map> (RFC 7047 §5.1). */
export type Value = Atom | ['set', Atom[]] | ['map', [Atom, Atom][]];

/** A decoded atom: UUIDs become their string form. */
export type DecodedAtom = string | number | boolean;
/** A decoded map column, keys stringified. */
export type DecodedMap = Record<string, DecodedAtom>;

/** A decoded row: maps are records, sets arrays, UUIDs strings; the row's own UUID is `_uuid`. */
export type Row = Record<string, unknown> & { _uuid: string };

/** Encodes a string-to-string map column value (external_ids, options, other_config...). */
export function ovsMap(o: Record<string, string>): Value {
  return ['map', Object.entries(o).map(([k, v]): [Atom, Atom] => [k, v])];
}

/** Encodes a set column value; `["set", [x]]` is as valid as the bare `x` (RFC 7047 §5.1). */
export function ovsSet(a: readonly Atom[]): Value {
  return ['set', [...a]];
}

/** A reference to an existing row. */
export function uuid(u: string): Atom {
  return ['uuid', u];
}

/** A reference to a row inserted earlier or later in the same transaction by its uuid-name (§5.1). */
export function namedUuid(n: string): Atom {
  return ['named-uuid', n];
}

/** True for a 2-element array whose first member is the given tag. */
function isTagged(v: unknown, tag: string): v is [string, unknown] {
  return Array.isArray(v) && v.length === 2 && v[0] === tag;
}

/** Decodes one atom; UUID references become plain strings. */
export function decodeAtom(v: unknown): DecodedAtom {
  if (isTagged(v, 'uuid') || isTagged(v, 'named-uuid')) return String(v[1]);
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  throw new TypeError(`not an OVSDB atom: ${JSON.stringify(v)}`);
}

/** Decodes a wire value: sets to arrays, maps to records, UUIDs to strings, atoms as is. */
export function decodeValue(v: unknown): unknown {
  if (isTagged(v, 'set') && Array.isArray(v[1])) return v[1].map(decodeAtom);
  if (isTagged(v, 'map') && Array.isArray(v[1])) {
    const out: DecodedMap = {};
    for (const pair of v[1] as unknown[]) {
      if (!Array.isArray(pair) || pair.length !== 2) throw new TypeError(`bad map pair: ${JSON.stringify(pair)}`);
      out[String(decodeAtom(pair[0]))] = decodeAtom(pair[1]);
    }
    return out;
  }
  return decodeAtom(v);
}

/** Decodes a wire <row> (RFC 7047 §5.1) and adds its UUID as `_uuid`. */
export function decodeRow(rowUuid: string, wire: Record<string, unknown>): Row {
  const row: Row = { _uuid: rowUuid };
  for (const [col, v] of Object.entries(wire)) {
    // select results carry _uuid/_version themselves; the caller's UUID wins.
    if (col === '_uuid') continue;
    row[col] = decodeValue(v);
  }
  return row;
}

/** A decoded set column as an array: a lone atom becomes [atom], undefined becomes []. */
export function asArray<T>(v: unknown): T[] {
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]) as T[];
}

/** A decoded map column as a record; undefined (column not monitored or omitted) becomes {}. */
export function asMap(v: unknown): DecodedMap {
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as DecodedMap;
  return {};
}

/**
 * Structural equality of decoded values. Arrays are OVSDB sets, so order does not count: the
 * server sends sets sorted, while a set rebuilt from update2 diffs keeps insertion order.
 */
export function valuesEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return false;
    const key = (x: unknown): string => JSON.stringify(x);
    const sb = b.map(key).sort();
    return a.map(key).sort().every((x, i) => x === sb[i]);
  }
  const ka = Object.keys(a);
  const rb = b as Record<string, unknown>;
  if (ka.length !== Object.keys(rb).length) return false;
  return ka.every((k) => Object.hasOwn(rb, k) && valuesEqual((a as Record<string, unknown>)[k], rb[k]));
}
