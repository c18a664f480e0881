// The CNI endpoint: HTTP over a unix socket (0600 in a 0700 directory), one POST per CNI
// invocation (protocol in common/protocol.ts). Decodes, locks the sandbox, applies the
// deadline, dispatches, and maps every failure to a CNI error code.

import { chmodSync, mkdirSync, rmSync, statSync } from 'node:fs';
import * as http from 'node:http';
import { dirname } from 'node:path';
import type { CniCommand } from '../../common/cni-spec';
import { DeadlineError, DecodeError, toCniError, TryAgainLaterError, isOvnodeError } from '../../common/errors';
import { CNI_PATH_HTTP, type CniWireReply } from '../../common/protocol';
import { cmdAdd } from '../cmd/add';
import { cmdCheck } from '../cmd/check';
import { cmdDel } from '../cmd/del';
import { cmdGc } from '../cmd/gc';
import { cmdStatus } from '../cmd/status';
import type { Deps, RequestContext } from '../context';
import { KeyedLock } from './keyed-lock';
import { decodeRequest, type CniRequest } from './request';

const MAX_BODY = 1 << 20;

export class CniServer {
  private readonly lock = new KeyedLock();
  private server: http.Server | undefined;

  constructor(private readonly deps: Deps) {}

  async listen(socketPath: string): Promise<void> {
    const dir = dirname(socketPath);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // The directory may pre-exist with looser permissions: the socket is root's API.
    if ((statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700);
    rmSync(socketPath, { force: true });
    const server = http.createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 0;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
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
    if (httpReq.method !== 'POST' || httpReq.url !== CNI_PATH_HTTP) {
      res.writeHead(404).end();
      return;
    }
    const started = process.hrtime.bigint();
    let command = 'UNKNOWN';
    let reply: CniWireReply;
    let status = 200;
    try {
      const req = decodeRequest(await readJson(httpReq));
      command = req.command;
      reply = { result: await this.dispatch(req) as Record<string, unknown> | undefined };
      if (reply.result === undefined) delete reply.result;
    } catch (e) {
      reply = { error: toCniError(e) };
      status = isOvnodeError(e) && e.cniCode < 100 ? 400 : 500;
      this.deps.metrics.errors.inc({ command, code: String(reply.error?.code) });
      this.deps.log.warn({ cmd: command, code: reply.error?.code, err: reply.error?.msg, details: reply.error?.details }, 'request failed');
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.deps.log.debug({ cmd: command, ms: seconds * 1000 }, 'request served');
    this.deps.metrics.requestDuration.observe({ command, outcome: reply.error ? 'error' : 'ok' }, seconds);
    const body = JSON.stringify(reply);
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
    const start = (): Deadlined<unknown> => withDeadline(req, (signal) => {
      const ctx: RequestContext = { deps: this.deps, req, log, signal };
      return HANDLERS[req.command](ctx, (key, fn) => this.lock.run(key, fn));
    });
    // GC and STATUS are not about one sandbox; GC takes each sandbox's lock as it goes.
    if (req.command === 'GC' || req.command === 'STATUS') return start().answer;
    return this.runLocked(req.containerId, start);
  }

  /**
   * Answers as soon as the work is done or its deadline passed, but keeps the sandbox locked
   * until the work has really settled (its rollback included): a late ADD must never overlap
   * the DEL that the runtime sends after our deadline error.
   */
  private runLocked<T>(key: string, start: () => Deadlined<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      void this.lock.run(key, async () => {
        const { work, answer } = start();
        answer.then(resolve, reject);
        await work.then(() => undefined, () => undefined);
      }).catch(reject);
    });
  }
}

type Handler = (ctx: RequestContext, withLock: <T>(key: string, fn: () => Promise<T>) => Promise<T>) => Promise<unknown>;
const HANDLERS: Record<Exclude<CniCommand, 'VERSION'>, Handler> = {
  ADD: (ctx) => cmdAdd(ctx),
  DEL: (ctx) => cmdDel(ctx),
  CHECK: (ctx) => cmdCheck(ctx),
  GC: (ctx, withLock) => cmdGc(ctx, withLock),
  STATUS: (ctx) => cmdStatus(ctx),
};

interface Deadlined<T> {
  /** The handler's own promise: settles when it has finished, rollback included. */
  work: Promise<T>;
  /** What to answer: the handler's outcome, or a deadline error if that comes first. */
  answer: Promise<T>;
}

/** Runs fn with an AbortSignal that fires at the request's deadline (fn sees the abort too). */
function withDeadline<T>(req: CniRequest, fn: (signal: AbortSignal) => Promise<T>): Deadlined<T> {
  const ms = Math.max(0, req.deadline - Date.now());
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new DeadlineError(`${req.command} did not finish within its deadline (${ms} ms)`);
      ac.abort(err);
      reject(err);
    }, ms);
  });
  expired.catch(() => undefined);
  const work = fn(ac.signal).finally(() => clearTimeout(timer));
  return { work, answer: Promise.race([work, expired]) };
}

function readJson(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) { reject(new DecodeError('request body too large')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => {
      try { resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))); } catch (e) {
        reject(new DecodeError('request body is not JSON', { details: String(e) }));
      }
    });
    req.on('error', reject);
  });
}
