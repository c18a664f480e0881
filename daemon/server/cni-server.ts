// The CNI endpoint: HTTP over a unix socket (0600 in a 0700 directory), one POST per CNI
// invocation (protocol in common/protocol.ts). Decodes, locks the sandbox, applies the
// deadline, dispatches, and maps every failure to a CNI error code.

import { chmodSync, mkdirSync, rmSync, statSync } from 'node:fs';
import * as http from 'node:http';
import { dirname } from 'node:path';
import type { CniCommand } from '../../common/cni-spec';
import { DeadlineError, DecodeError, IoError, toCniError, TryAgainLaterError, isOvnodeError } from '../../common/errors';
import { CNI_PATH_HTTP, READY_PATH_HTTP, type CniWireReply } from '../../common/protocol';
import { cmdAdd } from '../cmd/add';
import { cmdCheck } from '../cmd/check';
import { cmdDel } from '../cmd/del';
import { cmdGc } from '../cmd/gc';
import { cmdStatus } from '../cmd/status';
import type { Deps, RequestContext } from '../context';
import { KeyedLock } from './keyed-lock';
import { decodeRequest, parseWireBody, type CniRequest } from './request';

/** Largest request accepted; a CNI netconf is a few KiB. */
export const MAX_BODY = 1 << 20;
/** Beyond this much, an oversized body is no longer drained before the answer: the peer is cut off. */
const MAX_DRAIN = 64 << 20;

export class CniServer {
  private readonly lock = new KeyedLock();
  private server: http.Server | undefined;

  private readonly handlers: HandlerMap;

  /** `handlers` replaces command handlers (unit tests of the server's own lock/deadline/error handling). */
  constructor(private readonly deps: Deps, handlers: Partial<HandlerMap> = {}) {
    this.handlers = { ...HANDLERS, ...handlers };
  }

  /** Runs fn under the sandbox lock that CNI requests of that sandbox take (the reconcile loop uses it). */
  withSandboxLock<T>(sandbox: string, fn: () => Promise<T>): Promise<T> {
    return this.lock.run(sandbox, fn);
  }

  async listen(socketPath: string): Promise<void> {
    const dir = dirname(socketPath);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // The directory may pre-exist with looser permissions: the socket is root's API.
    if ((statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700);
    rmSync(socketPath, { force: true });
    const server = http.createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        // handle() answers every failure itself; reaching here is a bug, never a dead daemon.
        this.deps.log.error({ err: e }, 'CNI request handling failed');
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
    });
    server.keepAliveTimeout = 0;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // A listening server still emits 'error' (EMFILE from accept, ...): log it and keep serving.
    server.on('error', (e) => this.deps.log.error({ err: e }, 'CNI server error'));
    server.on('clientError', (e, socket) => {
      this.deps.log.warn({ err: e }, 'malformed CNI connection');
      socket.destroy();
    });
    chmodSync(socketPath, 0o600);
    this.server = server;
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private async handle(httpReq: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (httpReq.method === 'GET' && httpReq.url === READY_PATH_HTTP) {
      const ready = this.deps.readiness();
      const body = JSON.stringify(ready);
      res.writeHead(ready.ready ? 200 : 503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
      return;
    }
    if (httpReq.method !== 'POST' || httpReq.url !== CNI_PATH_HTTP) {
      res.writeHead(404).end();
      return;
    }
    const started = process.hrtime.bigint();
    let command = 'UNKNOWN';
    let reply: CniWireReply;
    let status = 200;
    try {
      const req = decodeRequest(parseWireBody(await readBody(httpReq)));
      command = req.command;
      reply = { result: await this.dispatch(req) as Record<string, unknown> | undefined };
      if (reply.result === undefined) delete reply.result;
    } catch (e) {
      reply = { error: toCniError(e) };
      status = isOvnodeError(e) && e.cniCode < 100 ? 400 : 500;
      this.deps.metrics.errors.inc({ command, code: String(reply.error?.code) });
      const fields = { cmd: command, code: reply.error?.code, err: reply.error?.msg, details: reply.error?.details };
      // Our own bugs carry a stack worth reading; classified failures do not.
      if (isOvnodeError(e)) this.deps.log.warn(fields, 'request failed');
      else this.deps.log.error({ ...fields, err: e }, 'request failed unexpectedly');
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.deps.log.debug({ cmd: command, ms: seconds * 1000 }, 'request served');
    this.deps.metrics.requestDuration.observe({ command, outcome: reply.error ? 'error' : 'ok' }, seconds);
    let body: string;
    try {
      body = JSON.stringify(reply);
    } catch (e) {
      this.deps.log.error({ cmd: command, err: e }, 'reply cannot be serialized');
      status = 500;
      body = JSON.stringify({ error: { code: 999, msg: 'internal error', details: 'reply cannot be serialized' } });
    }
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
  }

  private async dispatch(req: CniRequest): Promise<unknown> {
    const ready = this.deps.readiness();
    if (!ready.ready && req.command !== 'STATUS' && req.command !== 'DEL') {
      throw new TryAgainLaterError(`ovnoded is not ready: ${ready.reason ?? 'starting'}`);
    }
    const log = this.deps.log.child({
      sandbox: req.containerId || undefined,
      pod: req.args.podName ? `${req.args.podNamespace ?? ''}/${req.args.podName}` : undefined,
      cmd: req.command,
      ifname: req.ifName || undefined,
    });
    // The deadline runs from now: time spent queued behind the sandbox lock counts.
    const deadline = new RequestDeadline(req);
    const run = (): Promise<unknown> => {
      const ctx: RequestContext = { deps: this.deps, req, log, signal: deadline.signal };
      // Through a promise, so that even a handler that throws synchronously ends as this request's error.
      return Promise.resolve().then(() => this.handlers[req.command](ctx, (key, fn) => this.lock.run(key, fn)));
    };
    // GC and STATUS are not about one sandbox; GC takes each sandbox's lock as it goes.
    if (req.command === 'GC' || req.command === 'STATUS') return deadline.race(run());
    return this.runLocked(req.containerId, deadline, run);
  }

  /**
   * Answers as soon as the work is done or its deadline passed, but keeps the sandbox locked
   * until the work has really settled (its rollback included): a late ADD must never overlap
   * the DEL that the runtime sends after our deadline error. A request whose deadline passed
   * while it waited for the lock never runs: its caller has been answered already.
   */
  private runLocked<T>(key: string, deadline: RequestDeadline, run: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      deadline.expired.catch(reject);
      void this.lock.run(key, async () => {
        if (deadline.signal.aborted) return;
        const work = run();
        work.then(resolve, reject);
        await work.then(() => undefined, () => undefined);
      }).catch(reject).finally(() => deadline.clear());
    });
  }
}

