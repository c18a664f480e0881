// Hand-written protobuf (proto3) wire format, just enough for the device plugin API messages that
// test/fakes/deviceplugin-v1beta1.ts describes: varints, length-delimited fields (strings, bytes,
// nested messages, map entries) and the field numbers and wire types of the encoding spec
// (protobuf.dev "Encoding"). There is no protobuf package in node_modules and the tests take no
// new dependency for a handful of messages.
//
// Writing follows proto3's implicit presence: scalars equal to their default ('' / 0 / false) are
// left out, as every protobuf implementation does; nested messages are written when present, even
// empty. Reading keeps every field with its wire type so a getter that expects another wire type
// for a field number fails loudly instead of misreading bytes: a message encoded with the wrong
// field numbers does not decode into the right shape by accident.

/** Wire types (the low 3 bits of a tag). 3 and 4 (groups) are obsolete and rejected. */
export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

export class ProtoError extends Error {
  override readonly name = 'ProtoError';
}

const MAX_FIELD = 2 ** 29 - 1;

/** Varint bytes of a non-negative integer below 2^64 (negative int64s: 10 bytes of two's complement). */
export function encodeVarint(value: number | bigint): Buffer {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new ProtoError(`varint: ${value} is not a safe integer`);
  let v = typeof value === 'bigint' ? value : BigInt(value);
  if (v < 0n) v = BigInt.asUintN(64, v);
  if (v >= 1n << 64n) throw new ProtoError(`varint: ${value} does not fit 64 bits`);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Buffer.from(out);
}

/** Builds one message; each method appends a field (tag + payload). */
export class ProtoWriter {
  private readonly parts: Buffer[] = [];

  private tag(field: number, wire: number): void {
    if (!Number.isInteger(field) || field < 1 || field > MAX_FIELD) throw new ProtoError(`field number ${field} is out of range`);
    this.parts.push(encodeVarint(field * 8 + wire));
  }

  /** Any varint-typed scalar (int32, int64, uint*, enum); negative values as 64-bit two's complement. */
  int(field: number, value: number | bigint): this {
    if (value === 0 || value === 0n) return this;
    this.tag(field, WIRE_VARINT);
    this.parts.push(encodeVarint(value));
    return this;
  }

  bool(field: number, value: boolean): this {
    return value ? this.int(field, 1) : this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WIRE_LEN);
    this.parts.push(encodeVarint(value.length), Buffer.from(value));
    return this;
  }

  /** A singular string: left out when empty. */
  string(field: number, value: string): this {
    return value === '' ? this : this.bytes(field, Buffer.from(value, 'utf8'));
  }

  /** A repeated string: every element is written, empty ones too (they are values, not defaults). */
  strings(field: number, values: readonly string[]): this {
    for (const v of values) this.bytes(field, Buffer.from(v, 'utf8'));
    return this;
  }

  /** A nested message, written when present (an empty one too: presence is what it says). */
  message(field: number, encoded: Uint8Array | undefined): this {
    return encoded === undefined ? this : this.bytes(field, encoded);
  }

  messages(field: number, encoded: readonly Uint8Array[]): this {
    for (const m of encoded) this.bytes(field, m);
    return this;
  }

  /** map<string, string>: one entry message {1: key, 2: value} per pair, both always written. */
  stringMap(field: number, map: Readonly<Record<string, string>>): this {
    for (const [k, v] of Object.entries(map)) {
      this.bytes(field, new ProtoWriter().bytes(1, Buffer.from(k, 'utf8')).bytes(2, Buffer.from(v, 'utf8')).finish());
    }
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export interface ProtoField {
  field: number;
  wire: number;
  /** WIRE_VARINT: the value as unsigned 64 bits. */
  varint?: bigint;
  /** WIRE_LEN: the payload; WIRE_I64 / WIRE_I32: the 8 or 4 raw bytes. */
  bytes?: Buffer;
}

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let v = 0n;
  for (let i = 0; i < 10; i++) {
    if (pos + i >= buf.length) throw new ProtoError(`truncated varint at byte ${pos}`);
    const b = buf[pos + i] as number;
    v |= BigInt(b & 0x7f) << BigInt(7 * i);
    if ((b & 0x80) === 0) return [BigInt.asUintN(64, v), pos + i + 1];
  }
  throw new ProtoError(`varint longer than 10 bytes at byte ${pos}`);
}

