// Rewrites the :authority of every request a client sends to a node:http2 server, on the raw
// HTTP/2 byte stream (client -> server direction only).
//
// Why: kubelet 1.20 dials device plugins with grpc-go v1.27.1 and a target that is the socket path
// ("/var/lib/kubelet/device-plugins/x.sock"), and that grpc-go sends the target as :authority.
// nghttp2 (inside node:http2) validates :authority as RFC 3986 says, finds '/', and resets the
// stream with PROTOCOL_ERROR; node:http2 has no option to turn that check off. (Later grpc-go
// sends "localhost" for unix sockets.) Seen with the real grpc-go client of the 1.20 source.
//
// How, without decoding Huffman strings: HPACK (RFC 7541) field representations are walked by
// their prefixes and length fields only. Every field is re-emitted as a literal *without indexing*
// (never-indexed ones stay never-indexed), so nghttp2's dynamic table stays empty and needs no
// sizes kept in step; references to the client's dynamic table are resolved here from a mirror
// of the entries it added (raw encoded bytes, newest first). The mirror never needs to evict: the
// client evicts only entries it will not reference again, and indices count from the newest.
// Dynamic table size updates are dropped for the same reason. An :authority field (static name
// index 1, or the name spelled out) gets the value "localhost". Header blocks split over
// CONTINUATION frames are joined, padding is dropped, PRIORITY data kept.

import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME_HEADERS = 0x1;
const FRAME_CONTINUATION = 0x9;
const FLAG_END_STREAM = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
/** SETTINGS_MAX_FRAME_SIZE's initial value; node:http2 does not raise it for what it receives. */
const MAX_FRAME = 16_384;
/** Static table size (RFC 7541 Appendix A); index 1 is :authority. */
const STATIC_ENTRIES = 61;
const STATIC_AUTHORITY = 1;
/** More entries than any 64 KiB table can hold (32 bytes of overhead each): a runaway peer, not HTTP/2. */
const MAX_MIRRORED = 2048;

export class HpackShimError extends Error {
  override readonly name = 'HpackShimError';
}

/** A field name: a static table index, or a string literal exactly as it was on the wire. */
type Name = number | Buffer;
interface Entry { name: Name; value: Buffer }

function readInt(buf: Buffer, pos: number, prefixBits: number): [number, number] {
  if (pos >= buf.length) throw new HpackShimError('header block ends inside an integer');
  const mask = (1 << prefixBits) - 1;
  let value = (buf[pos] as number) & mask;
  pos++;
  if (value < mask) return [value, pos];
  for (let shift = 0; shift <= 28; shift += 7) {
    if (pos >= buf.length) throw new HpackShimError('header block ends inside an integer');
    const b = buf[pos++] as number;
    value += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return [value, pos];
  }
  throw new HpackShimError('HPACK integer too large');
}

function writeInt(value: number, prefixBits: number, firstBits: number): Buffer {
  const mask = (1 << prefixBits) - 1;
  if (value < mask) return Buffer.from([firstBits | value]);
  const out = [firstBits | mask];
  let rest = value - mask;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
  return Buffer.from(out);
}

/** A string literal, length prefix and H bit included, as raw bytes. */
function readString(buf: Buffer, pos: number): [Buffer, number] {
  const [len, start] = readInt(buf, pos, 7);
  if (start + len > buf.length) throw new HpackShimError('header block ends inside a string');
  return [buf.subarray(pos, start + len), start + len];
}

/** A plain (non-Huffman) string literal. */
function plainString(s: string): Buffer {
  const bytes = Buffer.from(s, 'latin1');
  return Buffer.concat([writeInt(bytes.length, 7, 0), bytes]);
}

const AUTHORITY_NAME = plainString(':authority');

/** Rewrites one complete header block. Keeps the mirror of the client's dynamic table across blocks. */
export class HeaderBlockRewriter {
  /** The client's dynamic table as it sees it, newest first. */
  private readonly table: Entry[] = [];

