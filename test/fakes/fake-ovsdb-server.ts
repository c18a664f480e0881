// In-memory OVSDB server on a unix socket for unit tests: applies RFC 7047 §5.2 operations for real
// (atomically, uuid-names resolved across the transaction), answers monitor (§4.1.5, "update") and
// monitor_cond (ovsdb-server(7) §4.1.12, "update2" with diffs), echo and get_schema, and lets tests
// drop connections, fail the next transaction and read or change its tables directly.

import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonStreamSplitter } from '../../daemon/ovsdb/framing';
import { parseSchema, type ColumnType, type DbSchema } from '../../daemon/ovsdb/schema';
import { decodeRow, decodeValue, type Row } from '../../daemon/ovsdb/values';

type Wire = unknown;
type WireRow = Record<string, Wire>;
type Tables = Map<string, Map<string, WireRow>>;
type Kind = ColumnType['kind'];
interface TableReq { columns?: string[]; where?: unknown[] }
interface Monitor { id: unknown; v2: boolean; tables: Map<string, TableReq> }
interface Conn { socket: Socket; monitors: Monitor[]; out: Promise<void> }
interface Change { table: string; uuid: string; old?: WireRow; new?: WireRow }

/**
 * Builds a <database-schema> (RFC 7047 §3.2) from shorthand column types: an atomic type name
 * ('string', 'integer'...), 'optional:<type>' (min 0, max 1), 'set:<type>' (max unlimited) or
 * 'map' (string to string).
 */
export function schemaOf(name: string, tables: Record<string, Record<string, string>>): unknown {
  const type = (t: string): unknown => {
    const [shape, key] = t.split(':');
    if (shape === 'map') return { key: 'string', value: 'string', min: 0, max: 'unlimited' };
    if (shape === 'optional') return { key, min: 0, max: 1 };
    if (shape === 'set') return { key, min: 0, max: 'unlimited' };
    return t;
  };
  const out: Record<string, unknown> = {};
  for (const [t, cols] of Object.entries(tables)) {
    out[t] = { columns: Object.fromEntries(Object.entries(cols).map(([c, ct]) => [c, { type: type(ct) }])) };
  }
  return { name, version: '0.0.1', tables: out };
}

/** A small Open_vSwitch-like schema for unit tests. */
export const TEST_SCHEMA = schemaOf('Open_vSwitch', {
  Open_vSwitch: { bridges: 'set:uuid', external_ids: 'map', next_cfg: 'integer' },
  Bridge: { name: 'string', ports: 'set:uuid', external_ids: 'map', fail_mode: 'optional:string' },
  Port: { name: 'string', interfaces: 'set:uuid', tag: 'optional:integer', trunks: 'set:integer', external_ids: 'map' },
  Interface: { name: 'string', type: 'string', ofport: 'optional:integer', external_ids: 'map', options: 'map' },
});

export interface FakeOvsdbServerOptions {
  database?: string;
  /** RFC 7047 <database-schema>: served by get_schema, gives column shapes (defaults, diffs). */
  schema?: unknown;
  /** Write each message in pieces of this many bytes with a pause between them (framing tests). */
  writeChunkBytes?: number;
}

class OpError extends Error {
  constructor(readonly error: string, readonly details: string) { super(`${error}: ${details}`); }
}

const json = (v: unknown): string => JSON.stringify(v);
const isTag = (v: Wire, tag: string): v is [string, Wire[]] => Array.isArray(v) && v[0] === tag;
/** Set or map members as wire atoms / [key, value] pairs; a bare atom is a one-element set (§5.1). */
const members = (v: Wire): Wire[] => (v === undefined ? [] : isTag(v, 'set') || isTag(v, 'map') ? v[1] : [v]);
const setWire = (items: Wire[]): Wire => (items.length === 1 ? items[0] : ['set', items]);

export class FakeOvsdbServer {
  readonly database: string;
  readonly socketPath: string;
  /** Table -> UUID -> row of wire values (no _uuid). Change through apply() to notify monitors. */
  tables: Tables = new Map();
  /** Called after each request has been answered, e.g. to make a change land right behind a reply. */
  afterReply: ((method: string) => void) | undefined;
  /** Every request received: method and params, in order. */
  readonly requests: { method: string; params: unknown }[] = [];
  private readonly dir: string;
  private readonly schema: DbSchema | undefined;
  private server: Server | undefined;
  private readonly conns = new Set<Conn>();
  private failNext: { error: string; details: string } | undefined;
  private stallNext = false;
  private echoes = new Map<string, () => void>();
  private echoSeq = 0;

