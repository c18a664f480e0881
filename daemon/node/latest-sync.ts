// Applies the latest desired state, one pass at a time: a request made while a pass runs is
// folded into one more pass with whatever is latest by then, so bursts cost two passes at most
// and passes never overlap. A failed pass is reported; the next request tries again.

export class LatestSync<T> {
  #latest: T | undefined;
  #running: Promise<void> = Promise.resolve();
  #pending = false;
  #again = false;

  constructor(private readonly apply: (desired: T) => Promise<void>, private readonly onError: (e: unknown) => void) {}

  /** Resolves once a pass that saw `desired` (or something later) has ended. */
  request(desired: T): Promise<void> {
    this.#latest = desired;
    if (this.#pending) {
      this.#again = true;
      return this.#running;
    }
    this.#pending = true;
    this.#running = this.#running.then(async () => {
      do {
        this.#again = false;
        await this.apply(this.#latest as T);
      } while (this.#again);
    }).catch((e: unknown) => this.onError(e)).finally(() => { this.#pending = false; });
    return this.#running;
  }

  /** Resolves once no pass runs or is pending (passes requested meanwhile included). */
  async idle(): Promise<void> {
    while (this.#pending) await this.#running;
  }
}