  constructor(private readonly authority: Buffer = plainString('localhost')) {}

  rewrite(block: Buffer): Buffer {
    const out: Buffer[] = [];
    let pos = 0;
    while (pos < block.length) {
      const first = block[pos] as number;
      if (first & 0x80) {
        // Indexed field.
        const [index, next] = readInt(block, pos, 7);
        if (index === 0) throw new HpackShimError('indexed field with index 0');
        if (index <= STATIC_ENTRIES) out.push(block.subarray(pos, next));
        else {
          const e = this.dynamic(index);
          out.push(this.literal(0x00, e.name, e.value));
        }
        pos = next;
      } else if ((first & 0xc0) === 0x40) {
        // Literal with incremental indexing: the client adds it to its table; nghttp2 must not.
        const [name, value, next] = this.readLiteral(block, pos, 6);
        this.table.unshift({ name, value });
        if (this.table.length > MAX_MIRRORED) throw new HpackShimError('dynamic table mirror overflow');
        out.push(this.literal(0x00, name, value));
        pos = next;
      } else if ((first & 0xe0) === 0x20) {
        // Dynamic table size update: only the client's table shrinks; nghttp2's stays empty anyway.
        pos = readInt(block, pos, 5)[1];
      } else {
        // Literal without indexing (0000) or never indexed (0001): kept as it is, names resolved.
        const [name, value, next] = this.readLiteral(block, pos, 4);
        out.push(this.literal(first & 0x10, name, value));
        pos = next;
      }
    }
    return Buffer.concat(out);
  }

  private dynamic(index: number): Entry {
    const e = this.table[index - STATIC_ENTRIES - 1];
    if (!e) throw new HpackShimError(`index ${index} is past the dynamic table (${this.table.length} entries)`);
    return e;
  }

  private readLiteral(block: Buffer, pos: number, prefixBits: number): [Name, Buffer, number] {
    const [index, afterIndex] = readInt(block, pos, prefixBits);
    let name: Name;
    let next = afterIndex;
    if (index === 0) [name, next] = readString(block, afterIndex);
    else if (index <= STATIC_ENTRIES) name = index;
    else name = this.dynamic(index).name;
    const [value, end] = readString(block, next);
    return [name, value, end];
  }

  private literal(typeBits: number, name: Name, value: Buffer): Buffer {
    const isAuthority = name === STATIC_AUTHORITY || (Buffer.isBuffer(name) && name.equals(AUTHORITY_NAME));
    const v = isAuthority ? this.authority : value;
    return typeof name === 'number'
      ? Buffer.concat([writeInt(name, 4, typeBits), v])
      : Buffer.concat([Buffer.from([typeBits]), name, v]);
  }
}

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head.writeUInt8(type, 3);
  head.writeUInt8(flags, 4);
  head.writeUInt32BE(streamId, 5);
  return Buffer.concat([head, payload]);
}

/** The client -> server byte stream of one connection: frames pass through, header blocks are rewritten. */
export class AuthorityRewriter {
  private buf: Buffer = Buffer.alloc(0);
  private prefaceDone = false;
  private readonly blocks: HeaderBlockRewriter;
  private pending: { streamId: number; flags: number; priority: Buffer | undefined; fragments: Buffer[] } | undefined;

  constructor(authority = 'localhost') {
    this.blocks = new HeaderBlockRewriter(plainString(authority));
  }

