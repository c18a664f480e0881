// In-memory replica of monitored tables, fed by monitor replies and "update" (RFC 7047 §4.1.6)
// or "update2" (ovsdb-server(7) §4.1.14) notifications. Every applied row change is returned so
// the client can emit it; rows are never mutated in place, so an emitted old row stays valid.

import { applyColumnDiff, fillDefaults, type DbSchema } from './schema';
import { decodeRow, valuesEqual, type Row } from './values';

/** One row change: old undefined for an insert, new undefined for a delete. */
export interface RowChange {
  table: string;
  uuid: string;
  old: Row | undefined;
  new: Row | undefined;
}

/** Monitored columns per table; undefined means all columns. */
export type ColumnsByTable = ReadonlyMap<string, readonly string[] | undefined>;

type WireRow = Record<string, unknown>;
interface RowUpdate { old?: WireRow | null; new?: WireRow | null }
interface RowUpdate2 { initial?: WireRow; insert?: WireRow; modify?: WireRow; delete?: unknown }

const EMPTY: ReadonlyMap<string, Row> = new Map();

function entries<T>(o: unknown): [string, T][] {
  return typeof o === 'object' && o !== null ? Object.entries(o as Record<string, T>) : [];
}

export class RowCache {
  private readonly tables = new Map<string, Map<string, Row>>();

  /** @param schema current schema, when the server gave one (get_schema), for defaults and diffs */
  constructor(private readonly schema: () => DbSchema | undefined = () => undefined) {}

  rows(table: string): ReadonlyMap<string, Row> {
    return this.tables.get(table) ?? EMPTY;
  }

  /** Applies <table-updates> (RFC 7047 §4.1.6): "new" alone inserts, "old" alone deletes. */
  applyUpdates(updates: unknown, columns: ColumnsByTable): RowChange[] {
    const changes: RowChange[] = [];
    for (const [table, rowUpdates] of entries<unknown>(updates)) {
      const rows = this.table(table);
      for (const [id, u] of entries<RowUpdate>(rowUpdates)) {
        const old = rows.get(id);
        if (u.new) {
          // For "modify", "new" holds every monitored column (§4.1.6); merging keeps any others.
          const decoded = decodeRow(id, u.new);
          const next = old ? { ...old, ...decoded } : this.withDefaults(table, decoded, columns);
          changes.push(this.put(table, id, old, next));
        } else if (old) {
          changes.push(this.put(table, id, old, undefined));
        }
      }
    }
    return changes;
  }

  /** Applies <table-updates2> (ovsdb-server(7) §4.1.14): initial/insert/modify/delete. */
  applyUpdates2(updates: unknown, columns: ColumnsByTable): RowChange[] {
    const changes: RowChange[] = [];
    for (const [table, rowUpdates] of entries<unknown>(updates)) {
      const rows = this.table(table);
      for (const [id, u] of entries<RowUpdate2>(rowUpdates)) {
        const old = rows.get(id);
        const full = u.initial ?? u.insert;
        if (full) {
          changes.push(this.put(table, id, old, this.withDefaults(table, decodeRow(id, full), columns)));
        } else if (u.modify) {
          changes.push(this.put(table, id, old, this.applyModify(table, old ?? { _uuid: id }, u.modify)));
        } else if ('delete' in u && old) {
          changes.push(this.put(table, id, old, undefined));
        }
      }
    }
    return changes;
  }

  /**
   * Replaces the given tables with the content of `fresh` (a full resync after reconnecting) and
   * returns the differences, so listeners see exactly what happened while the link was down.
   */
  replaceTables(tables: Iterable<string>, fresh: RowCache): RowChange[] {
    const changes: RowChange[] = [];
    for (const table of tables) {
      const before = this.tables.get(table) ?? new Map<string, Row>();
      const after = new Map(fresh.rows(table));
      for (const [id, old] of before) {
        const next = after.get(id);
        if (!next) changes.push({ table, uuid: id, old, new: undefined });
        else if (!valuesEqual(old, next)) changes.push({ table, uuid: id, old, new: next });
      }
      for (const [id, next] of after) {
        if (!before.has(id)) changes.push({ table, uuid: id, old: undefined, new: next });
      }
      this.tables.set(table, after);
    }
    return changes;
  }

  /** Forgets a table (its monitor was refused by the server). */
  dropTable(table: string): void {
    this.tables.delete(table);
  }

  private table(name: string): Map<string, Row> {
    let t = this.tables.get(name);
    if (!t) {
      t = new Map();
      this.tables.set(name, t);
    }
    return t;
  }

  private withDefaults(table: string, row: Row, columns: ColumnsByTable): Row {
    return fillDefaults(row, this.schema()?.get(table), columns.get(table));
  }

  private applyModify(table: string, old: Row, diff: WireRow): Row {
    const cols = this.schema()?.get(table);
    const next: Row = { ...old };
    for (const [col, d] of Object.entries(diff)) next[col] = applyColumnDiff(old[col], d, cols?.get(col));
    return next;
  }

  private put(table: string, id: string, old: Row | undefined, next: Row | undefined): RowChange {
    const rows = this.table(table);
    if (next) rows.set(id, next);
    else rows.delete(id);
    return { table, uuid: id, old, new: next };
  }
}
