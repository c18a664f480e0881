// Minimal gRPC over node:http2 on unix sockets, for the fake device plugin (test/fakes/
// fake-sriov-device-plugin.ts) and the tests that play kubelet against it. No gRPC package is in
// node_modules and the two RPC shapes the device plugin API uses are small:
//   - unary and server-streaming calls (ListAndWatch); no client or bidi streaming;
//   - each message framed as the gRPC HTTP/2 protocol says (grpc/doc/PROTOCOL-HTTP2.md): a 1-byte
//     compressed flag (always 0 here: nothing compressed is sent, and we advertise no
//     grpc-accept-encoding so peers send nothing compressed either), a 4-byte big-endian length, the
//     protobuf bytes;
//   - requests are POST with content-type application/grpc and te: trailers; responses are :status
//     200 + content-type, the messages, then trailers grpc-status / grpc-message (percent-encoded),
//     or a trailers-only response (status in the one HEADERS frame) for an error before any message.
// Plain HTTP/2 without TLS ("h2c" with prior knowledge), which is what grpc-go speaks on unix
// sockets with insecure credentials, as kubelet and device plugins do.

import {
  connect as h2connect, constants as h2c, createServer, type ClientHttp2Session, type ClientHttp2Stream,
  type Http2Server, type IncomingHttpHeaders, type IncomingHttpStatusHeader, type ServerHttp2Session, type ServerHttp2Stream,
} from 'node:http2';
import { connect as netConnect, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { AuthorityShimSocket } from './h2-authority-shim';

/** gRPC status codes used here (grpc/doc/statuscodes.md). */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

export class GrpcError extends Error {
  override readonly name = 'GrpcError';
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

/** What this side accepts in one message, as grpc-go's default receive limit. */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

export function frameMessage(msg: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(0, 0);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}

/** Reassembles length-prefixed messages from DATA chunks, which split and join them arbitrarily. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    while (this.buf.length >= 5) {
      const flag = this.buf.readUInt8(0);
      const len = this.buf.readUInt32BE(1);
      if (flag !== 0) throw new GrpcError(Status.UNIMPLEMENTED, `compressed message (flag ${flag}) but no encoding was negotiated`);
      if (len > MAX_MESSAGE_BYTES) throw new GrpcError(Status.RESOURCE_EXHAUSTED, `message of ${len} bytes exceeds ${MAX_MESSAGE_BYTES}`);
      if (this.buf.length < 5 + len) break;
      out.push(this.buf.subarray(5, 5 + len));
      this.buf = this.buf.subarray(5 + len);
    }
    return out;
  }

  /** Bytes of an incomplete message still buffered (non-zero at end of stream = truncated). */
  get pending(): number {
    return this.buf.length;
  }
}

/** grpc-message: percent-encoding of everything outside printable ASCII, and of '%'. */
export function encodeGrpcMessage(msg: string): string {
  let out = '';
  for (const b of Buffer.from(msg, 'utf8')) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function decodeGrpcMessage(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw; // the spec says to pass on what does not decode rather than fail
  }
}

const isGrpcContentType = (v: unknown): boolean => typeof v === 'string' && /^application\/grpc($|[+;])/.test(v);

// ------------------------------------------------------------------------------------------ server

export type UnaryHandler = (request: Buffer) => Buffer | Promise<Buffer>;

export interface ServerStreamCall {
  /** Sends one message; false when the call has already ended. */
  send(msg: Buffer): boolean;
  /** Ends the call: OK, or the given error's status. */
  end(error?: GrpcError): void;
  readonly open: boolean;
  /** Runs once when the call ends for any reason: end(), client cancel, connection loss, server close. */
  onClose(cb: () => void): void;
}

export type ServerStreamHandler = (request: Buffer, call: ServerStreamCall) => void;

type Handler = { kind: 'unary'; fn: UnaryHandler } | { kind: 'stream'; fn: ServerStreamHandler };

const isOpen = (s: ServerHttp2Stream): boolean => !s.closed && !s.destroyed;

/** Status in the one HEADERS frame (no messages were sent). */
function trailersOnly(stream: ServerHttp2Stream, code: number, message: string): void {
  if (!isOpen(stream) || stream.headersSent) return;
  stream.respond({
    [h2c.HTTP2_HEADER_STATUS]: 200, 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message),
  }, { endStream: true });
}

