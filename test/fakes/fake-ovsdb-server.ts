// In-memory OVSDB server on a unix socket for unit tests: applies RFC 7047 §5.2 operations for real
// (atomically, uuid-names resolved across the transaction), answers monitor (§4.1.5, "update") and
// monitor_cond (ovsdb-server(7) §4.1.12, "update2" with diffs), echo and get_schema, and lets tests
// drop connections, inject faults into transactions (server.faults) and read or change its tables.
//
// With a schema it also does what ovsdb-server does at commit (RFC 7047 §3.2, §4.1.3), in its
// order: strong references must point to existing rows ("referential integrity violation"); rows
// of non-root tables that no other row references strongly are deleted (garbage collection,
// cascading); "maxRows" is enforced; weak references to missing rows are removed from their sets
// and maps (a column then below its "min" fails the commit); "indexes" must stay unique. Failed
// checks fail the whole transaction ("constraint violation" and friends, one result past the
// operations), and monitors see the rows garbage collection deleted and weak-reference removal
// changed like any other change. The real schemas load with loadSchema(OVS_SCHEMA_PATH) and
// loadSchema(NB_SCHEMA_PATH). Schemas where no table says "isRoot" make every table a root
// (RFC 7047 §3.2), so schemaOf() shorthands without `roots` never garbage-collect.

import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonStreamSplitter } from '../../daemon/ovsdb/framing';
import { parseSchema, type ColumnType, type DbSchema } from '../../daemon/ovsdb/schema';
import type { Operation } from '../../daemon/ovsdb/types';
import { decodeRow, decodeValue, type Row } from '../../daemon/ovsdb/values';

type Wire = unknown;
type WireRow = Record<string, Wire>;
type Tables = Map<string, Map<string, WireRow>>;
type Kind = ColumnType['kind'];
interface TableReq { columns?: string[]; where?: unknown[] }
interface Monitor { id: unknown; v2: boolean; tables: Map<string, TableReq> }
interface Conn { socket: Socket; monitors: Monitor[]; out: Promise<void> }
interface Change { table: string; uuid: string; old?: WireRow; new?: WireRow }

/** The Open_vSwitch schema as installed by openvswitch-common. */
export const OVS_SCHEMA_PATH = '/usr/share/openvswitch/vswitch.ovsschema';
/** The OVN_Northbound schema as installed by ovn-common. */
export const NB_SCHEMA_PATH = '/usr/share/ovn/ovn-nb.ovsschema';

/** Reads a .ovsschema file (RFC 7047 §3.2 <database-schema>) for FakeOvsdbServerOptions.schema. */
export function loadSchema(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8')) as unknown;
}

export interface SchemaOfOptions {
  /** Tables with "isRoot": true. When none is given every table is a root (no garbage collection). */
  roots?: string[];
  /** Unique indexes per table: lists of column sets. */
  indexes?: Record<string, string[][]>;
  maxRows?: Record<string, number>;
}

/**
 * Builds a <database-schema> (RFC 7047 §3.2) from shorthand column types: `[shape:]base` where
 * shape is none (exactly one), 'optional' (0 or 1), 'set' (0 or more) or 'set1' (1 or more), and
 * base an atomic type name ('string', 'integer'...), 'ref->Table' (a strong uuid reference) or
 * 'weak->Table' (a weak one); 'map' alone is string to string, 'map:<base>' string to base. E.g.
 * 'set:ref->Port', 'optional:weak->Port', 'map:weak->Port'.
 */
export function schemaOf(name: string, tables: Record<string, Record<string, string>>, opts: SchemaOfOptions = {}): unknown {
  const base = (b: string): unknown => {
    const [kind, table] = b.split('->');
    if (table === undefined) return b;
    return kind === 'weak' ? { type: 'uuid', refTable: table, refType: 'weak' } : { type: 'uuid', refTable: table };
  };
  const type = (t: string): unknown => {
    const i = t.indexOf(':');
    const [shape, key] = i < 0 ? ['', t] : [t.slice(0, i), t.slice(i + 1)];
    if (t === 'map') return { key: 'string', value: 'string', min: 0, max: 'unlimited' };
    if (shape === 'map') return { key: 'string', value: base(key), min: 0, max: 'unlimited' };
    if (shape === 'optional') return { key: base(key), min: 0, max: 1 };
    if (shape === 'set') return { key: base(key), min: 0, max: 'unlimited' };
    if (shape === 'set1') return { key: base(key), min: 1, max: 'unlimited' };
    const b = base(key);
    return typeof b === 'string' ? b : { key: b };
  };
  const out: Record<string, unknown> = {};
  for (const [t, cols] of Object.entries(tables)) {
    const table: Record<string, unknown> = {
      columns: Object.fromEntries(Object.entries(cols).map(([c, ct]) => [c, { type: type(ct) }])),
    };
    if (opts.roots?.includes(t)) table.isRoot = true;
    if (opts.indexes?.[t]) table.indexes = opts.indexes[t];
    if (opts.maxRows?.[t] !== undefined) table.maxRows = opts.maxRows[t];
    out[t] = table;
  }
  return { name, version: '0.0.1', tables: out };
}

