// OVSDB client (RFC 7047) over a unix socket: transactions, table monitors kept in a cache, and
// automatic reconnection with a full monitor resync. One instance per database (Open_vSwitch,
// OVN_Northbound); the daemon keeps it open for its whole life.

import { EventEmitter } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import pino, { type Logger } from 'pino';
import { OvsdbError, OvsdbUnavailableError } from '../../common/errors';
import type { RowChange } from './cache';
import { deferred, withAbort, type Deferred } from './deferred';
import { JsonRpcPeer } from './jsonrpc';
import { MonitorSet } from './monitors';
import { checkTransactResult } from './result';
import type { Condition, MonitorTables, Operation, OperationResult } from './types';
import { decodeRow, type Row } from './values';

export interface OvsdbClientOptions {
  socketPath: string;
  /** Database name as in the schema: Open_vSwitch, OVN_Northbound... */
  database: string;
  logger?: Logger;
  /** First reconnect delay; doubles after each failed attempt up to 2 s. Default 50 ms. */
  reconnectDelayMs?: number;
  /**
   * How long a transaction may wait for its reply before the connection is considered broken
   * and recycled (pending requests then fail with an unknown outcome). Default 30 s.
   */
  replyTimeoutMs?: number;
}

/** Event signatures of OvsdbClient. */
export interface OvsdbClientEvents {
  change: [table: string, uuid: string, oldRow: Row | undefined, newRow: Row | undefined];
  connected: [];
  disconnected: [cause?: Error];
  reconnect: [count: number];
}

type State = 'idle' | 'connecting' | 'connected' | 'backoff' | 'closed';

interface RowWaiter {
  table: string;
  predicate: (row: Row) => boolean;
  done: Deferred<Row>;
}

const MAX_RECONNECT_DELAY_MS = 2000;

export class OvsdbClient extends EventEmitter<OvsdbClientEvents> {
  private readonly log: Logger;
  private readonly initialDelayMs: number;
  private readonly replyTimeoutMs: number;
  private delayMs: number;
  private state: State = 'idle';
  private peer: JsonRpcPeer | undefined;
  /** Incremented for every socket opened; monitors remember the epoch they were set up in. */
  private epoch = 0;
  private everConnected = false;
  private reconnectCount = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly monitors: MonitorSet;
  private readonly connectWaiters = new Set<Deferred<void>>();
  private readonly rowWaiters = new Set<RowWaiter>();

  constructor(private readonly opts: OvsdbClientOptions) {
    super();
    this.log = (opts.logger ?? pino({ enabled: false })).child({ ovsdb: opts.database });
    this.initialDelayMs = opts.reconnectDelayMs ?? 50;
    this.replyTimeoutMs = opts.replyTimeoutMs ?? 30_000;
    this.delayMs = this.initialDelayMs;
    this.monitors = new MonitorSet(opts.database, this.log, (changes) => this.publish(changes));
  }

  get connected(): boolean {
    return this.state === 'connected';
  }

  /** Successful reconnections after an unexpected connection loss (exported as a metric). */
  get reconnects(): number {
    return this.reconnectCount;
  }

  /**
   * Resolves once connected and the registered monitors are established. Keeps retrying with
   * backoff while the server is absent; aborting stops the wait (rejecting with the signal's
   * reason), not the connection attempts: close() does that.
   */
  connect(signal?: AbortSignal): Promise<void> {
    if (this.state === 'closed') return Promise.reject(new OvsdbError('OVSDB client is closed'));
    if (this.state === 'connected') return Promise.resolve();
    const d = deferred<void>();
    this.connectWaiters.add(d);
    const p = withAbort(d, signal, () => this.connectWaiters.delete(d));
    if (this.state === 'idle') this.attempt();
    return p;
  }

  /**
   * One transaction (RFC 7047 §4.1.3); any failed operation or commit rejects with OvsdbError.
   * Deliberately not abortable: once sent, a transaction may commit whatever the caller does, so
   * the caller always gets its real outcome, or OvsdbOutcomeUnknownError when the connection
   * died (or the reply is overdue, which recycles the connection) before the reply came. Not
   * connected: OvsdbUnavailableError, and nothing was sent.
   */
  async transact(ops: Operation[]): Promise<OperationResult[]> {
    const peer = this.livePeer('transact');
    const timer = setTimeout(() => {
      this.log.error({ timeoutMs: this.replyTimeoutMs }, 'ovsdb reply overdue, recycling the connection');
      void peer.close();
    }, this.replyTimeoutMs);
    try {
      return checkTransactResult(ops, await peer.request('transact', [this.opts.database, ...ops]));
    } finally {
      clearTimeout(timer);
    }
  }

  /** Selects rows with one transaction and decodes them; `_uuid` is always included. */
  async select(table: string, where: Condition[] = [], columns?: string[]): Promise<Row[]> {
    const cols = columns && !columns.includes('_uuid') ? [...columns, '_uuid'] : columns;
    const [res] = await this.transact([{ op: 'select', table, where, ...(cols ? { columns: cols } : {}) }]);
    return (res?.rows ?? []).map((r) => decodeRow(String((r._uuid as [string, string])[1]), r));
  }

  /**
   * Registers a monitor on the given tables, each table at most once per client. Resolves when the
   * server has sent the initial rows into the cache (or, if not connected yet, when it first
   * does); rejects when the server refuses it. Re-established on every reconnect.
   */
  monitor(tables: MonitorTables): Promise<void> {
    if (this.state === 'closed') return Promise.reject(new OvsdbError('OVSDB client is closed'));
    let registered: { id: string; ready: Promise<void> };
    try {
      registered = this.monitors.register(tables);
    } catch (e) {
      return Promise.reject(e);
    }
    const peer = this.peer;
    // While connecting, the session set-up picks the new monitor up; a connection lost in the
    // middle of this request leaves it to the next session.
    if (this.state === 'connected' && peer) {
      this.monitors.establish(peer, registered.id, this.epoch).catch(() => undefined);
    }
    return registered.ready;
  }