  private constructor(private readonly opts: FakeOvsdbServerOptions) {
    this.database = opts.database ?? 'Open_vSwitch';
    this.schema = opts.schema === undefined ? undefined : parseSchema(opts.schema);
    this.dir = mkdtempSync(join(tmpdir(), 'ovnode-fake-ovsdb-'));
    this.socketPath = join(this.dir, 'db.sock');
  }

  static async start(opts: FakeOvsdbServerOptions = {}): Promise<FakeOvsdbServer> {
    const s = new FakeOvsdbServer(opts);
    await s.listen();
    return s;
  }

  get connectionCount(): number { return this.conns.size; }

  /** Listens (again, after stop()) on the same socket path, keeping the tables. */
  async listen(): Promise<void> {
    rmSync(this.socketPath, { force: true });
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(this.socketPath, resolve));
  }

  /** Stops listening and drops every connection; the tables survive for a later listen(). */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.dropConnections();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Cuts every client connection at once, as a crashing server would. */
  dropConnections(): void {
    for (const c of this.conns) c.socket.destroy();
    this.conns.clear();
  }

  /** The next transact fails at commit with this error (RFC 7047 §4.1.3: one extra result). */
  failNextTransaction(error = 'fake failure', details = 'injected by the test'): void {
    this.failNext = { error, details };
  }

  /** The next transact gets no reply at all (to test aborts and drops mid-request). */
  stallNextTransaction(): void {
    this.stallNext = true;
  }

  /** Decoded rows of a table, `_uuid` included. */
  rows(table: string): Row[] {
    return [...(this.tables.get(table) ?? new Map<string, WireRow>())].map(([id, r]) => decodeRow(id, r));
  }

  /** Runs a transaction as if a client sent it (monitors are notified); returns the results. */
  apply(ops: unknown[]): unknown[] {
    return this.transact(ops);
  }

  /** Sends an echo request (§4.1.11) to every client; resolves once all have answered. */
  async sendEcho(): Promise<void> {
    await Promise.all([...this.conns].map((c) => new Promise<void>((resolve) => {
      const id = `echo-${++this.echoSeq}`;
      this.echoes.set(id, resolve);
      this.send(c, { method: 'echo', params: [id], id });
    })));
  }

  /** Writes raw bytes to every client (malformed-stream tests). */
  sendRaw(data: string | Buffer): void {
    for (const c of this.conns) c.socket.write(data);
  }

  private accept(socket: Socket): void {
    const conn: Conn = { socket, monitors: [], out: Promise.resolve() };
    this.conns.add(conn);
    const splitter = new JsonStreamSplitter();
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.conns.delete(conn));
    socket.on('data', (chunk: Buffer) => {
      for (const text of splitter.push(chunk)) this.handle(conn, JSON.parse(text) as Record<string, unknown>);
    });
  }

  private send(conn: Conn, msg: unknown): void {
    const buf = Buffer.from(json(msg));
    const n = this.opts.writeChunkBytes;
    if (!n) {
      conn.socket.write(buf);
      return;
    }
    conn.out = conn.out.then(async () => {
      for (let i = 0; i < buf.length && !conn.socket.destroyed; i += n) {
        conn.socket.write(buf.subarray(i, i + n));
        await new Promise((r) => setImmediate(r));
      }
    });
  }

  private handle(conn: Conn, msg: Record<string, unknown>): void {
    const { method, params, id } = msg as { method?: string; params: unknown[]; id: unknown };
    if (method === undefined) {
      if (typeof id === 'string') this.echoes.get(id)?.();
      return;
    }
    this.requests.push({ method, params });
    const reply = (result: unknown, error: unknown = null): void => {
      this.send(conn, { id, result, error });
      this.afterReply?.(method);
    };
    switch (method) {
      case 'echo': return reply(params);
      case 'get_schema':
        return this.opts.schema ? reply(this.opts.schema) : reply(null, { error: 'unknown method' });
      case 'transact':
        if (params[0] !== this.database) return reply(null, { error: 'unknown database', details: String(params[0]) });
        if (this.stallNext) {
          this.stallNext = false;
          return undefined;
        }
        return reply(this.transact(params.slice(1)));
      case 'monitor':
      case 'monitor_cond': {
        const m = this.monitorOf(params, method === 'monitor_cond');
        if (typeof m === 'string') return reply(null, { error: 'unknown table', details: m });
        conn.monitors.push(m);
        return reply(this.initial(m));
      }
      case 'cancel': return undefined;
      default: return reply(null, { error: 'unknown method', details: method });
    }
  }

  private monitorOf(params: unknown[], v2: boolean): Monitor | string {
    const tables = new Map<string, TableReq>();
    for (const [t, req] of Object.entries(params[2] as Record<string, TableReq | TableReq[]>)) {
      if (this.schema && !this.schema.has(t)) return t;
      tables.set(t, Array.isArray(req) ? (req[0] ?? {}) : req);
    }
    return { id: params[1], v2, tables };
  }

  private initial(m: Monitor): unknown {
    const out: Record<string, Record<string, unknown>> = {};
    for (const [table, req] of m.tables) {
      out[table] = {};
      for (const [id, row] of this.tables.get(table) ?? []) {
        if (m.v2 && !this.matches(table, id, row, req.where ?? [])) continue;
        out[table][id] = m.v2 ? { initial: this.project(table, row, req, true) } : { new: this.project(table, row, req) };
      }
    }
    return out;
  }

  // ---- transactions (RFC 7047 §5.2) ----

  private transact(ops: unknown[]): unknown[] {
    const work: Tables = structuredClone(this.tables);
    const named = new Map<string, string>();
    for (const op of ops as Record<string, unknown>[]) {
      if (op.op === 'insert' && typeof op['uuid-name'] === 'string') named.set(op['uuid-name'], randomUUID());
    }
    const results: unknown[] = [];
    for (const op of ops as Record<string, unknown>[]) {
      try {
        results.push(this.operate(work, resolveNamed(op, named) as Record<string, unknown>, named));
      } catch (e) {
        if (!(e instanceof OpError)) throw e;
        results.push({ error: e.error, details: e.details });
        return results;
      }
    }
    if (this.failNext) {
      results.push(this.failNext);
      this.failNext = undefined;
      return results;
    }
    const changes = diffTables(this.tables, work);
    this.tables = work;
    for (const c of this.conns) this.notify(c, changes);
    return results;
  }

  private operate(t: Tables, op: Record<string, unknown>, named: Map<string, string>): unknown {
    const table = op.table as string;
    if (op.table !== undefined && this.schema && !this.schema.has(table)) throw new OpError('syntax error', `No table named ${table}.`);
    const rows = t.get(table) ?? new Map<string, WireRow>();
    if (op.table !== undefined) t.set(table, rows);
    const where = (op.where ?? []) as unknown[];
    const selected = (): [string, WireRow][] => [...rows].filter(([id, r]) => this.matches(table, id, r, where));
    switch (op.op) {
      case 'insert': {
        const id = named.get(op['uuid-name'] as string) ?? randomUUID();
        rows.set(id, { ...this.defaults(table), ...(op.row as WireRow) });
        return { uuid: ['uuid', id] };
      }
      case 'select':
        return { rows: selected().map(([id, r]) => project({ _uuid: ['uuid', id], ...r }, op.columns as string[] | undefined)) };
      case 'update': {
        const hit = selected();
        for (const [, r] of hit) Object.assign(r, op.row);
        return { count: hit.length };
      }
      case 'mutate': {
        const hit = selected();
        for (const [, r] of hit) {
          for (const [col, mutator, arg] of op.mutations as [string, string, Wire][]) {
            r[col] = mutate(r[col], mutator, arg, this.kind(table, col, r[col] ?? arg));
          }
        }
        return { count: hit.length };
      }
      case 'delete': {
        const hit = selected();
        for (const [id] of hit) rows.delete(id);
        return { count: hit.length };
      }
      case 'wait': {
        const got = selected().map(([, r]) => canonRow(project(r, op.columns as string[])));
        const want = (op.rows as WireRow[]).map((r) => canonRow(r));
        const equal = json(got.sort()) === json(want.sort());
        if (equal !== (op.until === '==')) throw new OpError('timed out', '"wait" timed out');
        return {};
      }
      case 'abort': throw new OpError('aborted', 'aborted by request');
      case 'comment': case 'commit': case 'assert': return {};
      default: throw new OpError('syntax error', `unknown operation ${json(op.op)}`);
    }
  }

  // ---- shapes, conditions, monitors ----

  private kind(table: string, col: string, sample: Wire): Kind {
    const k = this.schema?.get(table)?.get(col)?.kind;
    if (k) return k;
    return isTag(sample, 'map') ? 'map' : isTag(sample, 'set') ? 'set' : 'scalar';
  }

  private defaults(table: string): WireRow {
    const out: WireRow = {};
    for (const [col, t] of this.schema?.get(table) ?? []) {
      if (t.kind === 'map') out[col] = ['map', []];
      else if (t.kind !== 'scalar') out[col] = ['set', []];
      else out[col] = t.key === 'integer' || t.key === 'real' ? 0 : t.key === 'boolean' ? false
        : t.key === 'uuid' ? ['uuid', '00000000-0000-0000-0000-000000000000'] : '';
    }
    return out;
  }

  private isDefault(table: string, col: string, v: Wire): boolean {
    const d = this.defaults(table)[col];
    return d !== undefined ? json(d) === json(v) : json(members(v)) === '[]';
  }

  /** RFC 7047 §5.1 conditions; sets and maps compare as member sets, a lone atom as a set of one. */
  private matches(table: string, id: string, row: WireRow, where: unknown[]): boolean {
    return where.every((c) => {
      if (typeof c === 'boolean') return c;
      const [col, fn, value] = c as [string, string, Wire];
      const actual = col === '_uuid' ? ['uuid', id] : row[col];
      const have = members(actual).map(json);
      const want = members(value).map(json);
      const includes = want.every((w) => have.includes(w));
      const same = includes && have.length === want.length;
      switch (fn) {
        case '==': return same;
        case '!=': return !same;
        case 'includes': return includes;
        case 'excludes': return want.every((w) => !have.includes(w));
        default: {
          const [a, b] = [decodeValue(actual) as number, decodeValue(value) as number];
          return fn === '<' ? a < b : fn === '<=' ? a <= b : fn === '>' ? a > b : a >= b;
        }
      }
    });
  }

  private project(table: string, row: WireRow, req: TableReq, omitDefaults = false): WireRow {
    const out = project(row, req.columns);
    if (omitDefaults) for (const col of Object.keys(out)) if (this.isDefault(table, col, out[col])) delete out[col];
    return out;
  }

  private notify(conn: Conn, changes: Change[]): void {
    for (const m of conn.monitors) {
      const updates: Record<string, Record<string, unknown>> = {};
      for (const c of changes) {
        const req = m.tables.get(c.table);
        if (!req) continue;
        const u = m.v2 ? this.rowUpdate2(c, req) : this.rowUpdate(c, req);
        if (u) (updates[c.table] ??= {})[c.uuid] = u;
      }
      if (Object.keys(updates).length > 0) this.send(conn, { method: m.v2 ? 'update2' : 'update', params: [m.id, updates], id: null });
    }
  }

  /** RFC 7047 §4.1.6 <row-update>: modify sends the old values of the changed columns only. */
  private rowUpdate(c: Change, req: TableReq): unknown {
    if (!c.old) return { new: this.project(c.table, c.new as WireRow, req) };
    if (!c.new) return { old: this.project(c.table, c.old, req) };
    const [o, n] = [this.project(c.table, c.old, req), this.project(c.table, c.new, req)];
    const changed = Object.keys(o).filter((k) => json(o[k]) !== json(n[k]));
    return changed.length === 0 ? undefined : { old: project(o, changed), new: n };
  }

  /** ovsdb-server(7) §4.1.14 <row-update2>, rows entering or leaving the condition included. */
  private rowUpdate2(c: Change, req: TableReq): unknown {
    const where = req.where ?? [];
    const was = c.old !== undefined && this.matches(c.table, c.uuid, c.old, where);
    const is = c.new !== undefined && this.matches(c.table, c.uuid, c.new, where);
    if (!was && is) return { insert: this.project(c.table, c.new as WireRow, req, true) };
    if (was && !is) return { delete: null };
    if (!was) return undefined;
    const [o, n] = [this.project(c.table, c.old as WireRow, req), this.project(c.table, c.new as WireRow, req)];
    const modify: WireRow = {};
    for (const col of new Set([...Object.keys(o), ...Object.keys(n)])) {
      if (json(o[col]) !== json(n[col])) modify[col] = diff(o[col], n[col], this.kind(c.table, col, n[col] ?? o[col]));
    }
    return Object.keys(modify).length === 0 ? undefined : { modify };
  }
}

