// The streaming half of the API seam: a GET whose answer is a sequence of JSON values, one per
// line (what the apiserver writes for ?watch=true). api.ts keeps request/answer; watches need an
// answer that arrives over minutes, consumed as it comes.

import { KubeTransportError } from './errors';

export interface KubeStreamRequest {
  /** Absolute API path, e.g. `/api/v1/pods`. */
  path: string;
  query?: Record<string, string>;
  signal?: AbortSignal;
  /** No byte for this long and the connection is presumed dead (half-open TCP); default 6 min. */
  idleTimeoutMs?: number;
}

export interface KubeStreamResponse {
  status: number;
  /** For a non-2xx answer: the parsed body (a Status, usually). */
  body?: unknown;
  /** For a non-2xx answer: Retry-After (header or Status details), when given. */
  retryAfterMs?: number;
  /**
   * For a 2xx answer: the values in order, each parsed as soon as its line is complete. Ends when
   * the server ends the stream cleanly; throws KubeTransportError if the connection breaks (a
   * value cut in half is never yielded).
   */
  events: AsyncIterable<unknown>;
}

export interface KubeStreamApi {
  stream(req: KubeStreamRequest): Promise<KubeStreamResponse>;
}

const NEWLINE = 0x0a;

/**
 * Splits a byte stream into lines and parses each as JSON. A line's bytes are joined only once it
 * is complete, so an event spread over many chunks costs one copy.
 */
export async function* ndjson(source: AsyncIterable<Buffer>): AsyncGenerator<unknown, void, undefined> {
  let parts: Buffer[] = [];
  for await (const chunk of source) {
    let start = 0;
    for (let nl = chunk.indexOf(NEWLINE, start); nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
      const piece = chunk.subarray(start, nl);
      const line = parts.length === 0 ? piece : Buffer.concat([...parts, piece]);
      parts = [];
      start = nl + 1;
      const value = parseLine(line);
      if (value !== undefined) yield value;
    }
    if (start < chunk.length) parts.push(chunk.subarray(start));
  }
  // The apiserver ends every event with a newline: bytes after the last one are half an event.
  const rest = Buffer.concat(parts);
  if (rest.toString('utf8').trim() !== '') {
    throw new KubeTransportError('watch stream ended in the middle of an event', 'STREAM', false);
  }
}

function parseLine(line: Buffer): unknown {
  const text = line.toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new KubeTransportError(`watch stream carried a line that is not JSON: ${text.slice(0, 120)}`, 'STREAM', false, { cause: err });
  }
}