/** A small Open_vSwitch-like schema for unit tests (no references, every table a root). */
export const TEST_SCHEMA = schemaOf('Open_vSwitch', {
  Open_vSwitch: { bridges: 'set:uuid', external_ids: 'map', next_cfg: 'integer' },
  Bridge: { name: 'string', ports: 'set:uuid', external_ids: 'map', fail_mode: 'optional:string' },
  Port: { name: 'string', interfaces: 'set:uuid', tag: 'optional:integer', trunks: 'set:integer', external_ids: 'map' },
  Interface: { name: 'string', type: 'string', ofport: 'optional:integer', external_ids: 'map', options: 'map' },
});

export interface FakeOvsdbServerOptions {
  database?: string;
  /** RFC 7047 <database-schema>: served by get_schema, gives column shapes, references, indexes. */
  schema?: unknown;
  /** Write each message in pieces of this many bytes with a pause between them (framing tests). */
  writeChunkBytes?: number;
}

// ---- fault injection ----

/** A transact request as the server received it (named-uuids not yet resolved). */
export interface TransactRequest {
  readonly ops: readonly Operation[];
  /** The tables the operations name, each once. */
  readonly tables: readonly string[];
}

/**
 * Which transact requests a fault applies to: a predicate, or fields that must all hold —
 * `table` and `op`: some operation has this table and/or this op; `comment`: some comment
 * operation contains this text or matches this pattern. Omitted: any transact.
 */
export type TransactMatcher =
  | ((req: TransactRequest) => boolean)
  | { table?: string; op?: Operation['op']; comment?: string | RegExp };

export type Fault =
  /** Commits (monitors are notified, this connection's included) but never replies; the connection stays open. */
  | { kind: 'commit-then-drop-reply' }
  /** Commits (other connections' monitors are notified), then closes this connection without replying. */
  | { kind: 'commit-then-disconnect' }
  /** Closes this connection without committing or replying. */
  | { kind: 'disconnect-before-commit' }
  /** Swallows the request: no commit, no reply, the connection stays open. */
  | { kind: 'drop-request' }
  /** Runs the operations, then fails the commit with this error (one result past the operations). */
  | { kind: 'fail-commit'; error?: string; details?: string }
  /** Commits at once, replies `ms` later. */
  | { kind: 'delay-reply'; ms: number };

export interface FaultOptions {
  /** Default: the next transact, whatever it holds. */
  match?: TransactMatcher;
  /** How many matching transacts it applies to (Infinity: until cancelled). Default 1. */
  times?: number;
}

/** What happened to a transact a fault (or a gate) applied to. */
export interface FaultOutcome {
  request: TransactRequest;
  /** Whether its changes are now in the tables. */
  committed: boolean;
  /** The results the server computed, sent or not; undefined when it never ran the operations. */
  results: unknown[] | undefined;
}

export interface ArmedFault {
  /** Resolves when the fault first applies: after the commit for the commit-* kinds. */
  readonly fired: Promise<FaultOutcome>;
  /** Every application so far, in order. */
  readonly outcomes: readonly FaultOutcome[];
  /** Disarms it (what it already did stays done). */
  cancel(): void;
}

/**
 * A transact held by the server. `before-commit`: received, not run yet; `before-reply` (default):
 * committed (monitors notified), its reply not sent yet.
 */
export interface TransactGate {
  /** Resolves when a matching transact reaches the gate. */
  readonly reached: Promise<FaultOutcome>;
  /** Resolves once the gate is done with it: replied, or its connection cut. */
  readonly done: Promise<FaultOutcome>;
  /**
   * Lets it go: commits (before-commit) and replies. Called early, the gate lets it through. A
   * before-commit transact whose connection died meanwhile is not run (as ovsdb-server drops a
   * closed session's pending requests).
   */
  release(): void;
  /** Cuts its connection instead: no reply, and no commit for a before-commit gate. */
  disconnect(): void;
  /** Disarms the gate if nothing reached it yet. */
  cancel(): void;
}