function project(row: WireRow, columns?: string[]): WireRow {
  if (!columns) return { ...row };
  return Object.fromEntries(columns.filter((c) => c in row).map((c) => [c, row[c]]));
}

function canonRow(row: WireRow): string {
  return json(Object.keys(row).sort().map((k) => [k, members(row[k]).map(json).sort()]));
}

function resolveNamed(v: unknown, named: Map<string, string>): unknown {
  if (isTag(v, 'named-uuid')) {
    const id = named.get(v[1] as unknown as string);
    if (!id) throw new OpError('referential integrity violation', `unknown named-uuid ${json(v[1])}`);
    return ['uuid', id];
  }
  if (Array.isArray(v)) return v.map((x) => resolveNamed(x, named));
  if (typeof v === 'object' && v !== null) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolveNamed(x, named)]));
  }
  return v;
}

/** RFC 7047 §5.1 <mutation> on one column. */
function mutate(cur: Wire, mutator: string, arg: Wire, kind: Kind): Wire {
  const items = members(cur);
  const argItems = members(arg);
  if (kind === 'map') {
    const m = new Map(items.map((p) => [json((p as Wire[])[0]), p]));
    if (mutator === 'insert') for (const p of argItems) { const k = json((p as Wire[])[0]); if (!m.has(k)) m.set(k, p); }
    else if (mutator === 'delete') {
      for (const a of argItems) {
        // A map argument deletes matching pairs, a set argument deletes keys.
        const key = json(isTag(arg, 'map') ? (a as Wire[])[0] : a);
        if (!isTag(arg, 'map') || json(m.get(key)) === json(a)) m.delete(key);
      }
    }
    return ['map', [...m.values()]];
  }
  if (mutator === 'insert') return setWire([...items, ...argItems.filter((a) => !items.some((i) => json(i) === json(a)))]);
  if (mutator === 'delete') return setWire(items.filter((i) => !argItems.some((a) => json(a) === json(i))));
  const n = arg as number;
  const op = (x: number): number => mutator === '+=' ? x + n : mutator === '-=' ? x - n : mutator === '*=' ? x * n
    : mutator === '/=' ? Math.trunc(x / n) : x % n;
  return kind === 'scalar' ? op(cur as number) : setWire(items.map((x) => op(x as number)));
}

