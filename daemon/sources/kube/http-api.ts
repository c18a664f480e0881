// The real KubeApi: JSON over node:https (node:http for an http URL: tests, a local proxy) with
// one keep-alive agent, bounded request time, credentials from a KubeConnection, and the streaming
// GET that watches read. Bodies stay plain parsed JSON: typed client models would cost memory and
// time for 5000 pods and buy nothing, since every consumer projects what it needs.
//
// Retries inside request() are limited to what cannot apply a change twice: a connection that was
// refused (nothing reached the server), a 429 (the server did not process it; its Retry-After is
// honoured), a 401 once after re-reading credentials, and for GET also a cut connection or a 5xx.
// Everything else comes back to the caller, which knows whether its write can be repeated.

import http from 'node:http';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeApi, KubeRequest, KubeResponse } from './api';
import { Backoff, type BackoffOptions } from './backoff';
import type { KubeConnection, KubeCredentials } from './config';
import { KubeTransportError, retryAfterMs } from './errors';
import { ndjson, type KubeStreamApi, type KubeStreamRequest, type KubeStreamResponse } from './stream';

export interface HttpKubeApiOptions {
  /** Longest one request() may take, retries included (default 30 s). Watches have their own idle limit. */
  requestTimeoutMs?: number;
  /** Delays between the retries request() makes itself (default 100 ms growing to 2 s). */
  retry?: BackoffOptions;
  userAgent?: string;
  /** Sockets per server; every watch holds one for its lifetime (default 64). */
  maxSockets?: number;
  /** An idle pooled socket is closed after this, before a middlebox drops it silently (default 30 s). */
  idleSocketMs?: number;
}

interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** Connection-phase failures: the request never reached the server, so any method may be repeated. */
const NOT_SENT = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EADDRNOTAVAIL']);
/** A connection lost mid-request: worth another try for a GET. TLS verification failures are not. */
const CUT = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ETIMEDOUT']);

export class HttpKubeApi implements KubeApi, KubeStreamApi {
  readonly #conn: KubeConnection;
  readonly #timeoutMs: number;
  readonly #retry: BackoffOptions;
  readonly #userAgent: string;
  readonly #maxSockets: number;
  readonly #idleSocketMs: number;
  readonly #base: string;
  #agent: http.Agent | undefined;
  #agentTlsId: string | undefined;
  #closed = false;

  constructor(conn: KubeConnection, opts: HttpKubeApiOptions = {}) {
    this.#conn = conn;
    this.#timeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.#retry = { initialMs: 100, maxMs: 2_000, ...opts.retry };
    this.#userAgent = opts.userAgent ?? 'ovnoded';
    this.#maxSockets = opts.maxSockets ?? 64;
    this.#idleSocketMs = opts.idleSocketMs ?? 30_000;
    // A server URL may carry a path prefix (an authenticating proxy in front of the apiserver).
    this.#base = conn.server.origin + conn.server.pathname.replace(/\/+$/, '');
  }

