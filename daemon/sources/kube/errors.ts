// Failures of the Kubernetes client layer as classes, so callers branch on a type and a code,
// never on a message. A status the caller should judge (404, 409, ...) is not an error at the
// KubeApi seam; these are for what the seam cannot answer and for the watch machinery.

/** The API server could not be asked, or its answer was lost. */
export class KubeTransportError extends Error {
  override readonly name: string = 'KubeTransportError';
  constructor(
    message: string,
    /** The socket error code (ECONNREFUSED, ECONNRESET, ...), or TIMEOUT / STREAM. */
    readonly code: string,
    /** True when the request may have been applied even though no answer came (never for a refused connection). */
    readonly outcomeUnknown: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** An answer that ends a list or a watch: a non-2xx status, or a watch ERROR event. */
export class KubeStatusError extends Error {
  override readonly name: string = 'KubeStatusError';
  constructor(
    readonly status: number,
    readonly body: unknown,
    /** From Retry-After or the Status's details.retryAfterSeconds (429, some 5xx). */
    readonly retryAfterMs?: number,
  ) {
    super(`API server answered ${status}${statusMessage(body)}`);
  }
}

/** 410 Gone: the resourceVersion asked for is compacted away; only a new list helps. */
export class KubeGoneError extends KubeStatusError {
  override readonly name: string = 'KubeGoneError';
  constructor(body: unknown) {
    super(410, body);
  }
}

/** Configuration that cannot work: missing in-cluster files or env, an unusable kubeconfig. */
export class KubeConfigError extends Error {
  override readonly name: string = 'KubeConfigError';
}

function statusMessage(body: unknown): string {
  if (body && typeof body === 'object') {
    const { reason, message } = body as { reason?: unknown; message?: unknown };
    const parts = [reason, message].filter((p): p is string => typeof p === 'string' && p !== '');
    if (parts.length > 0) return `: ${parts.join(': ')}`;
  }
  return '';
}

/**
 * How long the server asked us to wait: the Retry-After header (seconds or an HTTP date) or the
 * apiserver's `details.retryAfterSeconds`, which it puts in every 429 Status it writes.
 */
export function retryAfterMs(header: string | string[] | undefined, body: unknown, now = Date.now()): number | undefined {
  const h = Array.isArray(header) ? header[0] : header;
  if (h !== undefined && h.trim() !== '') {
    const seconds = Number(h);
    if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
    const at = Date.parse(h);
    if (!Number.isNaN(at)) return Math.max(0, at - now);
  }
  if (body && typeof body === 'object') {
    const details = (body as { details?: { retryAfterSeconds?: unknown } }).details;
    const s = details?.retryAfterSeconds;
    if (typeof s === 'number' && Number.isFinite(s) && s >= 0) return s * 1000;
  }
  return undefined;
}