function respondOk(stream: ServerHttp2Stream): void {
  stream.respond({ [h2c.HTTP2_HEADER_STATUS]: 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
}

/** Ends a call whose headers were sent: status in trailers. */
function finish(stream: ServerHttp2Stream, code: number, message = ''): void {
  if (!isOpen(stream)) return;
  if (!stream.headersSent) {
    if (code !== Status.OK) return trailersOnly(stream, code, message);
    respondOk(stream);
  }
  stream.once('wantTrailers', () => {
    const trailers: Record<string, string> = { 'grpc-status': String(code) };
    if (message) trailers['grpc-message'] = encodeGrpcMessage(message);
    stream.sendTrailers(trailers);
  });
  stream.end();
}

const errorStatus = (e: unknown): [number, string] =>
  e instanceof GrpcError ? [e.code, e.message] : [Status.UNKNOWN, e instanceof Error ? e.message : String(e)];

/**
 * Serves gRPC on a unix socket. Connections go through AuthorityShimSocket (./h2-authority-shim)
 * before node:http2 sees them: grpc-go 1.27 clients (kubelet 1.20) send the socket path as
 * :authority, which nghttp2 rejects.
 */
export class GrpcServer {
  private readonly handlers = new Map<string, Handler>();
  private readonly sessions = new Set<ServerHttp2Session>();
  private readonly sockets = new Set<Socket>();
  private readonly h2: Http2Server = createServer();
  private listener: NetServer | undefined;

  constructor() {
    this.h2.on('session', (s) => {
      this.sessions.add(s);
      s.on('close', () => this.sessions.delete(s));
      s.on('error', () => {}); // a peer going away mid-call (kubelet restarting) is not our failure
    });
    this.h2.on('sessionError', () => {});
    this.h2.on('stream', (stream, headers) => this.onStream(stream, headers));
  }

  unary(path: string, fn: UnaryHandler): this {
    this.handlers.set(path, { kind: 'unary', fn });
    return this;
  }

  serverStream(path: string, fn: ServerStreamHandler): this {
    this.handlers.set(path, { kind: 'stream', fn });
    return this;
  }

  listen(socketPath: string): Promise<void> {
    if (this.listener) return Promise.reject(new Error(`GrpcServer: already listening`));
    const listener = createNetServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      this.h2.emit('connection', new AuthorityShimSocket(socket));
    });
    return new Promise((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(socketPath, () => {
        listener.off('error', reject);
        this.listener = listener;
        resolve();
      });
    });
  }

  /**
   * Stops listening and closes every connection: gracefully (GOAWAY; calls already ended get
   * their trailers out) for up to graceMs, then by force. Calls still open are cut off.
   */
  async close(graceMs = 1000): Promise<void> {
    const listener = this.listener;
    this.listener = undefined;
    const stopped = listener ? new Promise<void>((resolve) => listener.close(() => resolve())) : Promise.resolve();
    const sessions = [...this.sessions];
    const graceful = Promise.all(sessions.map((s) => new Promise<void>((resolve) => {
      if (s.closed || s.destroyed) return resolve();
      s.close(() => resolve());
    })));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([graceful, new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    })]);
    clearTimeout(timer);
    for (const s of this.sessions) s.destroy();
    for (const s of this.sockets) s.destroy();
    await stopped;
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', () => {}); // resets and connection loss end the call; 'close' handles it
    if (headers[h2c.HTTP2_HEADER_METHOD] !== 'POST' || !isGrpcContentType(headers['content-type'])) {
      stream.respond({ [h2c.HTTP2_HEADER_STATUS]: 415 }, { endStream: true });
      stream.resume();
      return;
    }
    const path = String(headers[h2c.HTTP2_HEADER_PATH] ?? '');
    const handler = this.handlers.get(path);
    if (!handler) {
      trailersOnly(stream, Status.UNIMPLEMENTED, `unknown method ${path}`);
      stream.resume();
      return;
    }
    // Unary and server-streaming requests are exactly one message, then the client half-closes.
    const reader = new FrameReader();
    const messages: Buffer[] = [];
    let failed = false;
    stream.on('data', (chunk: Buffer) => {
      if (failed) return;
      try {
        messages.push(...reader.push(chunk));
      } catch (e) {
        failed = true;
        trailersOnly(stream, ...errorStatus(e));
      }
    });
    stream.on('end', () => {
      if (failed) return;
      if (messages.length !== 1 || reader.pending !== 0) {
        trailersOnly(stream, Status.INTERNAL, `expected one request message, got ${messages.length}${reader.pending ? ' and a truncated one' : ''}`);
        return;
      }
      const request = messages[0] as Buffer;
      if (handler.kind === 'unary') this.runUnary(stream, handler.fn, request);
      else this.runStream(stream, handler.fn, request);
    });
  }

  private runUnary(stream: ServerHttp2Stream, fn: UnaryHandler, request: Buffer): void {
    Promise.resolve()
      .then(() => fn(request))
      .then((reply) => {
        if (!isOpen(stream)) return;
        respondOk(stream);
        stream.write(frameMessage(reply));
        finish(stream, Status.OK);
      }, (e: unknown) => trailersOnly(stream, ...errorStatus(e)));
  }

  private runStream(stream: ServerHttp2Stream, fn: ServerStreamHandler, request: Buffer): void {
    const closers: Array<() => void> = [];
    let closed = false;
    const runClosers = () => {
      if (closed) return;
      closed = true;
      for (const cb of closers.splice(0)) cb();
    };
    stream.on('close', runClosers);
    const call: ServerStreamCall = {
      get open() {
        return !closed && isOpen(stream);
      },
      send(msg) {
        if (!call.open) return false;
        if (!stream.headersSent) respondOk(stream);
        stream.write(frameMessage(msg));
        return true;
      },
      end(error) {
        if (closed) return;
        if (error) finish(stream, error.code, error.message);
        else finish(stream, Status.OK);
      },
      onClose(cb) {
        if (closed) cb();
        else closers.push(cb);
      },
    };
    try {
      fn(request, call);
    } catch (e) {
      finish(stream, ...errorStatus(e));
    }
  }
}