/** Splits a message into its fields, in wire order (repeated fields and last-wins are the getters' business). */
export function decodeFields(buf: Buffer): ProtoField[] {
  const fields: ProtoField[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [tag, afterTag] = readVarint(buf, pos);
    const field = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (field < 1 || field > MAX_FIELD) throw new ProtoError(`field number ${field} at byte ${pos}`);
    pos = afterTag;
    switch (wire) {
      case WIRE_VARINT: {
        const [v, next] = readVarint(buf, pos);
        fields.push({ field, wire, varint: v });
        pos = next;
        break;
      }
      case WIRE_LEN: {
        const [len, start] = readVarint(buf, pos);
        const end = start + Number(len);
        if (len > BigInt(buf.length) || end > buf.length) throw new ProtoError(`field ${field}: length ${len} runs past the end (${buf.length} bytes)`);
        fields.push({ field, wire, bytes: buf.subarray(start, end) });
        pos = end;
        break;
      }
      case WIRE_I64:
      case WIRE_I32: {
        const n = wire === WIRE_I64 ? 8 : 4;
        if (pos + n > buf.length) throw new ProtoError(`field ${field}: truncated fixed${n * 8}`);
        fields.push({ field, wire, bytes: buf.subarray(pos, pos + n) });
        pos += n;
        break;
      }
      default:
        throw new ProtoError(`field ${field}: unsupported wire type ${wire}`);
    }
  }
  return fields;
}

/** A decoded message with typed getters by field number; unknown fields are ignored, as proto3 does. */
export class ProtoMessage {
  readonly fields: readonly ProtoField[];

  constructor(buf: Buffer) {
    this.fields = decodeFields(buf);
  }

  private all(field: number, wire: number, what: string): ProtoField[] {
    const found = this.fields.filter((f) => f.field === field);
    for (const f of found) {
      if (f.wire !== wire) throw new ProtoError(`field ${field}: wire type ${f.wire}, expected ${wire} (${what})`);
    }
    return found;
  }

  private payloads(field: number, what: string): Buffer[] {
    return this.all(field, WIRE_LEN, what).map((f) => f.bytes as Buffer);
  }

  strings(field: number): string[] {
    return this.payloads(field, 'string').map((b) => b.toString('utf8'));
  }

  /** Last occurrence wins (the spec's rule for singular fields); '' when absent. */
  string(field: number): string {
    return this.strings(field).at(-1) ?? '';
  }

  /** As a signed 64-bit value (int64 / int32 semantics); 0 when absent. */
  int(field: number): number {
    const last = this.all(field, WIRE_VARINT, 'varint').at(-1);
    if (!last) return 0;
    const v = BigInt.asIntN(64, last.varint as bigint);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new ProtoError(`field ${field}: ${v} is not a safe integer`);
    return Number(v);
  }

  bool(field: number): boolean {
    return this.int(field) !== 0;
  }

  messages(field: number): ProtoMessage[] {
    return this.payloads(field, 'message').map((b) => new ProtoMessage(b));
  }

  /** Last occurrence (proto merges repeated occurrences of a singular message; nothing here sends more than one). */
  message(field: number): ProtoMessage | undefined {
    return this.messages(field).at(-1);
  }

  stringMap(field: number): Record<string, string> {
    const out: Record<string, string> = {};
    for (const entry of this.messages(field)) out[entry.string(1)] = entry.string(2);
    return out;
  }
}