  /** Bytes as they came from the client; returns what to hand to the server. Throws on malformed HTTP/2. */
  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    if (!this.prefaceDone) {
      if (this.buf.length < PREFACE.length) {
        if (!PREFACE.subarray(0, this.buf.length).equals(this.buf)) throw new HpackShimError('not an HTTP/2 connection preface');
        return out;
      }
      if (!this.buf.subarray(0, PREFACE.length).equals(PREFACE)) throw new HpackShimError('not an HTTP/2 connection preface');
      out.push(this.buf.subarray(0, PREFACE.length));
      this.buf = this.buf.subarray(PREFACE.length);
      this.prefaceDone = true;
    }
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) break;
      const type = this.buf.readUInt8(3);
      const flags = this.buf.readUInt8(4);
      const streamId = this.buf.readUInt32BE(5) & 0x7fffffff;
      const payload = this.buf.subarray(9, 9 + len);
      const whole = this.buf.subarray(0, 9 + len);
      this.buf = this.buf.subarray(9 + len);
      if (this.pending && (type !== FRAME_CONTINUATION || streamId !== this.pending.streamId)) {
        throw new HpackShimError(`frame type ${type} on stream ${streamId} inside a header block of stream ${this.pending.streamId}`);
      }
      if (type === FRAME_HEADERS) this.startBlock(streamId, flags, payload);
      else if (type === FRAME_CONTINUATION) {
        if (!this.pending) throw new HpackShimError('CONTINUATION without HEADERS');
        this.pending.fragments.push(payload);
      } else {
        out.push(whole);
        continue;
      }
      if (flags & FLAG_END_HEADERS) out.push(...this.finishBlock());
    }
    return out;
  }

  private startBlock(streamId: number, flags: number, payload: Buffer): void {
    let pos = 0;
    let end = payload.length;
    if (flags & FLAG_PADDED) {
      const pad = payload.readUInt8(0);
      pos = 1;
      end -= pad;
    }
    let priority: Buffer | undefined;
    if (flags & FLAG_PRIORITY) {
      priority = payload.subarray(pos, pos + 5);
      pos += 5;
    }
    if (end < pos) throw new HpackShimError('HEADERS padding longer than the frame');
    this.pending = { streamId, flags: flags & (FLAG_END_STREAM | FLAG_PRIORITY), priority, fragments: [payload.subarray(pos, end)] };
  }

  private finishBlock(): Buffer[] {
    const p = this.pending as NonNullable<AuthorityRewriter['pending']>;
    this.pending = undefined;
    const block = this.blocks.rewrite(Buffer.concat(p.fragments));
    const head = p.priority ?? Buffer.alloc(0);
    const room = MAX_FRAME - head.length;
    if (block.length <= room) return [frame(FRAME_HEADERS, p.flags | FLAG_END_HEADERS, p.streamId, Buffer.concat([head, block]))];
    const frames = [frame(FRAME_HEADERS, p.flags, p.streamId, Buffer.concat([head, block.subarray(0, room)]))];
    for (let at = room; at < block.length; at += MAX_FRAME) {
      const last = at + MAX_FRAME >= block.length;
      frames.push(frame(FRAME_CONTINUATION, last ? FLAG_END_HEADERS : 0, p.streamId, block.subarray(at, at + MAX_FRAME)));
    }
    return frames;
  }
}

/**
 * The server's side of a client connection, with the client's bytes rewritten: hand it to
 * http2Server.emit('connection', ...) (node:http2 drives any Duplex that is not a native socket
 * through its JS stream wrapper). What the server writes goes to the client unchanged.
 */
export class AuthorityShimSocket extends Duplex {
  constructor(private readonly raw: Socket, authority = 'localhost') {
    super();
    const rewriter = new AuthorityRewriter(authority);
    raw.on('data', (chunk: Buffer) => {
      let out: Buffer[];
      try {
        out = rewriter.push(chunk);
      } catch (e) {
        this.destroy(e as Error); // not HTTP/2 we can follow: drop the connection
        return;
      }
      for (const b of out) this.push(b);
    });
    raw.on('end', () => this.push(null));
    raw.on('close', () => this.destroy());
    raw.on('error', () => {}); // 'close' follows
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.raw.destroyed) return cb();
    this.raw.write(chunk, () => cb());
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.raw.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.raw.destroy();
    cb(err);
  }

  // What node:http2 may call on a connection; a unix socket has nothing to set.
  setTimeout(): this {
    return this;
  }

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }
}