export type Handler = (ctx: RequestContext, withLock: <T>(key: string, fn: () => Promise<T>) => Promise<T>) => Promise<unknown>;
export type HandlerMap = Record<Exclude<CniCommand, 'VERSION'>, Handler>;
const HANDLERS: HandlerMap = {
  ADD: (ctx) => cmdAdd(ctx),
  DEL: (ctx) => cmdDel(ctx),
  CHECK: (ctx) => cmdCheck(ctx),
  GC: (ctx, withLock) => cmdGc(ctx, withLock),
  STATUS: (ctx) => cmdStatus(ctx),
};

/** A request's deadline: an AbortSignal for the waits of its handler, and a promise that rejects when it passes. */
class RequestDeadline {
  private readonly ac = new AbortController();
  private readonly timer: NodeJS.Timeout;
  readonly expired: Promise<never>;

  constructor(req: CniRequest) {
    const ms = Math.max(0, req.deadline - Date.now());
    let fire: (e: Error) => void = () => undefined;
    this.expired = new Promise<never>((_, reject) => { fire = reject; });
    this.expired.catch(() => undefined);
    this.timer = setTimeout(() => {
      const err = new DeadlineError(`${req.command} did not finish within its deadline (${ms} ms)`);
      this.ac.abort(err);
      fire(err);
    }, ms);
  }

  get signal(): AbortSignal { return this.ac.signal; }

  race<T>(work: Promise<T>): Promise<T> {
    return Promise.race([work.finally(() => this.clear()), this.expired]);
  }

  clear(): void { clearTimeout(this.timer); }
}

/**
 * The request body as text. An oversized body is drained (up to a bound) and refused with a
 * decode error, so the caller reads a real answer instead of a reset connection, which it would
 * report as "try again later" for an input that can never succeed.
 */
function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_DRAIN) { req.destroy(); return; }
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_BODY) reject(new DecodeError(`request body too large (${size} bytes, at most ${MAX_BODY})`));
      else resolve(Buffer.concat(chunks).toString('utf8'));
    });
    // The caller went away mid-body: nobody will read the answer, and it is not our failure.
    req.on('error', (e) => reject(new IoError('the request body was not received in full', { details: e.message, cause: e })));
  });
}
