// List + watch of one resource collection, kept current forever: a paginated list, then a watch
// from the list's resourceVersion (bookmarks on), resumed from the last resourceVersion seen
// whenever the stream ends or breaks, and a new list when the server answers 410 Gone, whose
// difference against what was held is delivered as events (DELETED for what vanished meanwhile,
// MODIFIED only where the resourceVersion moved). So no change is lost or repeated across
// dropped connections and apiserver restarts. Failures back off exponentially with jitter and
// honour Retry-After; every wait is a timer or the stream itself, never a polling loop.
//
// Each object goes through the caller's projection as soon as it is parsed; only the projection's
// result (plus the key, uid and resourceVersion needed to diff) is kept, never the raw JSON.

import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeApi, KubeStatus } from './api';
import { Backoff, type BackoffOptions } from './backoff';
import { KubeGoneError, KubeStatusError, KubeTransportError, retryAfterMs } from './errors';
import { HeldObjects, isRecord, metaOf, type KubeRawObject, type ReflectorEvent } from './held-objects';
import type { KubeStreamApi } from './stream';

export { objectKey, type KubeRawObject, type ReflectorEvent, type ReflectorEventType } from './held-objects';

export type ReflectorHandler<S> = (event: ReflectorEvent<S>) => void;

/** What the reflector logs with: the daemon's pino logger fits. */
export interface KubeLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RetryInfo {
  phase: 'list' | 'watch';
  /** Consecutive failures, this one included. */
  failures: number;
  delayMs: number;
  error: Error;
}

export interface ReflectorOptions<S> {
  api: KubeApi & KubeStreamApi;
  /** Collection path: `/api/v1/pods`, `/apis/networking.k8s.io/v1/networkpolicies`, `/api/v1/namespaces/NS/pods`. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /**
   * Raw object to what is kept, or undefined to keep nothing of it (an object held before is then
   * reported DELETED). Items of a list carry no kind/apiVersion (the apiserver omits them), so a
   * projection must not depend on those. Called once per object version.
   */
  project: (raw: KubeRawObject) => S | undefined;
  /** Objects per list page (default 500, as client-go). */
  pageSize?: number;
  /** Server-side watch duration; default random in [300, 600) s so that nodes do not reconnect in step. */
  watchTimeoutSeconds?: number | (() => number);
  backoff?: BackoffOptions;
  /** A watch that stayed up this long counts as working even without events (default 10 s). */
  healthyAfterMs?: number;
  log?: KubeLogger;
  /** Called before each backoff wait (metrics, tests). */
  onRetry?: (info: RetryInfo) => void;
}

export interface ReflectorStats {
  lists: number;
  relists: number;
  watches: number;
  watchEvents: number;
  bookmarks: number;
  gone: number;
  errors: number;
}

export class Reflector<S> {
  readonly stats: ReflectorStats = { lists: 0, relists: 0, watches: 0, watchEvents: 0, bookmarks: 0, gone: 0, errors: 0 };
  readonly #opts: ReflectorOptions<S>;
  readonly #backoff: Backoff;
  readonly #held: HeldObjects<S>;
  readonly #handlers = new Set<ReflectorHandler<S>>();
  readonly #abort = new AbortController();
  readonly #synced: { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void };
  #rv: string | undefined;
  #isSynced = false;
  #justListed = false;
  #loop: Promise<void> | undefined;

