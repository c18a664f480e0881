// Client for the unixctl control socket of OVS programs (what `ovs-appctl -t` talks to): JSON-RPC
// 1.0 over a unix stream socket, requests {"id","method","params":[strings]} and replies
// {"id","result","error"}, objects back to back without delimiter. Speaking it directly keeps
// fork/exec off the request path (ovs-appctl costs a process start, ~10 ms, per call).
//
// One connection per batch of calls, closed afterwards: the target may restart between two
// batches (supervised ovs-vswitchd), and a fresh connect to a unix socket costs microseconds, so
// there is no session state worth keeping or repairing.

import { readFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { JsonStreamSplitter } from '../ovsdb/framing';

export type UnixctlErrorCode = 'UNIXCTL_UNAVAILABLE' | 'UNIXCTL_TIMEOUT' | 'UNIXCTL_COMMAND' | 'UNIXCTL_PROTOCOL' | 'UNIXCTL_ABORTED';

export class UnixctlError extends Error {
  constructor(message: string, readonly code: UnixctlErrorCode, readonly socketPath: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Nobody listens on the socket (the program is not running, or restarting): ENOENT, ECONNREFUSED. */
export class UnixctlUnavailableError extends UnixctlError {
  constructor(socketPath: string, cause: unknown) {
    super(`unixctl ${socketPath}: not reachable: ${(cause as Error)?.message ?? String(cause)}`, 'UNIXCTL_UNAVAILABLE', socketPath, { cause });
  }
}

/** No complete answer within the deadline; the connection was dropped. */
export class UnixctlTimeoutError extends UnixctlError {
  constructor(socketPath: string, ms: number, answered: number, total: number) {
    super(`unixctl ${socketPath}: ${answered} of ${total} replies within ${ms} ms`, 'UNIXCTL_TIMEOUT', socketPath);
  }
}

export class UnixctlAbortedError extends UnixctlError {
  constructor(socketPath: string, reason: unknown) {
    super(`unixctl ${socketPath}: aborted: ${(reason as Error)?.message ?? String(reason)}`, 'UNIXCTL_ABORTED', socketPath, { cause: reason });
  }
}

/** The program answered the command with an error (unknown command, bad arguments, failure). */
export class UnixctlCommandError extends UnixctlError {
  constructor(socketPath: string, readonly method: string, readonly params: readonly string[], readonly reply: string) {
    super(`unixctl ${socketPath}: ${[method, ...params.map((p) => JSON.stringify(p))].join(' ')}: ${reply.trim()}`, 'UNIXCTL_COMMAND', socketPath);
  }
}

/** Not a unixctl peer, or the connection broke in the middle of an exchange. */
export class UnixctlProtocolError extends UnixctlError {
  constructor(socketPath: string, detail: string, cause?: unknown) {
    super(`unixctl ${socketPath}: ${detail}`, 'UNIXCTL_PROTOCOL', socketPath, cause === undefined ? undefined : { cause });
  }
}

export interface UnixctlCall { method: string; params?: readonly string[] }

/** Per call: the command's output, or the error it answered with. */
export type UnixctlOutcome = { ok: true; result: string } | { ok: false; error: UnixctlCommandError };

export interface UnixctlCallOptions {
  /** Deadline for the whole batch (connect included); default: the client's. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface UnixctlClientOptions {
  /** Default deadline of a batch. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 2_000;

export class UnixctlClient {
  private nextId = 1;

  /**
   * `socket` is a path, or a function returning one, evaluated per batch: a default-named control
   * socket carries the program's pid (see ctlPathFromPidfile) and changes when it restarts.
   */
  constructor(private readonly socket: string | (() => string), private readonly opts: UnixctlClientOptions = {}) {}

  get socketPath(): string {
    return typeof this.socket === 'string' ? this.socket : this.socket();
  }

  /** One command; rejects with UnixctlCommandError when the program answers with an error. */
  async call(method: string, params: readonly string[] = [], opts: UnixctlCallOptions = {}): Promise<string> {
    const [outcome] = await this.callAll([{ method, params }], opts);
    if (!outcome) throw new UnixctlProtocolError(this.socketPath, `no reply to ${method}`);
    if (!outcome.ok) throw outcome.error;
    return outcome.result;
  }

  /**
   * Sends every call on one connection, without waiting between them (the server answers in
   * order), and resolves with one outcome per call once all are answered. Rejects (UnixctlError)
   * only when the exchange itself failed: then no outcome is known.
   */
  callAll(calls: readonly UnixctlCall[], opts: UnixctlCallOptions = {}): Promise<UnixctlOutcome[]> {
    let path: string;
    try {
      path = this.socketPath;
    } catch (e) {
      return Promise.reject(new UnixctlUnavailableError(String(this.socket), e));
    }
    if (calls.length === 0) return Promise.resolve([]);
    if (opts.signal?.aborted) return Promise.reject(new UnixctlAbortedError(path, opts.signal.reason));
    const timeoutMs = opts.timeoutMs ?? this.opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const ids = calls.map(() => this.nextId++);
    const byId = new Map(ids.map((id, i) => [id, i]));
    const outcomes: Array<UnixctlOutcome | undefined> = calls.map(() => undefined);
    let answered = 0;

    return new Promise<UnixctlOutcome[]>((resolve, reject) => {
      let connected = false;
      let settled = false;
      const socket: Socket = createConnection({ path });
      const finish = (error?: UnixctlError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        if (error) {
          socket.destroy();
          reject(error);
        } else {
          socket.end();
          resolve(outcomes as UnixctlOutcome[]);
        }
      };
      const timer = setTimeout(() => finish(new UnixctlTimeoutError(path, timeoutMs, answered, calls.length)), timeoutMs);
      const onAbort = (): void => finish(new UnixctlAbortedError(path, opts.signal?.reason));
      opts.signal?.addEventListener('abort', onAbort, { once: true });

      const splitter = new JsonStreamSplitter();
      socket.on('connect', () => {
        connected = true;
        const wire = calls.map((c, i) => JSON.stringify({ id: ids[i], method: c.method, params: [...(c.params ?? [])] })).join('');
        socket.write(wire);
      });
      socket.on('data', (chunk: Buffer) => {
        let texts: string[];
        try {
          texts = splitter.push(chunk);
        } catch (e) {
          finish(new UnixctlProtocolError(path, 'reply is not a JSON-RPC stream', e));
          return;
        }
        for (const text of texts) {
          const problem = this.accept(path, text, calls, byId, outcomes);
          if (problem) { finish(problem); return; }
          answered++;
        }
        if (answered === calls.length) finish();
      });
      socket.on('error', (e: NodeJS.ErrnoException) => {
        if (!connected && (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || e.code === 'ENOTSOCK')) finish(new UnixctlUnavailableError(path, e));
        else finish(new UnixctlProtocolError(path, `connection failed after ${answered} of ${calls.length} replies: ${e.message}`, e));
      });
      socket.on('close', () => finish(new UnixctlProtocolError(path, `connection closed after ${answered} of ${calls.length} replies`)));
    });
  }

  /** Records one reply; returns an error when it is not one we are waiting for. */
  private accept(path: string, text: string, calls: readonly UnixctlCall[], byId: Map<number, number>, outcomes: Array<UnixctlOutcome | undefined>): UnixctlError | undefined {
    let msg: { id?: unknown; result?: unknown; error?: unknown };
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch (e) {
      return new UnixctlProtocolError(path, 'reply is not JSON', e);
    }
    const index = typeof msg.id === 'number' ? byId.get(msg.id) : undefined;
    if (index === undefined || outcomes[index] !== undefined) return new UnixctlProtocolError(path, `reply with unexpected id ${JSON.stringify(msg.id)}`);
    const call = calls[index] as UnixctlCall;
    if (msg.error !== null && msg.error !== undefined) {
      const reply = typeof msg.error === 'string' ? msg.error : JSON.stringify(msg.error);
      outcomes[index] = { ok: false, error: new UnixctlCommandError(path, call.method, call.params ?? [], reply) };
    } else {
      outcomes[index] = { ok: true, result: typeof msg.result === 'string' ? msg.result : JSON.stringify(msg.result ?? '') };
    }
    return undefined;
  }
}

/**
 * The control socket a program creates when started without --unixctl: `<rundir>/<program>.<pid>.ctl`,
 * the pid read from `<rundir>/<program>.pid` (as ovs-appctl -t <program> resolves it). Throws when
 * the pid file is missing or unreadable.
 */
export function ctlPathFromPidfile(rundir: string, program: string): string {
  const pid = Number(readFileSync(join(rundir, `${program}.pid`), 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`${join(rundir, `${program}.pid`)}: no pid`);
  return join(rundir, `${program}.${pid}.ctl`);
}