/** update2 diff (ovsdb-server(7) §4.1.14): new value for scalars, symmetric difference otherwise. */
function diff(old: Wire, now: Wire, kind: Kind): Wire {
  if (kind === 'scalar' || kind === 'optional') return now;
  const [o, n] = [members(old), members(now)];
  if (kind === 'set') {
    const has = (xs: Wire[], x: Wire): boolean => xs.some((y) => json(y) === json(x));
    return setWire([...o.filter((x) => !has(n, x)), ...n.filter((x) => !has(o, x))]);
  }
  const om = new Map(o.map((p) => [json((p as Wire[])[0]), p]));
  const nm = new Map(n.map((p) => [json((p as Wire[])[0]), p]));
  const pairs = [...[...om].filter(([k]) => !nm.has(k)).map(([, p]) => p)];
  for (const [k, p] of nm) if (json(om.get(k)) !== json(p)) pairs.push(p);
  return ['map', pairs];
}

function diffTables(before: Tables, after: Tables): Change[] {
  const out: Change[] = [];
  for (const [table, rows] of after) {
    const old = before.get(table) ?? new Map<string, WireRow>();
    for (const [id, r] of old) if (!rows.has(id)) out.push({ table, uuid: id, old: r });
    for (const [id, r] of rows) {
      const o = old.get(id);
      if (!o) out.push({ table, uuid: id, new: r });
      else if (json(o) !== json(r)) out.push({ table, uuid: id, old: o, new: r });
    }
  }
  return out;
}