  /** Cached rows of a monitored table, keyed by UUID (stale while disconnected). */
  rows(table: string): ReadonlyMap<string, Row> {
    return this.monitors.cache.rows(table);
  }

  /** First cached row of a monitored table matching `predicate`, now or when an update brings one. */
  waitFor(table: string, predicate: (row: Row) => boolean, signal?: AbortSignal): Promise<Row> {
    if (this.state === 'closed') return Promise.reject(new OvsdbError('OVSDB client is closed'));
    if (!this.monitors.isMonitored(table)) return Promise.reject(new OvsdbError(`waitFor: table ${table} is not monitored`));
    if (signal?.aborted) return Promise.reject(signal.reason);
    for (const row of this.monitors.cache.rows(table).values()) if (predicate(row)) return Promise.resolve(row);
    const waiter: RowWaiter = { table, predicate, done: deferred<Row>() };
    this.rowWaiters.add(waiter);
    return withAbort(waiter.done, signal, () => this.rowWaiters.delete(waiter));
  }

  /** Round trip to the server (RFC 7047 §4.1.11). */
  async echo(): Promise<void> {
    await this.livePeer('echo').request('echo', []);
  }

  /** Closes the connection for good: no reconnect, pending requests and waits reject. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    clearTimeout(this.timer);
    const err = new OvsdbError('OVSDB client closed');
    for (const d of this.connectWaiters) d.reject(err);
    for (const w of this.rowWaiters) w.done.reject(err);
    this.monitors.rejectPending(err);
    this.connectWaiters.clear();
    this.rowWaiters.clear();
    const peer = this.peer;
    this.peer = undefined;
    await peer?.close();
    if (wasConnected) this.emit('disconnected');
  }

  private livePeer(method: string): JsonRpcPeer {
    if (this.state !== 'connected' || !this.peer) {
      throw new OvsdbUnavailableError(`${method}: not connected to ${this.opts.socketPath}`);
    }
    return this.peer;
  }

  /** A method, not an inline test, so that TypeScript does not narrow `state` across awaits. */
  private isClosed(): boolean {
    return this.state === 'closed';
  }

  private attempt(): void {
    this.state = 'connecting';
    this.openSession().catch((e: unknown) => {
      if (this.state === 'closed') return;
      this.peer?.close().catch(() => undefined);
      this.peer = undefined;
      this.log.debug({ err: e, delayMs: this.delayMs }, 'ovsdb connection attempt failed');
      this.scheduleRetry();
    });
  }

  private scheduleRetry(): void {
    this.state = 'backoff';
    const delay = this.delayMs;
    this.delayMs = Math.min(this.delayMs * 2, Math.max(MAX_RECONNECT_DELAY_MS, this.initialDelayMs));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.state === 'backoff') this.attempt();
    }, delay);
  }

  private async openSession(): Promise<void> {
    const socket = await dial(this.opts.socketPath);
    if (this.state === 'closed') {
      socket.destroy();
      return;
    }
    const peer = new JsonRpcPeer(socket, this.log);
    this.peer = peer;
    this.epoch++;
    peer.on('request', (method: string, params: unknown, id: unknown) => this.onRequest(peer, method, params, id));
    peer.on('notification', (method: string, params: unknown) => this.monitors.onNotification(method, params));
    peer.on('close', (cause?: Error) => this.onPeerClose(peer, cause));
    await this.monitors.establishAll(peer, this.epoch);
    if (this.isClosed()) return;
    if (peer.closed) throw new OvsdbError('connection closed while setting up monitors');
    this.state = 'connected';
    this.delayMs = this.initialDelayMs;
    if (this.everConnected) {
      this.reconnectCount++;
      this.log.info({ reconnects: this.reconnectCount }, 'ovsdb reconnected');
      this.emit('reconnect', this.reconnectCount);
    }
    this.everConnected = true;
    for (const d of this.connectWaiters) d.resolve();
    this.connectWaiters.clear();
    this.emit('connected');
  }

  private onPeerClose(peer: JsonRpcPeer, cause?: Error): void {
    if (peer !== this.peer) return;
    this.peer = undefined;
    this.monitors.disconnected();
    // During set-up the failing request makes openSession() reject, which schedules the retry.
    if (this.state !== 'connected') return;
    this.log.warn({ err: cause }, 'ovsdb connection lost, reconnecting');
    this.emit('disconnected', cause);
    this.scheduleRetry();
  }

  private onRequest(peer: JsonRpcPeer, method: string, params: unknown, id: unknown): void {
    // ovsdb-server probes idle connections with echo (§4.1.11) and drops them without an answer.
    if (method === 'echo') peer.reply(id, params);
    else peer.reply(id, null, { error: 'unknown method', details: method });
  }

  private publish(changes: RowChange[]): void {
    for (const c of changes) {
      this.emit('change', c.table, c.uuid, c.old, c.new);
      if (!c.new) continue;
      for (const w of this.rowWaiters) {
        if (w.table !== c.table) continue;
        try {
          if (!w.predicate(c.new)) continue;
          w.done.resolve(c.new);
        } catch (e) {
          w.done.reject(e);
        }
        this.rowWaiters.delete(w);
      }
    }
  }
}

function dial(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    s.once('error', reject);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}
