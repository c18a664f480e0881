// A keyed read view over a reflector (namespace/name -> projected object) with change listeners
// and waitFor: a CNI ADD can arrive before its pod reached the cache (the watch is a little behind
// the scheduler's binding), so it waits, bounded, for the event that makes the pod acceptable,
// as OVN-Kubernetes does for up to a second. The wait is woken by the event itself; nothing polls.

import { objectKey, type KubeLogger, type ReflectorEvent, type ReflectorHandler } from './reflector';

/** What a cache reads from: a Reflector, or anything that delivers its events the same way. */
export interface CacheSource<S> {
  readonly synced: boolean;
  whenSynced(signal?: AbortSignal): Promise<void>;
  get(key: string): S | undefined;
  values(): IterableIterator<S>;
  subscribe(handler: ReflectorHandler<S>): () => void;
}

export interface WaitForOptions {
  /** Give up after this long: the promise then resolves undefined. */
  timeoutMs: number;
  /** Aborting rejects the promise with the signal's reason. */
  signal?: AbortSignal;
}

interface Waiter<S> {
  predicate: (obj: S) => boolean;
  settle: (value: S | undefined, error?: unknown) => void;
}

export class KubeCache<S> {
  readonly #source: CacheSource<S>;
  readonly #listeners = new Set<ReflectorHandler<S>>();
  readonly #waiters = new Map<string, Set<Waiter<S>>>();
  readonly #unsubscribe: () => void;
  readonly #log: KubeLogger | undefined;
  #closed = false;

  constructor(source: CacheSource<S>, opts: { log?: KubeLogger } = {}) {
    this.#source = source;
    this.#log = opts.log;
    this.#unsubscribe = source.subscribe((ev) => this.#onEvent(ev));
  }

  get synced(): boolean {
    return this.#source.synced;
  }

  whenSynced(signal?: AbortSignal): Promise<void> {
    return this.#source.whenSynced(signal);
  }

  /** By key (`namespace/name`, or `name` for cluster-scoped objects). */
  get(key: string): S | undefined {
    return this.#source.get(key);
  }

  /** By namespace and name; an empty or absent namespace means cluster-scoped. */
  getIn(namespace: string | undefined, name: string): S | undefined {
    return this.#source.get(objectKey(namespace, name));
  }

  list(filter?: (obj: S) => boolean): S[] {
    const out: S[] = [];
    for (const obj of this.#source.values()) if (!filter || filter(obj)) out.push(obj);
    return out;
  }

  /** Every change, in order, after the cache reflects it. A throwing listener does not stop the others. */
  onChange(listener: ReflectorHandler<S>): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * The object under `key` once `predicate` holds for it: at once if it already does, else at
   * the first event that makes it so. Resolves undefined at the timeout; rejects if `signal`
   * aborts, the predicate throws, or the cache is closed.
   */
  waitFor(key: string, predicate: (obj: S) => boolean, opts: WaitForOptions): Promise<S | undefined> {
    if (this.#closed) return Promise.reject(new Error('kube cache closed'));
    const { signal } = opts;
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    try {
      const current = this.#source.get(key);
      if (current !== undefined && predicate(current)) return Promise.resolve(current);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return new Promise<S | undefined>((resolve, reject) => {
      const waiters = this.#waiters.get(key) ?? new Set<Waiter<S>>();
      this.#waiters.set(key, waiters);
      const onAbort = (): void => waiter.settle(undefined, signal?.reason ?? new Error('aborted'));
      const timer = setTimeout(() => waiter.settle(undefined), opts.timeoutMs);
      const waiter: Waiter<S> = {
        predicate,
        settle: (value, error) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          waiters.delete(waiter);
          if (waiters.size === 0 && this.#waiters.get(key) === waiters) this.#waiters.delete(key);
          if (error !== undefined) reject(error as Error);
          else resolve(value);
        },
      };
      waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Number of pending waitFor calls (metrics, tests). */
  get waiting(): number {
    let n = 0;
    for (const set of this.#waiters.values()) n += set.size;
    return n;
  }

  /** Stops listening to the source; pending waits reject. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    for (const set of [...this.#waiters.values()]) {
      for (const w of [...set]) w.settle(undefined, new Error('kube cache closed'));
    }
    this.#listeners.clear();
  }

  #onEvent(ev: ReflectorEvent<S>): void {
    const waiters = this.#waiters.get(ev.key);
    if (waiters && ev.type !== 'DELETED') {
      for (const w of [...waiters]) {
        let ok: boolean;
        try {
          ok = w.predicate(ev.object);
        } catch (err) {
          w.settle(undefined, err);
          continue;
        }
        if (ok) w.settle(ev.object);
      }
    }
    for (const listener of this.#listeners) {
      try {
        listener(ev);
      } catch (err) {
        // A listener's failure is its own; the others and the reflector go on.
        this.#log?.error({ key: ev.key, err: (err as Error).message }, 'kube cache: change listener failed');
      }
    }
  }
}
