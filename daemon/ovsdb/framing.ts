// Splits the OVSDB byte stream into JSON-RPC messages. RFC 7047 §4 sends JSON-RPC 1.0 objects
// back to back with no delimiter (ovsdb-server adds no newline), so message boundaries are found
// by tracking brace depth outside of JSON strings.

import { OvsdbError } from '../../common/errors';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/** JSON insignificant whitespace (RFC 8259 §2). */
function isWhitespace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
}

/** Default ceiling for one message: a full dump of a large NB database fits well below it. */
export const DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

/**
 * Incremental splitter. It scans bytes, not characters: the structural bytes `{ } [ ] " \` are
 * ASCII and never occur inside a UTF-8 multibyte sequence, so a character split across two chunks
 * is harmless; each message is decoded only once all of its bytes are in.
 */
export class JsonStreamSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;

  constructor(private readonly maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES) {}

  /** Feeds one chunk; returns the texts of the messages it completed, in order. */
  push(chunk: Buffer): string[] {
    const out: string[] = [];
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i] as number;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (b === BACKSLASH) this.escaped = true;
        else if (b === QUOTE) this.inString = false;
        continue;
      }
      if (this.depth === 0) {
        // Between messages nothing is pending, so leading whitespace can simply be dropped.
        if (isWhitespace(b)) {
          start = i + 1;
          continue;
        }
        if (b !== OPEN_BRACE) {
          throw new OvsdbError(`OVSDB stream: expected '{' between messages, got byte 0x${b.toString(16)}`);
        }
      }
      if (b === QUOTE) this.inString = true;
      else if (b === OPEN_BRACE || b === OPEN_BRACKET) this.depth++;
      else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
        this.depth--;
        if (this.depth === 0) {
          out.push(this.take(chunk.subarray(start, i + 1)));
          start = i + 1;
        }
      }
    }
    if (start < chunk.length) this.keep(chunk.subarray(start));
    return out;
  }

  /** Bytes of an unfinished message held back (for tests and diagnostics). */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  private keep(part: Buffer): void {
    this.pendingBytes += part.length;
    if (this.pendingBytes > this.maxMessageBytes) {
      throw new OvsdbError(`OVSDB stream: message larger than ${this.maxMessageBytes} bytes`);
    }
    this.pending.push(part);
  }

  private take(last: Buffer): string {
    if (this.pending.length === 0) return last.toString('utf8');
    const whole = Buffer.concat([...this.pending, last]);
    this.pending = [];
    this.pendingBytes = 0;
    return whole.toString('utf8');
  }
}