type Step = 'release' | 'disconnect';
type Action = Fault | { kind: 'hold'; at: 'before-commit' | 'before-reply'; gate: GateState };
interface GateState { decided: Promise<Step>; reached: (o: FaultOutcome) => void; done: (o: FaultOutcome) => void }
interface Armed { action: Action; match: TransactMatcher | undefined; left: number; record: (o: FaultOutcome) => void }

function settler<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => { resolve = r; });
  return { promise, resolve };
}

function requestMatches(m: TransactMatcher | undefined, req: TransactRequest): boolean {
  if (m === undefined) return true;
  if (typeof m === 'function') return m(req);
  const { table, op, comment } = m;
  if ((table !== undefined || op !== undefined)
    && !req.ops.some((o) => (table === undefined || ('table' in o && o.table === table)) && (op === undefined || o.op === op))) return false;
  if (comment !== undefined && !req.ops.some((o) => o.op === 'comment'
    && (typeof comment === 'string' ? o.comment.includes(comment) : comment.test(o.comment)))) return false;
  return true;
}

/**
 * Fault injection into the transact requests clients send (not into FakeOvsdbServer.apply()).
 * Each request gets at most one: the first armed fault or gate that matches it, in arming order.
 */
export class FakeFaults {
  private readonly queue: Armed[] = [];

  /** Number of faults and gates still armed. */
  get armed(): number { return this.queue.length; }

  /** Applies `fault` to the next matching transact (or the next `times` ones). */
  next(spec: Fault & FaultOptions): ArmedFault {
    const { match, times, ...fault } = spec as Fault & FaultOptions & Record<string, unknown>;
    const outcomes: FaultOutcome[] = [];
    const first = settler<FaultOutcome>();
    const armed: Armed = {
      action: fault as Fault, match, left: times ?? 1,
      record: (o) => { outcomes.push(o); first.resolve(o); },
    };
    this.queue.push(armed);
    return { fired: first.promise, outcomes, cancel: () => this.remove(armed) };
  }

  /** Holds the next matching transact at a gate the test opens (event-driven, no timers). */
  hold(match?: TransactMatcher, opts: { at?: 'before-commit' | 'before-reply' } = {}): TransactGate {
    const decided = settler<Step>();
    const reached = settler<FaultOutcome>();
    const done = settler<FaultOutcome>();
    const gate: GateState = { decided: decided.promise, reached: reached.resolve, done: done.resolve };
    const armed: Armed = { action: { kind: 'hold', at: opts.at ?? 'before-reply', gate }, match, left: 1, record: () => undefined };
    this.queue.push(armed);
    return {
      reached: reached.promise,
      done: done.promise,
      release: () => decided.resolve('release'),
      disconnect: () => decided.resolve('disconnect'),
      cancel: () => this.remove(armed),
    };
  }

  /** Disarms every fault and gate not yet applied. */
  clear(): void { this.queue.length = 0; }

  /** @internal The armed entry for this request, consumed by one. */
  take(req: TransactRequest): Armed | undefined {
    const a = this.queue.find((x) => requestMatches(x.match, req));
    if (a && --a.left <= 0) this.remove(a);
    return a;
  }

  private remove(a: Armed): void {
    const i = this.queue.indexOf(a);
    if (i >= 0) this.queue.splice(i, 1);
  }
}

// ---- schema model (RFC 7047 §3.2) ----

interface BaseModel { type: string; refTable?: string; weak: boolean }
interface ColumnModel { kind: Kind; key: BaseModel; value?: BaseModel; min: number; max: number; mutable: boolean }
interface TableModel { root: boolean; columns: Map<string, ColumnModel>; indexes: string[][]; maxRows: number }
type DbModel = Map<string, TableModel>;

function baseModel(b: unknown): BaseModel {
  if (typeof b === 'string') return { type: b, weak: false };
  const o = (b ?? {}) as { type?: string; refTable?: string; refType?: string };
  return { type: o.type ?? 'string', ...(o.refTable ? { refTable: o.refTable } : {}), weak: o.refType === 'weak' };
}