  async request<T = unknown>(req: KubeRequest): Promise<KubeResponse<T>> {
    const deadline = Date.now() + this.#timeoutMs;
    const backoff = new Backoff(this.#retry);
    const body = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
    let reauthenticated = false;
    for (;;) {
      let wait: number;
      try {
        const answer = await this.#once(req, body, deadline);
        if (answer.status === 401 && !reauthenticated) {
          reauthenticated = true;
          this.#conn.invalidate();
          continue;
        }
        if (answer.status === 401) this.#conn.invalidate();
        const parsed = parseBody(answer);
        if (!retryableStatus(req.method, answer.status)) return { status: answer.status, body: parsed as T };
        wait = backoff.next(retryAfterMs(answer.headers['retry-after'], parsed));
        if (Date.now() + wait >= deadline) return { status: answer.status, body: parsed as T };
      } catch (err) {
        if (!(err instanceof KubeTransportError) || !retryableError(req.method, err)) throw err;
        wait = backoff.next();
        if (Date.now() + wait >= deadline) throw err;
      }
      await sleep(wait, undefined, req.signal ? { signal: req.signal } : {});
    }
  }

  async stream(req: KubeStreamRequest): Promise<KubeStreamResponse> {
    const creds = await this.#conn.credentials();
    const agent = this.#agentFor(creds);
    const url = this.#url(req.path, req.query);
    const idleMs = req.idleTimeoutMs ?? 360_000;
    return new Promise<KubeStreamResponse>((resolve, reject) => {
      let cause: Error | undefined;
      const r = this.#module().request(url, { method: 'GET', agent, headers: this.#headers(creds) }, (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          resolve({ status, events: this.#events(res, r, () => cause) });
          return;
        }
        if (status === 401) this.#conn.invalidate();
        readAll(res).then(
          (buf) => {
            const body = parseBody({ status, headers: res.headers, body: buf });
            const after = retryAfterMs(res.headers['retry-after'], body);
            resolve({ status, body, ...(after !== undefined ? { retryAfterMs: after } : {}), events: emptyEvents() });
          },
          (err: unknown) => reject(transportError(cause ?? err, 'GET')),
        );
      });
      r.setTimeout(idleMs, () => {
        cause = new KubeTransportError(`watch ${req.path}: no data for ${idleMs} ms`, 'TIMEOUT', false);
        r.destroy(cause);
      });
      const onAbort = (): void => {
        cause = abortReason(req.signal);
        r.destroy(cause);
      };
      if (req.signal?.aborted) onAbort();
      req.signal?.addEventListener('abort', onAbort, { once: true });
      r.once('close', () => req.signal?.removeEventListener('abort', onAbort));
      // Stays attached after the response: a later socket error surfaces through the iterator.
      r.on('error', (err) => reject(cause === undefined ? transportError(err, 'GET') : cause));
      r.end();
    });
  }

  /** Closes every pooled and open connection (watches included). */
  close(): void {
    this.#closed = true;
    this.#agent?.destroy();
    this.#agent = undefined;
  }

  async *#events(res: http.IncomingMessage, r: http.ClientRequest, cause: () => Error | undefined): AsyncGenerator<unknown, void, undefined> {
    let clean = false;
    try {
      yield* ndjson(res);
      if (!res.complete) throw new KubeTransportError('watch connection closed before the stream ended', 'ECONNRESET', false);
      clean = true;
    } catch (err) {
      throw cause() ?? transportError(err, 'GET');
    } finally {
      // A consumer that stops early must not leave the socket streaming into nothing.
      if (!clean) r.destroy();
    }
  }

  #once(req: KubeRequest, body: Buffer | undefined, deadline: number): Promise<RawAnswer> {
    return this.#conn.credentials().then((creds) => new Promise<RawAnswer>((resolve, reject) => {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        reject(new KubeTransportError(`${req.method} ${req.path}: timed out`, 'TIMEOUT', req.method !== 'GET'));
        return;
      }
      const headers = this.#headers(creds);
      if (body !== undefined) {
        headers['Content-Type'] = req.method === 'PATCH' ? (req.contentType ?? 'application/merge-patch+json') : 'application/json';
        headers['Content-Length'] = String(body.length);
      }
      let cause: Error | undefined;
      const r = this.#module().request(this.#url(req.path, req.query), { method: req.method, agent: this.#agentFor(creds), headers }, (res) => {
        readAll(res).then(
          (buf) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: buf }),
          (err: unknown) => reject(cause ?? transportError(err, req.method)),
        );
      });
      const timer = setTimeout(() => {
        cause = new KubeTransportError(`${req.method} ${req.path}: no answer within the request time`, 'TIMEOUT', req.method !== 'GET');
        r.destroy(cause);
      }, remaining);
      const onAbort = (): void => {
        cause = abortReason(req.signal);
        r.destroy(cause);
      };
      if (req.signal?.aborted) onAbort();
      req.signal?.addEventListener('abort', onAbort, { once: true });
      r.once('close', () => {
        clearTimeout(timer);
        req.signal?.removeEventListener('abort', onAbort);
      });
      r.on('error', (err) => reject(cause ?? transportError(err, req.method)));
      r.end(body);
    }));
  }

  #agentFor(creds: KubeCredentials): http.Agent {
    if (this.#closed) throw new KubeTransportError('the Kubernetes client is closed', 'CLOSED', false);
    if (this.#agent && this.#agentTlsId === creds.tlsId) return this.#agent;
    // New TLS material (a rotated client certificate): connections made with the old one go;
    // watches on them resume from their resourceVersion.
    this.#agent?.destroy();
    const common = { keepAlive: true, keepAliveMsecs: 15_000, maxSockets: this.#maxSockets, timeout: this.#idleSocketMs };
    this.#agent = this.#conn.server.protocol === 'https:' ? new https.Agent({ ...common, ...creds.tls }) : new http.Agent(common);
    this.#agentTlsId = creds.tlsId;
    return this.#agent;
  }

  #module(): typeof http | typeof https {
    return this.#conn.server.protocol === 'https:' ? https : http;
  }

  #headers(creds: KubeCredentials): Record<string, string> {
    return { Accept: 'application/json', 'User-Agent': this.#userAgent, ...creds.headers };
  }

  #url(path: string, query?: Record<string, string>): string {
    const qs = query && Object.keys(query).length > 0 ? `?${new URLSearchParams(query).toString()}` : '';
    return `${this.#base}${path}${qs}`;
  }
}

function retryableStatus(method: string, status: number): boolean {
  if (status === 429) return true;
  return method === 'GET' && (status === 500 || status === 502 || status === 503 || status === 504);
}

function retryableError(method: string, err: KubeTransportError): boolean {
  return NOT_SENT.has(err.code) || (method === 'GET' && CUT.has(err.code));
}

function transportError(err: unknown, method: string): Error {
  if (err instanceof KubeTransportError) return err;
  if (err instanceof Error && err.name === 'AbortError') return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? 'ECONNRESET';
  const message = err instanceof Error ? err.message : String(err);
  return new KubeTransportError(`API server connection: ${message}`, code, !NOT_SENT.has(code) && method !== 'GET', { cause: err });
}

function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error) return reason;
  return new DOMException('The operation was aborted', 'AbortError');
}

function readAll(res: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.once('end', () => resolve(Buffer.concat(chunks)));
    res.once('error', reject);
    res.once('close', () => {
      if (!res.complete) reject(new KubeTransportError('connection closed before the answer was complete', 'ECONNRESET', true));
    });
  });
}

/** JSON bodies parsed; anything else (a proxy's HTML error page) becomes a Status saying what came. */
function parseBody(answer: RawAnswer): unknown {
  if (answer.body.length === 0) return answer.status >= 400 ? { kind: 'Status', status: 'Failure', code: answer.status } : undefined;
  const text = answer.body.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return { kind: 'Status', status: 'Failure', code: answer.status, message: `non-JSON answer: ${text.slice(0, 200)}` };
  }
}

async function* emptyEvents(): AsyncGenerator<unknown, void, undefined> {}