// ------------------------------------------------------------------------------------------ client

export interface CallOptions {
  /** Deadline for the whole call; sent as grpc-timeout too. Default: none. */
  timeoutMs?: number;
}

export interface ClientStreamingCall {
  /** Settles when the call ends: resolves on status OK, rejects with a GrpcError otherwise. */
  readonly done: Promise<void>;
  /** Cancels the call (RST_STREAM CANCEL); done rejects with CANCELLED. */
  cancel(): void;
}

export class GrpcClient {
  private constructor(private readonly session: ClientHttp2Session) {
    session.on('error', () => {}); // calls in flight see their own errors
  }

  /** Connects to a unix socket; rejects with the socket's error (ENOENT, ECONNREFUSED...). */
  static connect(socketPath: string, timeoutMs = 10_000): Promise<GrpcClient> {
    return new Promise((resolve, reject) => {
      // The authority is a placeholder: there is no host on a unix socket, and grpc-go ignores it.
      const session = h2connect('http://localhost', { createConnection: () => netConnect(socketPath) });
      const timer = setTimeout(() => {
        session.destroy();
        reject(new GrpcError(Status.DEADLINE_EXCEEDED, `connect ${socketPath}: no HTTP/2 settings within ${timeoutMs} ms`));
      }, timeoutMs);
      session.once('connect', () => {
        clearTimeout(timer);
        session.removeListener('error', onError);
        resolve(new GrpcClient(session));
      });
      const onError = (e: Error) => {
        clearTimeout(timer);
        session.destroy();
        reject(e);
      };
      session.once('error', onError);
    });
  }

  unary(path: string, request: Buffer, opts: CallOptions = {}): Promise<Buffer> {
    const replies: Buffer[] = [];
    const call = this.call(path, request, (m) => replies.push(m), opts);
    return call.done.then(() => {
      if (replies.length !== 1) throw new GrpcError(Status.INTERNAL, `${path}: expected one response message, got ${replies.length}`);
      return replies[0] as Buffer;
    });
  }