function modelOf(raw: unknown, shapes: DbSchema): DbModel {
  const tables = (raw as { tables?: Record<string, Record<string, unknown>> }).tables ?? {};
  const anyRoot = Object.values(tables).some((t) => t.isRoot === true);
  const out: DbModel = new Map();
  for (const [name, t] of Object.entries(tables)) {
    const columns = new Map<string, ColumnModel>();
    for (const [col, def] of Object.entries((t.columns ?? {}) as Record<string, { type?: unknown; mutable?: boolean }>)) {
      const ty = def.type;
      const o = (typeof ty === 'object' && ty !== null ? ty : { key: ty }) as { key?: unknown; value?: unknown; min?: unknown; max?: unknown };
      columns.set(col, {
        kind: shapes.get(name)?.get(col)?.kind ?? 'scalar',
        key: baseModel(o.key),
        ...(o.value !== undefined ? { value: baseModel(o.value) } : {}),
        min: typeof o.min === 'number' ? o.min : 1,
        max: o.max === 'unlimited' ? Infinity : typeof o.max === 'number' ? o.max : 1,
        mutable: def.mutable !== false,
      });
    }
    out.set(name, {
      root: !anyRoot || t.isRoot === true,
      columns,
      indexes: (t.indexes ?? []) as string[][],
      maxRows: typeof t.maxRows === 'number' ? t.maxRows : Infinity,
    });
  }
  return out;
}

class OpError extends Error {
  constructor(readonly error: string, readonly details: string) { super(`${error}: ${details}`); }
}

const json = (v: unknown): string => JSON.stringify(v);
const isTag = (v: Wire, tag: string): v is [string, Wire[]] => Array.isArray(v) && v[0] === tag;
/** Set or map members as wire atoms / [key, value] pairs; a bare atom is a one-element set (§5.1). */
const members = (v: Wire): Wire[] => (v === undefined ? [] : isTag(v, 'set') || isTag(v, 'map') ? v[1] : [v]);
const setWire = (items: Wire[]): Wire => (items.length === 1 ? items[0] : ['set', items]);
const uuidOf = (a: Wire): string | undefined => (isTag(a, 'uuid') ? String(a[1]) : undefined);
const NIL_UUID = '00000000-0000-0000-0000-000000000000';
const maxText = (n: number): string => (n === Infinity ? '4294967295' : String(n));

export class FakeOvsdbServer {
  readonly database: string;
  readonly socketPath: string;
  /** Table -> UUID -> row of wire values (no _uuid). Change through apply() to notify monitors. */
  tables: Tables = new Map();
  /** Called after each request has been answered, e.g. to make a change land right behind a reply. */
  afterReply: ((method: string) => void) | undefined;
  /** Every request received: method and params, in order. */
  readonly requests: { method: string; params: unknown }[] = [];
  /** Fault injection into client transactions. */
  readonly faults = new FakeFaults();
  private readonly dir: string;
  private readonly schema: DbSchema | undefined;
  private readonly model: DbModel | undefined;
  private server: Server | undefined;
  private readonly conns = new Set<Conn>();
  private echoes = new Map<string, () => void>();
  private echoSeq = 0;

  private constructor(private readonly opts: FakeOvsdbServerOptions) {
    this.database = opts.database ?? 'Open_vSwitch';
    this.schema = opts.schema === undefined ? undefined : parseSchema(opts.schema);
    this.model = opts.schema === undefined || this.schema === undefined ? undefined : modelOf(opts.schema, this.schema);
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
    this.faults.clear();
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
    this.faults.next({ kind: 'fail-commit', error, details });
  }

  /** The next transact gets no reply at all and is not committed (to test aborts and drops mid-request). */
  stallNextTransaction(): void {
    this.faults.next({ kind: 'drop-request' });
  }

  /** Decoded rows of a table, `_uuid` included. */
  rows(table: string): Row[] {
    return [...(this.tables.get(table) ?? new Map<string, WireRow>())].map(([id, r]) => decodeRow(id, r));
  }

  /**
   * Runs a transaction as if a client sent it, without faults (monitors are notified); returns
   * the results, an error included when it failed (then nothing changed).
   */
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
    if (conn.socket.destroyed) return;
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

  /** Cuts one connection: its monitors get nothing more. */
  private cut(conn: Conn): void {
    this.conns.delete(conn);
    conn.socket.destroy();
  }

