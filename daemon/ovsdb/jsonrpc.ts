// JSON-RPC 1.0 peer over one stream socket, as OVSDB uses it (RFC 7047 §4): numbered requests
// matched to replies, notifications (id null), and requests from the other side (echo). Both the
// client and the test fake server speak through this class.

import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { OvsdbError, OvsdbOutcomeUnknownError } from '../../common/errors';
import { JsonStreamSplitter } from './framing';

/** A JSON-RPC 1.0 message in any of its three roles. */
export interface RpcMessage {
  id?: unknown;
  method?: string;
  params?: unknown;
  result?: unknown;
  error?: unknown;
}

interface Pending {
  method: string;
  resolve: (result: unknown) => void;
  reject: (e: Error) => void;
}

export interface RequestOptions {
  signal?: AbortSignal | undefined;
  /** On abort, also send the RFC 7047 §4.1.4 "cancel" notification for this request. */
  cancelOnAbort?: boolean;
}

/** Renders an RPC error member: OVSDB errors are objects with "error" and "details" (§3.1). */
export function describeRpcError(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const e = error as { error?: unknown; details?: unknown };
    if (typeof e.error === 'string') return typeof e.details === 'string' ? `${e.error}: ${e.details}` : e.error;
  }
  return typeof error === 'string' ? error : JSON.stringify(error);
}

/**
 * Events: 'request' (method, params, id) for calls from the peer, which must be answered with
 * reply(); 'notification' (method, params); 'close' (cause?) once, after pending requests failed.
 */
export class JsonRpcPeer extends EventEmitter {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly splitter: JsonStreamSplitter;
  private isClosed = false;

  constructor(private readonly socket: Socket, private readonly log?: Logger, maxMessageBytes?: number) {
    super();
    this.splitter = new JsonStreamSplitter(maxMessageBytes);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.shutdown(e));
    socket.on('close', () => this.shutdown());
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Sends a request and resolves with its "result"; rejects with OvsdbError on an "error" reply. */
  request(method: string, params: unknown[], opts: RequestOptions = {}): Promise<unknown> {
    const { signal } = opts;
    if (this.isClosed) return Promise.reject(new OvsdbError(`${method}: connection closed`));
    if (signal?.aborted) return Promise.reject(abortError(method, signal));
    const id = this.nextId++;
    return new Promise<unknown>((resolve, reject) => {
      const onAbort = (): void => {
        // The reply may still come; with the id forgotten it is dropped as unknown.
        this.pending.delete(id);
        if (opts.cancelOnAbort) this.notify('cancel', [id]);
        reject(abortError(method, signal as AbortSignal));
      };
      const done = (): void => signal?.removeEventListener('abort', onAbort);
      this.pending.set(id, {
        method,
        resolve: (r) => { done(); resolve(r); },
        reject: (e) => { done(); reject(e); },
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      this.send({ method, params, id });
    });
  }

  /** A notification: a request with a null id, which gets no reply (JSON-RPC 1.0). */
  notify(method: string, params: unknown[]): void {
    this.send({ method, params, id: null });
  }

  /** Answers a request from the peer with the same id. */
  reply(id: unknown, result: unknown, error: unknown = null): void {
    this.send({ id, result: error === null ? result : null, error });
  }

  /** Closes the socket; pending requests reject. Resolves once the socket is closed. */
  close(): Promise<void> {
    if (this.socket.destroyed) {
      this.shutdown();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.destroy();
    });
  }

  private send(msg: RpcMessage): void {
    if (this.isClosed) return;
    this.log?.trace({ rpc: msg }, 'ovsdb send');
    this.socket.write(JSON.stringify(msg));
  }

  private onData(chunk: Buffer): void {
    let texts: string[];
    try {
      texts = this.splitter.push(chunk);
    } catch (e) {
      this.protocolError(e as Error);
      return;
    }
    for (const text of texts) {
      if (this.isClosed) return;
      let msg: RpcMessage;
      try {
        msg = JSON.parse(text) as RpcMessage;
      } catch (e) {
        this.protocolError(new OvsdbError(`OVSDB stream: invalid JSON: ${(e as Error).message}`));
        return;
      }
      this.dispatch(msg);
    }
  }

  private dispatch(msg: RpcMessage): void {
    this.log?.trace({ rpc: msg }, 'ovsdb recv');
    if (typeof msg.method === 'string') {
      if (msg.id === null || msg.id === undefined) this.emit('notification', msg.method, msg.params);
      else this.emit('request', msg.method, msg.params, msg.id);
      return;
    }
    const p = typeof msg.id === 'number' ? this.pending.get(msg.id) : undefined;
    if (!p) {
      this.log?.debug({ id: msg.id }, 'ovsdb reply for an unknown or abandoned request');
      return;
    }
    this.pending.delete(msg.id as number);
    if (msg.error !== null && msg.error !== undefined) {
      p.reject(new OvsdbError(`${p.method} failed: ${describeRpcError(msg.error)}`, {
        details: JSON.stringify(msg.error),
      }));
    } else {
      p.resolve(msg.result);
    }
  }

  private protocolError(e: Error): void {
    this.log?.error({ err: e }, 'ovsdb protocol error, closing connection');
    this.socket.destroy();
    this.shutdown(e);
  }

  private shutdown(cause?: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.socket.destroy();
    for (const p of this.pending.values()) {
      p.reject(new OvsdbOutcomeUnknownError(`${p.method}: connection closed before the reply`, { cause }));
    }
    this.pending.clear();
    this.emit('close', cause);
  }
}

function abortError(method: string, signal: AbortSignal): OvsdbError {
  const reason: unknown = signal.reason;
  const why = reason instanceof Error ? reason.message : String(reason);
  return new OvsdbError(`${method} aborted: ${why}`, { cause: reason });
}
