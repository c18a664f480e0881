// Serializes work per key (sandbox id) while different keys run in parallel.

export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.tails.set(key, tail);
    try {
      return await run;
    } finally {
      // Drop the entry when nobody queued behind us, so the map does not grow with every pod.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  get size(): number { return this.tails.size; }
}
