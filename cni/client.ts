// Sends one CNI request to ovnoded over its unix socket and returns the decoded reply.
// A minimal HTTP/1.1 exchange written on node:net: one request with "Connection: close", the
// reply read to EOF. Node's http client costs ~9 ms of first-use set-up per process, a quarter of
// the shim's whole budget, for features a single local request does not need.
// Transport failures become "try again later" (11): the runtime retries, which is right when
// the daemon is restarting, and the message names the socket so an operator can look.

import * as net from 'node:net';
import { TryAgainLaterError } from '../common/errors';
import { CNI_PATH_HTTP, type CniWireReply, type CniWireRequest } from '../common/protocol';

export interface DaemonCall {
  socketPath: string;
  request: CniWireRequest;
}

/** The HTTP status and the decoded body (empty when the daemon sent none). */
export interface DaemonReply { status: number; body: CniWireReply }

export function callDaemon({ socketPath, request }: DaemonCall): Promise<DaemonReply> {
  const body = Buffer.from(JSON.stringify(request));
  const head = `POST ${CNI_PATH_HTTP} HTTP/1.1\r\nHost: ovnoded\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = net.createConnection(socketPath);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new TryAgainLaterError(`ovnoded did not answer within ${request.deadlineMs} ms`, { details: `socket ${socketPath}` }));
    }, request.deadlineMs);
    // write, not end: a half-closed request can make an HTTP server drop a slow reply; the
    // server closes the connection itself after answering (Connection: close).
    sock.once('connect', () => sock.write(Buffer.concat([Buffer.from(head), body])));
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.once('error', (e) => {
      clearTimeout(timer);
      reject(new TryAgainLaterError(`ovnoded is not reachable at ${socketPath}`, { details: e.message, cause: e }));
    });
    sock.once('end', () => {
      clearTimeout(timer);
      try {
        resolve(parseReply(Buffer.concat(chunks)));
      } catch (e) {
        reject(new TryAgainLaterError('ovnoded sent an unreadable reply', { details: String(e), cause: e }));
      }
    });
  });
}

/** Status line + headers + body of an HTTP/1.1 response (Content-Length, chunked, or to EOF). */
export function parseReply(raw: Buffer): DaemonReply {
  const split = raw.indexOf('\r\n\r\n');
  if (split < 0) throw new Error('no HTTP header terminator');
  const headers = raw.subarray(0, split).toString('latin1').split('\r\n');
  const statusLine = /^HTTP\/1\.[01] (\d{3})/.exec(headers[0] ?? '');
  if (!statusLine) throw new Error(`bad status line ${JSON.stringify(headers[0])}`);
  const status = Number(statusLine[1]);
  const lengthHeader = headers.find((h) => /^content-length:/i.test(h));
  let payload = raw.subarray(split + 4);
  if (headers.some((h) => /^transfer-encoding:\s*chunked/i.test(h))) {
    payload = dechunk(payload);
  } else if (lengthHeader) {
    const n = Number(lengthHeader.slice(lengthHeader.indexOf(':') + 1).trim());
    if (payload.length < n) throw new Error(`reply truncated: ${payload.length} of ${n} bytes`);
    payload = payload.subarray(0, n);
  }
  const text = payload.toString('utf8');
  const body: unknown = text.length === 0 ? {} : JSON.parse(text);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('reply body is not a JSON object');
  return { status, body: body as CniWireReply };
}

/** RFC 9112 section 7.1: size line in hex, data, CRLF; a zero size ends the body. */
function dechunk(b: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = b.indexOf('\r\n', at);
    if (eol < 0) throw new Error('chunked reply truncated');
    const size = parseInt(b.subarray(at, eol).toString('latin1').split(';')[0] as string, 16);
    if (!Number.isFinite(size)) throw new Error('bad chunk size');
    if (size === 0) return Buffer.concat(parts);
    parts.push(b.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}