  private handle(conn: Conn, msg: Record<string, unknown>): void {
    const { method, params, id } = msg as { method?: string; params: unknown[]; id: unknown };
    if (method === undefined) {
      if (typeof id === 'string') this.echoes.get(id)?.();
      return;
    }
    this.requests.push({ method, params });
    const reply = (result: unknown, error: unknown = null): void => {
      if (conn.socket.destroyed) return;
      this.send(conn, { id, result, error });
      this.afterReply?.(method);
    };
    switch (method) {
      case 'echo': return reply(params);
      case 'get_schema':
        return this.opts.schema ? reply(this.opts.schema) : reply(null, { error: 'unknown method' });
      case 'transact': {
        if (params[0] !== this.database) return reply(null, { error: 'unknown database', details: String(params[0]) });
        const ops = params.slice(1);
        const request: TransactRequest = {
          ops: ops as Operation[],
          tables: [...new Set(ops.map((o) => (o as { table?: unknown }).table).filter((t): t is string => typeof t === 'string'))],
        };
        const armed = this.faults.take(request);
        if (!armed) return reply(this.transact(ops));
        return this.inject(conn, armed, request, (results) => reply(results));
      }
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

  /** Runs a transact under a fault or gate. */
  private inject(conn: Conn, armed: Armed, request: TransactRequest, reply: (results: unknown[]) => void): void {
    const ops = request.ops as unknown[];
    const outcome = (results: unknown[] | undefined): FaultOutcome => ({ request, results, committed: results !== undefined && committed(results) });
    const a = armed.action;
    switch (a.kind) {
      case 'commit-then-drop-reply':
        return armed.record(outcome(this.transact(ops)));
      case 'commit-then-disconnect': {
        const results = this.transact(ops, { skip: conn });
        this.cut(conn);
        return armed.record(outcome(results));
      }
      case 'disconnect-before-commit':
        this.cut(conn);
        return armed.record(outcome(undefined));
      case 'drop-request':
        return armed.record(outcome(undefined));
      case 'fail-commit': {
        const results = this.transact(ops, { failCommit: { error: a.error ?? 'fake failure', details: a.details ?? 'injected by the test' } });
        reply(results);
        return armed.record(outcome(results));
      }
      case 'delay-reply': {
        const results = this.transact(ops);
        armed.record(outcome(results));
        setTimeout(() => reply(results), a.ms);
        return undefined;
      }
      case 'hold': {
        const { gate } = a;
        const early = a.at === 'before-reply' ? this.transact(ops) : undefined;
        gate.reached(outcome(early));
        void gate.decided.then((step) => {
          if (step === 'disconnect') this.cut(conn);
          // ovsdb-server drops what a closed session left pending: a request not run yet never runs.
          if (step === 'disconnect' || (early === undefined && conn.socket.destroyed)) {
            gate.done(outcome(early));
            return;
          }
          const results = early ?? this.transact(ops);
          reply(results);
          gate.done(outcome(results));
        });
        return undefined;
      }
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

  /**
   * Runs the operations on a copy of the tables, then the commit checks; commits only when all
   * succeed, notifying every connection's monitors (but `skip`'s).
   */
  private transact(ops: unknown[], opts: { skip?: Conn; failCommit?: { error: string; details: string } } = {}): unknown[] {
    const work: Tables = structuredClone(this.tables);
    const named = new Map<string, string>();
    const results: unknown[] = [];
    const fail = (e: unknown): unknown[] => {
      const err = e instanceof OpError ? e : new OpError('syntax error', `fake-ovsdb-server could not run it: ${(e as Error).message}`);
      results.push({ error: err.error, details: err.details });
      return results;
    };
    for (const op of ops as Record<string, unknown>[]) {
      const name = op.op === 'insert' ? op['uuid-name'] : undefined;
      if (typeof name === 'string' && !named.has(name)) named.set(name, randomUUID());
    }
    const inserted = new Set<string>();
    for (const op of ops as Record<string, unknown>[]) {
      try {
        const name = op.op === 'insert' ? op['uuid-name'] : undefined;
        if (typeof name === 'string') {
          if (inserted.has(name)) throw new OpError('duplicate uuid-name', 'This "uuid-name" appeared on an earlier "insert" operation.');
          inserted.add(name);
        }
        results.push(this.operate(work, resolveNamed(op, named) as Record<string, unknown>, named));
      } catch (e) {
        return fail(e);
      }
    }
    try {
      this.commitChecks(this.tables, work);
    } catch (e) {
      return fail(e);
    }
    if (opts.failCommit) {
      results.push(opts.failCommit);
      return results;
    }
    const changes = diffTables(this.tables, work);
    this.tables = work;
    for (const c of this.conns) if (c !== opts.skip) this.notify(c, changes);
    return results;
  }

  private operate(t: Tables, op: Record<string, unknown>, named: Map<string, string>): unknown {
    const table = op.table as string;
    if (op.table !== undefined && this.schema && !this.schema.has(table)) throw new OpError('syntax error', `No table named ${table}.`);
    const rows = t.get(table) ?? new Map<string, WireRow>();
    if (op.table !== undefined) t.set(table, rows);
    const where = (op.where ?? []) as unknown[];
    if (op.table !== undefined) this.checkWhere(table, where);
    const selected = (): [string, WireRow][] => [...rows].filter(([id, r]) => this.matches(table, id, r, where));
    switch (op.op) {
      case 'insert': {
        const row = op.row as WireRow;
        this.checkRow(table, row, 'insert');
        const id = named.get(op['uuid-name'] as string) ?? randomUUID();
        rows.set(id, { ...this.defaults(table), ...row });
        return { uuid: ['uuid', id] };
      }
      case 'select':
        this.checkColumns(table, op.columns);
        return { rows: selected().map(([id, r]) => project({ _uuid: ['uuid', id], ...r }, op.columns as string[] | undefined)) };
      case 'update': {
        const row = op.row as WireRow;
        this.checkRow(table, row, 'update');
        const hit = selected();
        for (const [, r] of hit) Object.assign(r, row);
        return { count: hit.length };
      }
      case 'mutate': {
        const mutations = op.mutations as [string, string, Wire][];
        for (const [col] of mutations) this.checkColumn(table, col, 'mutate');
        const hit = selected();
        for (const [, r] of hit) {
          for (const [col, mutator, arg] of mutations) {
            r[col] = mutate(r[col], mutator, arg, this.kind(table, col, r[col] ?? arg));
            this.checkSize(table, col, r[col], true);
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
        this.checkColumns(table, op.columns);
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

  // ---- schema checks while running operations ----

  private column(table: string, col: string): ColumnModel | undefined {
    const cols = this.model?.get(table)?.columns;
    if (!cols || col === '_uuid' || col === '_version') return undefined;
    const c = cols.get(col);
    if (!c) throw new OpError('unknown column', `No column ${col} in table ${table}.`);
    return c;
  }

  private checkColumn(table: string, col: string, verb: 'update' | 'mutate'): void {
    const c = this.column(table, col);
    if (c && !c.mutable) throw new OpError('constraint violation', `Cannot ${verb} immutable column ${col} in table ${table}.`);
  }

  private checkColumns(table: string, columns: unknown): void {
    if (!this.model || !Array.isArray(columns)) return;
    for (const col of columns as string[]) {
      if (col !== '_uuid' && col !== '_version' && !this.model.get(table)?.columns.has(col)) {
        throw new OpError('syntax error', `${col} is not a valid column name`);
      }
    }
  }

  private checkWhere(table: string, where: unknown[]): void {
    for (const c of where) if (Array.isArray(c)) this.column(table, c[0] as string);
  }

  private checkRow(table: string, row: WireRow, verb: 'insert' | 'update'): void {
    for (const [col, v] of Object.entries(row)) {
      if (verb === 'update') this.checkColumn(table, col, 'update');
      else this.column(table, col);
      this.checkSize(table, col, v, false);
    }
  }

  /** Element count within [min, max]: a syntax error in a given value, a constraint violation after a mutation. */
  private checkSize(table: string, col: string, v: Wire, mutated: boolean): void {
    const c = this.column(table, col);
    if (!c || c.kind === 'scalar') return;
    const n = members(v).length;
    if (n >= c.min && n <= c.max) return;
    if (mutated) throw new OpError('constraint violation', `Attempted to store ${n} elements in column ${col} of table ${table}, which takes ${c.min} to ${maxText(c.max)}.`);
    throw new OpError('syntax error', `set must have ${c.min} to ${maxText(c.max)} members but ${n} are present`);
  }

  // ---- commit (RFC 7047 §3.2 references, isRoot, maxRows, indexes) ----

  /** The references a column value holds: [target uuid, target table, weak]. */
  private refsOf(c: ColumnModel, v: Wire): [string, string, boolean][] {
    const out: [string, string, boolean][] = [];
    const add = (b: BaseModel | undefined, a: Wire): void => {
      const u = b?.refTable ? uuidOf(a) : undefined;
      if (u !== undefined && b?.refTable) out.push([u, b.refTable, b.weak]);
    };
    for (const m of members(v)) {
      if (c.value) {
        add(c.key, (m as Wire[])[0]);
        add(c.value, (m as Wire[])[1]);
      } else {
        add(c.key, m);
      }
    }
    return out;
  }

  /** Every reference-holding column of every row: [table, uuid, row, column name, column]. */
  private *refColumns(t: Tables): Generator<[string, string, WireRow, string, ColumnModel]> {
    for (const [table, rows] of t) {
      const cols = [...(this.model?.get(table)?.columns ?? [])].filter(([, c]) => c.key.refTable || c.value?.refTable);
      if (cols.length === 0) continue;
      for (const [id, row] of rows) for (const [name, c] of cols) yield [table, id, row, name, c];
    }
  }

  /**
   * What ovsdb-server checks and does before committing (ovsdb/transaction.c), in its order;
   * changes `work` (garbage collection, weak references) or throws the commit's OpError.
   */
  private commitChecks(before: Tables, work: Tables): void {
    const model = this.model;
    if (!model) return;
    const has = (t: Tables, table: string, id: string): boolean => t.get(table)?.has(id) ?? false;
    const changed = (table: string, id: string, row: WireRow): boolean => json(before.get(table)?.get(id)) !== json(row);

    // 1. Strong references from new or changed rows must point to existing rows.
    for (const [table, id, row, col, c] of this.refColumns(work)) {
      if (!changed(table, id, row)) continue;
      for (const [target, refTable, weak] of this.refsOf(c, row[col])) {
        if (weak || has(work, refTable, target)) continue;
        throw new OpError('referential integrity violation',
          `Table ${table} column ${col} row ${id} references nonexistent row ${target} in table ${refTable}.`);
      }
    }
    // 2. A deleted row may not remain strongly referenced.
    const inbound = this.strongCounts(work);
    for (const [table, rows] of before) {
      for (const id of rows.keys()) {
        const n = inbound.get(id) ?? 0;
        if (!has(work, table, id) && n > 0) {
          throw new OpError('referential integrity violation', `cannot delete ${table} row ${id} because of ${n} remaining reference(s)`);
        }
      }
    }
    // 3. Garbage collection: non-root rows without a strong reference from another row, cascading.
    const queue: [string, string][] = [];
    for (const [table, rows] of work) {
      if (model.get(table)?.root !== false) continue;
      for (const id of rows.keys()) if (!inbound.get(id)) queue.push([table, id]);
    }
    for (let item = queue.shift(); item; item = queue.shift()) {
      const [table, id] = item;
      const row = work.get(table)?.get(id);
      if (!row) continue;
      work.get(table)?.delete(id);
      for (const [col, c] of model.get(table)?.columns ?? []) {
        for (const [target, refTable, weak] of this.refsOf(c, row[col])) {
          if (weak || target === id) continue;
          const n = (inbound.get(target) ?? 0) - 1;
          inbound.set(target, n);
          if (n <= 0 && model.get(refTable)?.root === false && has(work, refTable, target)) queue.push([refTable, target]);
        }
      }
    }
    // 4. maxRows.
    for (const [table, rows] of work) {
      const max = model.get(table)?.maxRows ?? Infinity;
      if (rows.size > max) {
        throw new OpError('constraint violation',
          `transaction causes "${table}" table to contain ${rows.size} rows, greater than the schema-defined limit of ${max} row(s)`);
      }
    }
    // 5. Weak references to missing rows are removed; a column left below its minimum fails.
    for (const [table, id, row, col, c] of this.refColumns(work)) {
      const weakGone = (b: BaseModel | undefined, a: Wire): boolean => {
        const u = b?.refTable && b.weak ? uuidOf(a) : undefined;
        return u !== undefined && !has(work, b?.refTable as string, u);
      };
      const items = members(row[col]);
      const kept = items.filter((m) => (c.value ? !weakGone(c.key, (m as Wire[])[0]) && !weakGone(c.value, (m as Wire[])[1]) : !weakGone(c.key, m)));
      if (kept.length === items.length) continue;
      if (kept.length < c.min) {
        const inserted = !has(before, table, id);
        const zero = items.some((m) => !kept.includes(m) && json(m).includes(NIL_UUID));
        throw new OpError('constraint violation', zero && inserted
          ? `Weak reference column "${col}" in "${table}" row ${id} (inserted within this transaction) contained all-zeros UUID (probably as the default value for this column) but deleting this value caused a constraint volation because this column is not allowed to be empty.`
          : `Deletion of ${items.length - kept.length} weak reference(s) to deleted (or never-existing) rows from column "${col}" in "${table}" row ${id} ${inserted ? '(inserted within this transaction) ' : ''}caused this column to become empty, but constraints on this column disallow an empty column.`);
      }
      row[col] = c.value ? ['map', kept] : setWire(kept);
    }
    // 6. Unique indexes.
    for (const [table, rows] of work) {
      for (const index of model.get(table)?.indexes ?? []) {
        const seen = new Map<string, string>();
        for (const [id, row] of rows) {
          const key = json(index.map((col) => members(row[col]).map(json).sort()));
          const other = seen.get(key);
          if (other === undefined) {
            seen.set(key, id);
            continue;
          }
          const mine = changed(table, id, row);
          const theirs = changed(table, other, rows.get(other) as WireRow);
          if (!mine && !theirs) continue; // both as they were: not this transaction's doing
          const [first, second] = mine ? [id, other] : [other, id];
          const describe = (u: string): string => {
            const old = before.get(table)?.get(u);
            const now = rows.get(u) as WireRow;
            if (!old) return 'was inserted by this transaction.';
            if (json(old) === json(now)) return 'existed in the database before this transaction and was not modified by the transaction.';
            if (index.every((col) => json(old[col]) === json(now[col]))) {
              return 'existed in the database before this transaction, which modified some of the row\'s columns but not any columns in this index.';
            }
            return `had the following index values before the transaction: ${englishList(index.map((col) => datumText(old[col])))}.`;
          };
          throw new OpError('constraint violation',
            `Transaction causes multiple rows in "${table}" table to have identical values (${englishList(index.map((col) => datumText(row[col])))}) `
            + `for index on ${index.length === 1 ? 'column' : 'columns'} ${englishList(index.map((col) => `"${col}"`))}.  `
            + `First row, with UUID ${first}, ${describe(first)}  Second row, with UUID ${second}, ${describe(second)}`);
        }
      }
    }
  }

  /** Strong references each row receives from other rows. */
  private strongCounts(t: Tables): Map<string, number> {
    const counts = new Map<string, number>();
    for (const [, id, row, col, c] of this.refColumns(t)) {
      for (const [target, , weak] of this.refsOf(c, row[col])) {
        if (!weak && target !== id) counts.set(target, (counts.get(target) ?? 0) + 1);
      }
    }
    return counts;
  }

  // ---- shapes, conditions, monitors ----

  private kind(table: string, col: string, sample: Wire): Kind {
    const k = this.schema?.get(table)?.get(col)?.kind;
    if (k) return k;
    return isTag(sample, 'map') ? 'map' : isTag(sample, 'set') ? 'set' : 'scalar';
  }

  /** Column defaults (RFC 7047 §5.2.1): empty for min 0, else one default atom (a nil UUID for references). */
  private defaults(table: string): WireRow {
    const out: WireRow = {};
    for (const [col, t] of this.schema?.get(table) ?? []) {
      const min = this.model?.get(table)?.columns.get(col)?.min ?? (t.kind === 'scalar' ? 1 : 0);
      if (t.kind === 'map') out[col] = ['map', []];
      else if (min === 0) out[col] = ['set', []];
      else out[col] = t.key === 'integer' || t.key === 'real' ? 0 : t.key === 'boolean' ? false
        : t.key === 'uuid' ? ['uuid', NIL_UUID] : '';
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

/** A transact reply committed: no element carries an error (§4.1.3). */
function committed(results: unknown[]): boolean {
  return !results.some((r) => typeof r === 'object' && r !== null && 'error' in r);
}

/** ovsdb-server's rendering of a datum in error messages: bare words, quoted strings, [sets], {maps}. */
function datumText(v: Wire): string {
  const atom = (a: Wire): string => {
    if (isTag(a, 'uuid') || isTag(a, 'named-uuid')) return String(a[1]);
    if (typeof a === 'string') return /^[A-Za-z_][A-Za-z0-9_.-]*$/.test(a) && a !== 'true' && a !== 'false' ? a : json(a);
    return String(a);
  };
  if (isTag(v, 'map')) return `{${v[1].map((p) => `${atom((p as Wire[])[0])}=${atom((p as Wire[])[1])}`).join(', ')}}`;
  if (isTag(v, 'set')) return `[${v[1].map(atom).join(', ')}]`;
  return atom(v);
}

function englishList(items: string[]): string {
  if (items.length <= 1) return items.join('');
  if (items.length === 2) return `${items[0]} and ${items[1]}`;
  return `${items.slice(0, -1).join(', ')}, and ${items.at(-1)}`;
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