  constructor(opts: ReflectorOptions<S>) {
    this.#opts = opts;
    this.#backoff = new Backoff(opts.backoff);
    this.#held = new HeldObjects<S>((raw, key) => this.#project(raw, key), (ev) => this.#emit(ev));
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => {}); // a reflector stopped before syncing must not leave an unhandled rejection
    this.#synced = { promise, resolve, reject };
  }

  /** Starts listing and watching (once); returns this. */
  start(): this {
    this.#loop ??= this.#run();
    return this;
  }

  /** Aborts the list, watch or wait in progress; resolves when the loop has ended. */
  async stop(): Promise<void> {
    this.#abort.abort(new Error('reflector stopped'));
    this.#synced.reject(new Error(`reflector for ${this.#opts.path} stopped before its first list completed`));
    await this.#loop;
  }

  /** True once the first full list has been delivered. */
  get synced(): boolean {
    return this.#isSynced;
  }

  /** Resolves after the first full list; rejects if the reflector is stopped first or `signal` aborts. */
  whenSynced(signal?: AbortSignal): Promise<void> {
    if (!signal) return this.#synced.promise;
    return Promise.race([
      this.#synced.promise,
      new Promise<never>((_, reject) => {
        if (signal.aborted) reject(signal.reason as Error);
        signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
      }),
    ]);
  }

  /** Where the next watch resumes; undefined before a list or after a 410. */
  get resourceVersion(): string | undefined {
    return this.#rv;
  }

  get size(): number {
    return this.#held.size;
  }

  get(key: string): S | undefined {
    return this.#held.get(key);
  }

  values(): IterableIterator<S> {
    return this.#held.values();
  }

  /** Events in order, synchronously as they are applied; a throwing handler is logged and skipped. */
  subscribe(handler: ReflectorHandler<S>): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      let phase: RetryInfo['phase'] = 'list';
      try {
        if (this.#rv === undefined) await this.#list(signal);
        phase = 'watch';
        await this.#watch(signal);
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof KubeGoneError) {
          this.stats.gone++;
          this.#rv = undefined;
          // Straight to a new list, unless the server refuses even the version it just listed at.
          if (phase === 'watch' && !this.#justListed) {
            this.#opts.log?.info({ path: this.#opts.path }, 'kube watch: resourceVersion too old, listing again');
            continue;
          }
        }
        const error = err instanceof Error ? err : new Error(String(err));
        const delayMs = this.#backoff.next(err instanceof KubeStatusError ? err.retryAfterMs : undefined);
        this.stats.errors++;
        this.#opts.onRetry?.({ phase, failures: this.#backoff.failures, delayMs, error });
        this.#opts.log?.warn({ path: this.#opts.path, phase, err: error.message, delayMs }, 'kube reflector: retrying');
        try {
          await sleep(delayMs, undefined, { signal });
        } catch {
          break;
        }
      }
    }
  }

  async #list(signal: AbortSignal): Promise<void> {
    const fresh = this.#held.startList();
    let listRv: string | undefined;
    let cont: string | undefined;
    // The first list is served from the apiserver's watch cache (resourceVersion=0, as client-go's
    // reflectors do): one answer, no etcd read of every page; at 5000 pods it took a sixth of the
    // time of ten consistent pages. It may be a moment behind etcd, which the watch that follows
    // from its version makes good. A list again (after 410 or an error) is a consistent read.
    const fromCache = !this.#isSynced;
    do {
      const query: Record<string, string> = { limit: String(this.#opts.pageSize ?? 500), ...this.#selectors() };
      // A server that pages it anyway hands a continue token, which carries the version itself.
      if (cont !== undefined) query.continue = cont;
      else if (fromCache) query.resourceVersion = '0';
      const res = await this.#opts.api.request<{ metadata?: { resourceVersion?: string; continue?: string }; items?: unknown[] }>({
        method: 'GET', path: this.#opts.path, query, signal,
      });
      // 410 here is an expired continue token: the whole list starts over after a backoff.
      if (res.status !== 200) throw new KubeStatusError(res.status, res.body, retryAfterMs(undefined, res.body));
      const page = res.body;
      listRv ??= page.metadata?.resourceVersion;
      // Each raw item is dropped once projected: with 5000 pods in one answer from the watch
      // cache, the raw objects would otherwise all stay reachable until the page is done.
      const items = page.items ?? [];
      for (let i = 0; i < items.length; i++) {
        fresh.add(items[i]);
        items[i] = undefined;
      }
      cont = page.metadata?.continue || undefined;
    } while (cont !== undefined);
    if (!listRv) throw new KubeTransportError(`list ${this.#opts.path}: answer without metadata.resourceVersion`, 'STREAM', false);
    if (this.stats.lists > 0) this.stats.relists++;
    this.stats.lists++;
    this.#held.replace(fresh);
    this.#rv = listRv;
    this.#justListed = true;
    if (!this.#isSynced) {
      this.#isSynced = true;
      this.#synced.resolve();
    }
  }

  async #watch(signal: AbortSignal): Promise<void> {
    const t = this.#opts.watchTimeoutSeconds;
    const timeoutSeconds = Math.max(1, Math.round(typeof t === 'function' ? t() : (t ?? 300 + Math.random() * 300)));
    const query: Record<string, string> = {
      watch: 'true',
      resourceVersion: this.#rv as string,
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(timeoutSeconds),
      ...this.#selectors(),
    };
    this.stats.watches++;
    const started = Date.now();
    const healthyAfterMs = this.#opts.healthyAfterMs ?? 10_000;
    let healthy = false;
    const markHealthy = (): void => {
      if (healthy) return;
      healthy = true;
      this.#backoff.reset();
    };
    const res = await this.#opts.api.stream({ path: this.#opts.path, query, signal, idleTimeoutMs: (timeoutSeconds + 60) * 1000 });
    if (res.status === 410) throw new KubeGoneError(res.body);
    if (res.status < 200 || res.status >= 300) throw new KubeStatusError(res.status, res.body, res.retryAfterMs);
    try {
      for await (const ev of res.events) {
        this.#onWatchEvent(ev);
        markHealthy();
      }
    } catch (err) {
      if (Date.now() - started >= healthyAfterMs) markHealthy();
      throw err;
    }
    // Ended by the server. After timeoutSeconds that is normal; at once, and empty, it is a
    // misbehaving server or proxy, which must not be reconnected to in a tight loop.
    if (!healthy && Date.now() - started < Math.min(healthyAfterMs, timeoutSeconds * 1000)) {
      throw new KubeTransportError(`watch ${this.#opts.path} ended after ${Date.now() - started} ms without an event`, 'STREAM', false);
    }
    markHealthy();
  }

  #onWatchEvent(ev: unknown): void {
    if (!isRecord(ev) || typeof ev.type !== 'string') {
      throw new KubeTransportError(`watch ${this.#opts.path}: an event without a type`, 'STREAM', false);
    }
    const obj = ev.object;
    switch (ev.type) {
      case 'ADDED':
      case 'MODIFIED':
        this.#held.upsert(obj);
        break;
      case 'DELETED':
        this.#held.delete(obj);
        break;
      case 'BOOKMARK':
        this.stats.bookmarks++;
        break;
      case 'ERROR': {
        const status = (isRecord(obj) ? obj : {}) as KubeStatus;
        if (status.code === 410) throw new KubeGoneError(obj);
        throw new KubeStatusError(status.code ?? 500, obj, retryAfterMs(undefined, obj));
      }
      default:
        this.#opts.log?.warn({ path: this.#opts.path, type: ev.type }, 'kube watch: unknown event type ignored');
    }
    const rv = metaOf(obj)?.rv;
    if (rv) this.#rv = rv;
    this.#justListed = false;
    if (ev.type !== 'BOOKMARK') this.stats.watchEvents++;
  }

  #project(raw: KubeRawObject, key: string): S | undefined {
    try {
      return this.#opts.project(raw);
    } catch (err) {
      // The caller's bug must not stop the watch of every other object.
      this.#opts.log?.error({ path: this.#opts.path, key, err: (err as Error).message }, 'kube reflector: projection failed, object skipped');
      return undefined;
    }
  }

  #emit(event: ReflectorEvent<S>): void {
    for (const handler of this.#handlers) {
      try {
        handler(event);
      } catch (err) {
        this.#opts.log?.error({ path: this.#opts.path, key: event.key, err: (err as Error).message }, 'kube reflector: event handler failed');
      }
    }
  }

  #selectors(): Record<string, string> {
    const q: Record<string, string> = {};
    if (this.#opts.labelSelector) q.labelSelector = this.#opts.labelSelector;
    if (this.#opts.fieldSelector) q.fieldSelector = this.#opts.fieldSelector;
    return q;
  }
}
