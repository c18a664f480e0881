// Registered table monitors and the cache they feed: what to ask the server for (RFC 7047 §4.1.5
// monitor, ovsdb-server(7) §4.1.12 monitor_cond), setting them up again on every new session with
// a full resync, and applying update/update2 notifications in the order the server meant.

import type { Logger } from 'pino';
import { OvsdbError } from '../../common/errors';
import { RowCache, type ColumnsByTable, type RowChange } from './cache';
import { deferred, type Deferred } from './deferred';
import type { JsonRpcPeer } from './jsonrpc';
import { parseSchema, type DbSchema } from './schema';
import type { MonitorTables } from './types';

/** An update or update2 notification held back until its monitor's initial reply is applied. */
interface QueuedUpdate {
  method: 'update' | 'update2';
  updates: unknown;
}

interface MonitorEntry {
  /** The monitor's <json-value>, unique among the session's monitors (§4.1.5). */
  readonly id: string;
  /** Always monitor_cond: its update2 carries diffs, where plain monitor resends whole rows. */
  readonly cond: boolean;
  /** The <monitor-requests> / <monitor-cond-requests> object sent to the server. */
  readonly request: Record<string, unknown>;
  readonly columns: ColumnsByTable;
  /** Session in which the server last accepted this monitor; 0 before the first time. */
  epoch: number;
  /** False from the request until its reply is in the cache: notifications are queued meanwhile. */
  live: boolean;
  backlog: QueuedUpdate[];
  /** Settles when the monitor is first established (or refused, or the client closes). */
  readonly ready: Deferred<void>;
}

function createEntry(id: string, tables: MonitorTables): MonitorEntry {
  // update2 diffs matter at scale: a pod joining a port group or address set of 2000 members
  // would otherwise bring back the whole set, old and new (measured: an ADD's NB transaction
  // 51 ms with monitor against 12 ms with monitor_cond on a 2000-pod NB).
  const cond = true;
  const request: Record<string, unknown> = {};
  const columns = new Map<string, readonly string[] | undefined>();
  for (const [table, spec] of Object.entries(tables)) {
    const req: Record<string, unknown> = {};
    if (spec.columns) req.columns = [...spec.columns];
    if (cond && spec.where) req.where = spec.where;
    // monitor_cond takes an array of requests per table; plain monitor accepts a single object.
    request[table] = cond ? [req] : req;
    columns.set(table, spec.columns ? [...spec.columns] : undefined);
  }
  const ready = deferred<void>();
  // Whoever called monitor() holds the promise; this keeps a rejection nobody awaits any more
  // (client closed before the first session) from being reported as unhandled.
  ready.promise.catch(() => undefined);
  return { id, cond, request, columns, epoch: 0, live: false, backlog: [], ready };
}

export class MonitorSet {
  readonly cache = new RowCache(() => this.schema);
  private readonly entries: MonitorEntry[] = [];
  private nextId = 1;
  private schema: DbSchema | undefined;
  private schemaFetch: { epoch: number; done: Promise<void> } | undefined;

  /** @param publish receives every row change the cache applied, in order */
  constructor(
    private readonly database: string,
    private readonly log: Logger,
    private readonly publish: (changes: RowChange[]) => void,
  ) {}

  isMonitored(table: string): boolean {
    return this.entries.some((m) => m.columns.has(table));
  }

  /** Adds a monitor; each table may belong to one monitor only, so the cache has one owner. */
  register(tables: MonitorTables): { id: string; ready: Promise<void> } {
    const taken = Object.keys(tables).filter((t) => this.isMonitored(t));
    if (taken.length > 0) throw new OvsdbError(`tables already monitored: ${taken.join(', ')}`);
    const entry = createEntry(`ovnode-${this.nextId++}`, tables);
    this.entries.push(entry);
    return { id: entry.id, ready: entry.ready.promise };
  }

  /**
   * Sets up every monitor not yet established in session `epoch`, including ones registered
   * while this runs. Rejects only when the connection fails.
   */
  async establishAll(peer: JsonRpcPeer, epoch: number): Promise<void> {
    for (;;) {
      const entry = this.entries.find((m) => m.epoch !== epoch);
      if (!entry || peer.closed) return;
      await this.establish(peer, entry.id, epoch);
    }
  }

  /** Sends one monitor request and replaces its tables in the cache with the initial rows. */
  async establish(peer: JsonRpcPeer, id: string, epoch: number): Promise<void> {
    const entry = this.entries.find((m) => m.id === id);
    if (!entry) return;
    await this.ensureSchema(peer, epoch);
    entry.live = false;
    entry.backlog = [];
    let initial: unknown;
    try {
      initial = await peer.request(entry.cond ? 'monitor_cond' : 'monitor', [this.database, entry.id, entry.request]);
    } catch (e) {
      if (peer.closed) throw e;
      // Refused (unknown table or column): a caller error that a retry would not fix.
      this.log.warn({ err: e, monitor: entry.id, tables: [...entry.columns.keys()] }, 'ovsdb monitor refused');
      this.entries.splice(this.entries.indexOf(entry), 1);
      for (const table of entry.columns.keys()) this.cache.dropTable(table);
      entry.ready.reject(e);
      return;
    }
    // The initial rows replace the cache wholesale (the full resync after a reconnect) and what
    // changed while the link was down comes out as row changes.
    const fresh = new RowCache(() => this.schema);
    if (entry.cond) fresh.applyUpdates2(initial, entry.columns);
    else fresh.applyUpdates(initial, entry.columns);
    this.publish(this.cache.replaceTables(entry.columns.keys(), fresh));
    entry.epoch = epoch;
    entry.live = true;
    for (const q of entry.backlog.splice(0)) this.apply(entry, q);
    entry.ready.resolve();
  }

  /** Handles an "update" (§4.1.6) or "update2" (ovsdb-server(7) §4.1.14) notification. */
  onNotification(method: string, params: unknown): void {
    if (method !== 'update' && method !== 'update2') return;
    const [monitorId, updates] = Array.isArray(params) ? params : [];
    const entry = this.entries.find((m) => m.id === monitorId);
    if (!entry) return;
    // The monitor reply is applied in a microtask after its dispatch, so an update read from the
    // same chunk would overtake it: hold such updates until the reply is in the cache.
    if (entry.live) this.apply(entry, { method, updates });
    else entry.backlog.push({ method, updates });
  }

  /** The session ended: notifications of the next one wait for their monitor's new reply. */
  disconnected(): void {
    for (const m of this.entries) m.live = false;
  }

  /** Fails the monitors never established (the client is closing). */
  rejectPending(err: Error): void {
    for (const m of this.entries) m.ready.reject(err);
  }

  private apply(entry: MonitorEntry, q: QueuedUpdate): void {
    this.publish(q.method === 'update2'
      ? this.cache.applyUpdates2(q.updates, entry.columns)
      : this.cache.applyUpdates(q.updates, entry.columns));
  }

  /** get_schema (§4.1.2) once per session: update2 diffs and omitted defaults need column types. */
  private ensureSchema(peer: JsonRpcPeer, epoch: number): Promise<void> {
    if (this.schemaFetch?.epoch === epoch) return this.schemaFetch.done;
    const done = peer.request('get_schema', [this.database]).then(
      (json) => {
        this.schema = parseSchema(json);
      },
      (e: unknown) => {
        if (peer.closed) throw e;
        this.log.warn({ err: e }, 'ovsdb get_schema failed; update2 diffs are applied without column types');
        this.schema = undefined;
      },
    );
    this.schemaFetch = { epoch, done };
    return done;
  }
}