  /** A server-streaming call: onMessage gets each message as it arrives. */
  serverStream(path: string, request: Buffer, onMessage: (msg: Buffer) => void, opts: CallOptions = {}): ClientStreamingCall {
    return this.call(path, request, onMessage, opts);
  }

  close(): Promise<void> {
    if (this.session.closed || this.session.destroyed) return Promise.resolve();
    return new Promise((resolve) => this.session.close(() => resolve()));
  }

  private call(path: string, request: Buffer, onMessage: (msg: Buffer) => void, opts: CallOptions): ClientStreamingCall {
    const headers: Record<string, string> = {
      [h2c.HTTP2_HEADER_METHOD]: 'POST', [h2c.HTTP2_HEADER_PATH]: path, 'content-type': 'application/grpc', te: 'trailers',
    };
    if (opts.timeoutMs !== undefined) headers['grpc-timeout'] = `${Math.max(1, Math.ceil(opts.timeoutMs))}m`;
    let stream: ClientHttp2Stream;
    try {
      stream = this.session.request(headers);
    } catch (e) {
      return { done: Promise.reject(new GrpcError(Status.UNAVAILABLE, `${path}: ${(e as Error).message}`)), cancel: () => {} };
    }
    let cancelledBy: GrpcError | undefined;
    const done = new Promise<void>((resolve, reject) => {
      let status: { code: number; message: string } | undefined;
      let httpProblem: string | undefined;
      const reader = new FrameReader();
      const takeStatus = (h: IncomingHttpHeaders) => {
        if (h['grpc-status'] !== undefined) status = { code: Number(h['grpc-status']), message: decodeGrpcMessage(String(h['grpc-message'] ?? '')) };
      };
      const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => {
        cancelledBy = new GrpcError(Status.DEADLINE_EXCEEDED, `${path}: no answer within ${opts.timeoutMs} ms`);
        stream.close(h2c.NGHTTP2_CANCEL);
      }, opts.timeoutMs);
      stream.on('response', (h: IncomingHttpHeaders & IncomingHttpStatusHeader) => {
        const httpStatus = Number(h[h2c.HTTP2_HEADER_STATUS]);
        if (httpStatus !== 200) httpProblem = `HTTP status ${httpStatus}`;
        else if (!isGrpcContentType(h['content-type'])) httpProblem = `content-type ${String(h['content-type'])}`;
        takeStatus(h);
      });
      stream.on('trailers', takeStatus);
      stream.on('data', (chunk: Buffer) => {
        try {
          for (const m of reader.push(chunk)) onMessage(m);
        } catch (e) {
          cancelledBy = e instanceof GrpcError ? e : new GrpcError(Status.INTERNAL, `${path}: ${(e as Error).message}`);
          stream.close(h2c.NGHTTP2_CANCEL);
        }
      });
      stream.on('error', () => {}); // settled in 'close' from what was seen
      stream.on('close', () => {
        if (timer) clearTimeout(timer);
        if (cancelledBy) return reject(cancelledBy);
        if (httpProblem) return reject(new GrpcError(Status.UNKNOWN, `${path}: ${httpProblem}`));
        if (!status) {
          const rst = stream.rstCode;
          return reject(new GrpcError(Status.UNAVAILABLE, `${path}: stream closed without grpc-status${rst ? ` (RST_STREAM ${rst})` : ''}`));
        }
        if (status.code !== Status.OK) return reject(new GrpcError(status.code, status.message || `${path}: status ${status.code}`));
        if (reader.pending !== 0) return reject(new GrpcError(Status.INTERNAL, `${path}: truncated message at end of stream`));
        resolve();
      });
    });
    stream.end(frameMessage(request));
    return {
      done,
      cancel: () => {
        if (stream.closed) return;
        cancelledBy = new GrpcError(Status.CANCELLED, `${path}: cancelled`);
        stream.close(h2c.NGHTTP2_CANCEL);
      },
    };
  }
}
