// Exponential backoff with jitter for reconnecting to the API server. The jitter matters at scale:
// after an apiserver restart every node's daemon reconnects, and without it they would all come
// back in the same instant, again and again.

export interface BackoffOptions {
  /** First delay (default 200 ms). */
  initialMs?: number;
  /** Ceiling (default 30 s). */
  maxMs?: number;
  /** Growth per consecutive failure (default 2). */
  factor?: number;
  /** Fraction of the delay taken away at random: 0.5 gives a delay in [d/2, d] (default 0.5). */
  jitter?: number;
  /** A server's Retry-After is honoured up to this (default 5 min). */
  maxRetryAfterMs?: number;
  /** [0, 1) source; tests pass a seeded one. */
  random?: () => number;
}

export class Backoff {
  readonly #initial: number;
  readonly #max: number;
  readonly #factor: number;
  readonly #jitter: number;
  readonly #maxRetryAfter: number;
  readonly #random: () => number;
  #failures = 0;

  constructor(opts: BackoffOptions = {}) {
    this.#initial = opts.initialMs ?? 200;
    this.#max = opts.maxMs ?? 30_000;
    this.#factor = opts.factor ?? 2;
    this.#jitter = Math.min(1, Math.max(0, opts.jitter ?? 0.5));
    this.#maxRetryAfter = opts.maxRetryAfterMs ?? 300_000;
    this.#random = opts.random ?? Math.random;
  }

  /** Consecutive failures since the last reset. */
  get failures(): number {
    return this.#failures;
  }

  /** Records a failure and returns how long to wait before the next attempt. */
  next(retryAfterMs?: number): number {
    const base = Math.min(this.#max, this.#initial * this.#factor ** this.#failures);
    this.#failures++;
    const delay = base * (1 - this.#jitter * this.#random());
    if (retryAfterMs === undefined) return Math.round(delay);
    return Math.round(Math.max(delay, Math.min(retryAfterMs, this.#maxRetryAfter)));
  }

  reset(): void {
    this.#failures = 0;
  }
}
