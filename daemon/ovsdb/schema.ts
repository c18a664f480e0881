// What the client needs from the database schema (RFC 7047 §3.2, fetched with get_schema §4.1.2):
// each column's shape. update2 "modify" carries diffs whose meaning depends on it (ovsdb-server(7)
// §4.1.14): the new value for a scalar or optional column, a symmetric difference for a set. On
// the wire a one-element set diff and a new scalar look the same, only the schema tells them apart.
// update2 "initial"/"insert" rows also omit columns at their default, which the schema restores.

import { asArray, decodeAtom, decodeValue, type DecodedAtom, type DecodedMap, type Row } from './values';

/** scalar: min 1 max 1; optional: min 0 max 1; set: max > 1; map: has a value type. */
export type ColumnKind = 'scalar' | 'optional' | 'set' | 'map';

export interface ColumnType {
  kind: ColumnKind;
  /** Atomic type of the key (integer, real, boolean, string, uuid). */
  key: string;
}

export type TableSchema = ReadonlyMap<string, ColumnType>;
export type DbSchema = ReadonlyMap<string, TableSchema>;

const NIL_UUID = '00000000-0000-0000-0000-000000000000';

function baseTypeName(t: unknown): string {
  if (typeof t === 'string') return t;
  if (typeof t === 'object' && t !== null && typeof (t as { type?: unknown }).type === 'string') {
    return (t as { type: string }).type;
  }
  return 'string';
}

/** Parses a <column-schema> "type" (RFC 7047 §3.2): an atomic-type name or an object. */
export function parseColumnType(t: unknown): ColumnType {
  if (typeof t === 'string') return { kind: 'scalar', key: t };
  const o = (t ?? {}) as { key?: unknown; value?: unknown; min?: unknown; max?: unknown };
  const key = baseTypeName(o.key);
  if (o.value !== undefined) return { kind: 'map', key };
  const min = typeof o.min === 'number' ? o.min : 1;
  const max = o.max === 'unlimited' ? Infinity : typeof o.max === 'number' ? o.max : 1;
  if (max > 1) return { kind: 'set', key };
  return { kind: min === 0 ? 'optional' : 'scalar', key };
}

/** Parses a <database-schema> (RFC 7047 §3.2) into column shapes per table. */
export function parseSchema(json: unknown): DbSchema {
  const tables = new Map<string, TableSchema>();
  const raw = (json as { tables?: Record<string, { columns?: Record<string, { type?: unknown }> }> }).tables ?? {};
  for (const [name, table] of Object.entries(raw)) {
    const cols = new Map<string, ColumnType>();
    for (const [col, def] of Object.entries(table.columns ?? {})) cols.set(col, parseColumnType(def.type));
    tables.set(name, cols);
  }
  return tables;
}

/** The decoded default value of a column (RFC 7047 §5.2.1: what insert fills in). */
export function defaultValue(col: ColumnType): unknown {
  if (col.kind === 'map') return {};
  if (col.kind !== 'scalar') return [];
  switch (col.key) {
    case 'integer':
    case 'real':
      return 0;
    case 'boolean':
      return false;
    case 'uuid':
      return NIL_UUID;
    default:
      return '';
  }
}

/** Adds the columns an update2 row left out because they hold their default value. */
export function fillDefaults(row: Row, table: TableSchema | undefined, columns?: readonly string[]): Row {
  if (!table) return row;
  for (const col of columns ?? table.keys()) {
    const type = table.get(col);
    if (type && !(col in row)) row[col] = defaultValue(type);
  }
  return row;
}

/** A decoded set in the form decodeValue() gives its wire encoding: one element is a bare atom. */
function canonicalSet(items: DecodedAtom[]): unknown {
  return items.length === 1 ? items[0] : items;
}

/** Symmetric difference (ovsdb-server(7) §4.1.14), keeping the old order, then the additions. */
function applySetDiff(old: unknown, diff: unknown): unknown {
  const removed = new Set<DecodedAtom>();
  const oldItems = asArray<DecodedAtom>(old);
  const diffItems = asArray<DecodedAtom>(decodeValue(diff));
  const oldSet = new Set(oldItems);
  const added: DecodedAtom[] = [];
  for (const d of diffItems) {
    if (oldSet.has(d)) removed.add(d);
    else added.push(d);
  }
  return canonicalSet([...oldItems.filter((x) => !removed.has(x)), ...added]);
}

/** Map diff: keys only in one side toggle; keys in both with another value take the new value. */
function applyMapDiff(old: unknown, diff: unknown): DecodedMap {
  const out: DecodedMap = { ...((typeof old === 'object' && old !== null && !Array.isArray(old)) ? old as DecodedMap : {}) };
  const pairs = (diff as ['map', [unknown, unknown][]])[1];
  for (const [k, v] of pairs) {
    const key = String(decodeAtom(k));
    const value = decodeAtom(v);
    if (Object.hasOwn(out, key) && out[key] === value) delete out[key];
    else out[key] = value;
  }
  return out;
}

function isWireMap(v: unknown): boolean {
  return Array.isArray(v) && v[0] === 'map';
}

/**
 * Applies one column of an update2 "modify" row to the cached decoded value. Without a schema
 * (a server that does not answer get_schema) the shape is guessed from the values: a wire map is
 * a map diff, an empty set clears an optional column, a multi-element set or an old value holding
 * several elements is a set diff, and a lone atom equal to the old lone atom removes it; any other
 * lone atom is taken as a scalar's new value (a one-element set gaining a second element would be
 * misread: that is why the client fetches the schema).
 */
export function applyColumnDiff(old: unknown, diff: unknown, col?: ColumnType): unknown {
  if (col) {
    if (col.kind === 'map') return applyMapDiff(old, diff);
    if (col.kind === 'set') return applySetDiff(old, diff);
    return decodeValue(diff);
  }
  if (isWireMap(diff)) return applyMapDiff(old, diff);
  const decoded = decodeValue(diff);
  if (Array.isArray(decoded)) return decoded.length === 0 ? [] : applySetDiff(old, diff);
  if (Array.isArray(old) && old.length > 0) return applySetDiff(old, diff);
  if (old === decoded) return [];
  return decoded;
}
