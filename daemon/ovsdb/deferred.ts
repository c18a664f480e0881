// Promise plumbing shared by the client: settle-once deferreds and AbortSignal wiring.

/** A promise with its settle functions; settling twice is a no-op. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
  settled: boolean;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const d: Deferred<T> = {
    promise,
    settled: false,
    resolve: (v) => {
      if (d.settled) return;
      d.settled = true;
      resolve(v);
    },
    reject: (e) => {
      if (d.settled) return;
      d.settled = true;
      reject(e);
    },
  };
  return d;
}

/** The deferred's promise, rejected with the signal's reason on abort (then `cleanup` runs). */
export function withAbort<T>(d: Deferred<T>, signal: AbortSignal | undefined, cleanup: () => void): Promise<T> {
  if (!signal) return d.promise;
  const onAbort = (): void => {
    cleanup();
    d.reject(signal.reason);
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return d.promise.finally(() => signal.removeEventListener('abort', onAbort));
}
