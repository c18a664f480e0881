// The wire pieces under the fake device plugin: protobuf-lite and the device plugin messages
// against bytes written by hand from api.proto's field numbers (so a wrong number or wire type
// fails), gRPC framing, grpc-lite's client and server, and the HPACK :authority shim that lets
// kubelet 1.20's grpc-go talk to node:http2.
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as h2connect, createServer as h2createServer, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AllocateRequestCodec, AllocateResponseCodec, ListAndWatchResponseCodec, PreferredAllocationRequestCodec, RegisterRequestCodec,
  type AllocateResponse, type ListAndWatchResponse, type RegisterRequest,
} from '../../fakes/deviceplugin-v1beta1';
import {
  decodeGrpcMessage, encodeGrpcMessage, FrameReader, frameMessage, GrpcClient, GrpcError, GrpcServer, Status, type ServerStreamCall,
} from '../../fakes/grpc-lite';
import { AuthorityRewriter, HeaderBlockRewriter, HpackShimError } from '../../fakes/h2-authority-shim';
import { encodeVarint, ProtoError, ProtoMessage, ProtoWriter } from '../../fakes/protobuf-lite';

/** Bytes from numbers, latin1 strings, arrays and buffers, in order. */
const bytes = (...parts: Array<number | string | number[] | Buffer>): Buffer => Buffer.concat(parts.map((p) => {
  if (typeof p === 'string') return Buffer.from(p, 'latin1');
  if (Buffer.isBuffer(p)) return p;
  return Buffer.from(Array.isArray(p) ? p : [p]);
}));

describe('protobuf-lite', () => {
  it('encodes varints as the spec does, negative int64 as 10 bytes', () => {
    expect(encodeVarint(0)).toEqual(bytes(0x00));
    expect(encodeVarint(1)).toEqual(bytes(0x01));
    expect(encodeVarint(300)).toEqual(bytes(0xac, 0x02));
    expect(encodeVarint(2 ** 53 - 1)).toEqual(bytes(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f));
    expect(encodeVarint(-1)).toEqual(bytes(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01));
    expect(() => encodeVarint(1.5)).toThrow(ProtoError);
    const m = new ProtoMessage(new ProtoWriter().int(1, -1).int(2, 300).int(3, 0).finish());
    expect([m.int(1), m.int(2), m.int(3)]).toEqual([-1, 300, 0]);
    expect(m.fields).toHaveLength(2); // the 0 is a default: not on the wire
  });

  it('skips unknown fields of every wire type, lets the last singular value win, and fails on malformed input', () => {
    const m = new ProtoMessage(bytes(
      0x0a, 0x01, 'a', // 1: "a"
      0x48, 0x05, // 9: varint
      0x51, [1, 2, 3, 4, 5, 6, 7, 8], // 10: fixed64
      0x5d, [1, 2, 3, 4], // 11: fixed32
      0x0a, 0x01, 'b', // 1 again: "b" wins
    ));
    expect(m.string(1)).toBe('b');
    expect(m.strings(1)).toEqual(['a', 'b']);
    expect(m.string(2)).toBe('');
    expect(() => new ProtoMessage(bytes(0x08))).toThrow(/truncated varint/);
    expect(() => new ProtoMessage(bytes(0x0a, 0x05, 'ab'))).toThrow(/runs past the end/);
    expect(() => new ProtoMessage(bytes(0x0b))).toThrow(/wire type 3/); // groups
    expect(() => new ProtoMessage(bytes(0x08, 0x01)).string(1)).toThrow(/wire type 0, expected 2/);
  });

  it('writes and reads map<string,string> as entry messages {1: key, 2: value}', () => {
    const buf = new ProtoWriter().stringMap(4, { k: 'v', empty: '' }).finish();
    expect(buf).toEqual(bytes(0x22, 0x06, 0x0a, 0x01, 'k', 0x12, 0x01, 'v', 0x22, 0x09, 0x0a, 0x05, 'empty', 0x12, 0x00));
    expect(new ProtoMessage(buf).stringMap(4)).toEqual({ k: 'v', empty: '' });
  });
});

describe('device plugin v1beta1 messages against hand-written bytes', () => {
  const REGISTER = bytes(
    0x0a, 0x07, 'v1beta1', // version = 1
    0x12, 0x06, 'x.sock', // endpoint = 2
    0x1a, 0x06, 'a.io/b', // resource_name = 3
    0x22, 0x02, 0x08, 0x01, // options = 4 { pre_start_required = 1: true }
  );
  const register: RegisterRequest = {
    version: 'v1beta1', endpoint: 'x.sock', resourceName: 'a.io/b', options: { preStartRequired: true, getPreferredAllocationAvailable: false },
  };

  it('RegisterRequest', () => {
    expect(RegisterRequestCodec.encode(register)).toEqual(REGISTER);
    expect(RegisterRequestCodec.decode(REGISTER)).toEqual(register);
    // Unknown trailing fields are ignored, an absent options message stays absent.
    expect(RegisterRequestCodec.decode(Buffer.concat([REGISTER, bytes(0x48, 0x01)]))).toEqual(register);
    expect(RegisterRequestCodec.decode(bytes(0x1a, 0x01, 'r')).options).toBeUndefined();
    // An empty options message is present, with both flags false (as kubelet stores it).
    expect(RegisterRequestCodec.encode({ ...register, options: { preStartRequired: false, getPreferredAllocationAvailable: false } }).subarray(-2)).toEqual(bytes(0x22, 0x00));
  });

  it('ListAndWatchResponse with Device{ID, health, topology}', () => {
    const wire = bytes(
      0x0a, 0x1d, // devices = 1
      0x0a, 0x0c, '0000:03:00.2', 0x12, 0x07, 'Healthy', 0x1a, 0x04, 0x0a, 0x02, 0x08, 0x01, // ID, health, topology{nodes{ID 1}}
      0x0a, 0x0e,
      0x0a, 0x01, 'b', 0x12, 0x09, 'Unhealthy',
    );
    const msg: ListAndWatchResponse = { devices: [{ id: '0000:03:00.2', health: 'Healthy', numaNodes: [1] }, { id: 'b', health: 'Unhealthy' }] };
    expect(ListAndWatchResponseCodec.encode(msg)).toEqual(wire);
    expect(ListAndWatchResponseCodec.decode(wire)).toEqual(msg);
    const negative = { devices: [{ id: 'c', health: 'Healthy', numaNodes: [-1, 0] }] };
    expect(ListAndWatchResponseCodec.decode(ListAndWatchResponseCodec.encode(negative))).toEqual(negative);
  });

  it('AllocateRequest and AllocateResponse with envs, mounts, devices, annotations', () => {
    const req = bytes(0x0a, 0x06, 0x0a, 0x01, 'a', 0x0a, 0x01, 'b', 0x0a, 0x00);
    expect(AllocateRequestCodec.decode(req)).toEqual({ containerRequests: [{ devicesIds: ['a', 'b'] }, { devicesIds: [] }] });
    expect(AllocateRequestCodec.encode({ containerRequests: [{ devicesIds: ['a', 'b'] }, { devicesIds: [] }] })).toEqual(req);

    const wire = bytes(
      0x0a, 0x32, // container_responses = 1
      0x0a, 0x06, 0x0a, 0x01, 'K', 0x12, 0x01, 'V', // envs = 1 {K: V}
      0x12, 0x0a, 0x0a, 0x02, '/c', 0x12, 0x02, '/h', 0x18, 0x01, // mounts = 2 {container_path, host_path, read_only}
      0x1a, 0x14, 0x0a, 0x06, '/dev/x', 0x12, 0x06, '/dev/y', 0x1a, 0x02, 'rw', // devices = 3 {container_path, host_path, permissions}
      0x22, 0x06, 0x0a, 0x01, 'a', 0x12, 0x01, 'b', // annotations = 4 {a: b}
    );
    const msg: AllocateResponse = {
      containerResponses: [{
        envs: { K: 'V' }, mounts: [{ containerPath: '/c', hostPath: '/h', readOnly: true }],
        devices: [{ containerPath: '/dev/x', hostPath: '/dev/y', permissions: 'rw' }], annotations: { a: 'b' },
      }],
    };
    expect(AllocateResponseCodec.encode(msg)).toEqual(wire);
    expect(AllocateResponseCodec.decode(wire)).toEqual(msg);
  });

  it('PreferredAllocationRequest', () => {
    const wire = bytes(0x0a, 0x08, 0x0a, 0x01, 'a', 0x12, 0x01, 'b', 0x18, 0x02);
    const msg = { containerRequests: [{ availableDeviceIds: ['a'], mustIncludeDeviceIds: ['b'], allocationSize: 2 }] };
    expect(PreferredAllocationRequestCodec.encode(msg)).toEqual(wire);
    expect(PreferredAllocationRequestCodec.decode(wire)).toEqual(msg);
  });
});

describe('gRPC framing', () => {
  it('prefixes a 0 flag and the big-endian length; reassembles messages from any chunking', () => {
    expect(frameMessage(Buffer.from('abc'))).toEqual(bytes(0, 0, 0, 0, 3, 'abc'));
    const wire = Buffer.concat([frameMessage(Buffer.from('first')), frameMessage(Buffer.alloc(0)), frameMessage(Buffer.from('x'.repeat(300)))]);
    const r = new FrameReader();
    const got: string[] = [];
    for (const b of wire) got.push(...r.push(Buffer.from([b])).map((m) => m.toString()));
    expect(got).toEqual(['first', '', 'x'.repeat(300)]);
    expect(r.pending).toBe(0);
    expect(new FrameReader().push(bytes(0, 0, 0, 0, 9, 'ab')).length).toBe(0);
    expect(() => new FrameReader().push(bytes(1, 0, 0, 0, 1, 'a'))).toThrow(GrpcError);
    expect(() => new FrameReader().push(bytes(0, 0xff, 0, 0, 0))).toThrow(/exceeds/);
  });

  it('percent-encodes grpc-message', () => {
    expect(encodeGrpcMessage('100% é\n')).toBe('100%25 %C3%A9%0A');
    expect(decodeGrpcMessage('100%25 %C3%A9%0A')).toBe('100% é\n');
    expect(decodeGrpcMessage('bad %zz')).toBe('bad %zz');
  });
});

const dirs: string[] = [];
const servers: GrpcServer[] = [];
const clients: GrpcClient[] = [];
const sessions: ClientHttp2Session[] = [];

afterEach(async () => {
  for (const s of sessions.splice(0)) s.destroy();
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close(0)));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function serve(setup: (s: GrpcServer) => void): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ovnode-grpc-'));
  dirs.push(dir);
  const server = new GrpcServer();
  setup(server);
  servers.push(server);
  const path = join(dir, 's.sock');
  await server.listen(path);
  return path;
}

async function client(path: string): Promise<GrpcClient> {
  const c = await GrpcClient.connect(path);
  clients.push(c);
  return c;
}

describe('GrpcServer and GrpcClient', () => {
  it('unary calls, statuses (trailers-only and after messages) and unknown methods', async () => {
    const path = await serve((s) => s
      .unary('/t.S/Echo', (req) => Buffer.concat([Buffer.from('echo:'), req]))
      .unary('/t.S/Fail', () => {
        throw new GrpcError(Status.NOT_FOUND, 'nope: 50% é');
      })
      .unary('/t.S/Crash', () => {
        throw new Error('boom');
      })
      .serverStream('/t.S/TwoThenFail', (_req, call) => {
        call.send(Buffer.from('1'));
        call.send(Buffer.from('2'));
        call.end(new GrpcError(Status.UNAVAILABLE, 'gone'));
      }));
    const c = await client(path);
    expect((await c.unary('/t.S/Echo', Buffer.from('hi'))).toString()).toBe('echo:hi');
    expect((await c.unary('/t.S/Echo', Buffer.alloc(0))).toString()).toBe('echo:');
    await expect(c.unary('/t.S/Fail', Buffer.alloc(0))).rejects.toMatchObject({ code: Status.NOT_FOUND, message: 'nope: 50% é' });
    await expect(c.unary('/t.S/Crash', Buffer.alloc(0))).rejects.toMatchObject({ code: Status.UNKNOWN, message: 'boom' });
    await expect(c.unary('/t.S/Missing', Buffer.alloc(0))).rejects.toMatchObject({ code: Status.UNIMPLEMENTED });
    const got: string[] = [];
    await expect(c.serverStream('/t.S/TwoThenFail', Buffer.alloc(0), (m) => got.push(m.toString())).done).rejects.toMatchObject({ code: Status.UNAVAILABLE });
    expect(got).toEqual(['1', '2']);
    // A unary call answered by a stream of two is an error for the caller.
    await expect(c.unary('/t.S/TwoThenFail', Buffer.alloc(0))).rejects.toMatchObject({ code: Status.UNAVAILABLE });
  });

  it('server streams: messages as they come, OK at the end; cancel reaches the server; close cuts calls off', async () => {
    const calls: ServerStreamCall[] = [];
    let closedOnServer = 0;
    const path = await serve((s) => s.serverStream('/t.S/Watch', (req, call) => {
      calls.push(call);
      call.onClose(() => closedOnServer++);
      call.send(req);
    }));
    const c = await client(path);
    const got: string[] = [];
    const first = c.serverStream('/t.S/Watch', Buffer.from('a'), (m) => got.push(m.toString()));
    await expect.poll(() => got).toEqual(['a']);
    calls[0]?.send(Buffer.from('b'));
    calls[0]?.end();
    await first.done;
    expect(got).toEqual(['a', 'b']);
    expect(calls[0]?.open).toBe(false);
    expect(calls[0]?.send(Buffer.from('late'))).toBe(false);

    const second = c.serverStream('/t.S/Watch', Buffer.from('x'), () => {});
    await expect.poll(() => calls.length).toBe(2);
    second.cancel();
    await expect(second.done).rejects.toMatchObject({ code: Status.CANCELLED });
    await expect.poll(() => closedOnServer).toBe(2);

    const third = c.serverStream('/t.S/Watch', Buffer.from('y'), () => {});
    await expect.poll(() => calls.length).toBe(3);
    await servers[0]?.close(0);
    await expect(third.done).rejects.toMatchObject({ code: Status.UNAVAILABLE });
  });

  it('deadlines, and connecting to nothing', async () => {
    const path = await serve((s) => s.unary('/t.S/Never', () => new Promise<Buffer>(() => {})));
    const c = await client(path);
    await expect(c.unary('/t.S/Never', Buffer.alloc(0), { timeoutMs: 50 })).rejects.toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    await expect(GrpcClient.connect(join(dirs[0] as string, 'missing.sock'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('h2-authority-shim', () => {
  // What kubelet 1.20's grpc-go sends: the socket path as :authority.
  const request = (s: ClientHttp2Session, authority: string, path = '/t.S/Echo') => s.request({
    ':method': 'POST', ':path': path, ':authority': authority, 'content-type': 'application/grpc', te: 'trailers',
  });

  async function connect(path: string): Promise<ClientHttp2Session> {
    const s = h2connect('http://localhost', { createConnection: () => netConnect(path) });
    sessions.push(s);
    s.on('error', () => {});
    await once(s, 'connect');
    return s;
  }

  async function status(s: ClientHttp2Session, authority: string): Promise<string> {
    const req = request(s, authority);
    let st = 'no status';
    req.on('response', (h) => {
      if (h['grpc-status'] !== undefined) st = String(h['grpc-status']);
    });
    req.on('trailers', (t) => {
      st = String(t['grpc-status']);
    });
    req.on('error', () => {});
    req.resume();
    req.end(frameMessage(Buffer.from('x')));
    await new Promise((r) => req.once('close', r)); // not once(): it rejects on the 'error' a reset brings
    return req.rstCode ? `rst ${req.rstCode}` : st;
  }

  it('is needed: plain node:http2 resets a request whose :authority is a socket path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ovnode-grpc-'));
    dirs.push(dir);
    const plain = h2createServer();
    plain.on('stream', (st) => st.respond({ ':status': 200 }, { endStream: true }));
    await new Promise<void>((r) => plain.listen(join(dir, 'p.sock'), r));
    const s = await connect(join(dir, 'p.sock'));
    try {
      expect(await status(s, '/var/lib/kubelet/device-plugins/x.sock')).toBe('rst 1'); // PROTOCOL_ERROR
    } finally {
      s.destroy();
      await new Promise((r) => plain.close(r));
    }
  });

  it('lets such requests through GrpcServer, again and again on one connection (dynamic table references)', async () => {
    const path = await serve((s) => s.unary('/t.S/Echo', (req) => req));
    const s = await connect(path);
    for (let i = 0; i < 4; i++) expect(await status(s, path)).toBe('0');
    expect(await status(s, 'other/authority')).toBe('0');
    expect(await status(s, path)).toBe('0');
  });

  it('re-emits every field as a non-indexed literal, resolving the client dynamic table, with :authority replaced', () => {
    const r = new HeaderBlockRewriter();
    const block = bytes(
      0x82, // indexed static 2 (:method GET)
      0x41, 0x05, 'a/b/c', // literal, incremental indexing, name = static 1 (:authority)
      0x40, 0x03, 'foo', 0x03, 'bar', // literal, incremental indexing, new name
      0x3f, 0xe1, 0x1f, // dynamic table size update to 4096: dropped
      0x7a, 0x02, 'ua', // literal, incremental indexing, name = static 58 (user-agent)
      0xbf, // indexed 63: foo: bar (62 is the newest, user-agent)
      0xc0, // indexed 64: :authority a/b/c
      0x10, 0x0a, ':authority', 0x01, '/', // never indexed, new name :authority
      0x00, 0x01, 'x', 0x01, 'y', // without indexing, new name
    );
    const LOCALHOST = bytes(0x09, 'localhost');
    expect(r.rewrite(block)).toEqual(bytes(
      0x82,
      0x01, LOCALHOST,
      0x00, 0x03, 'foo', 0x03, 'bar',
      0x0f, 0x2b, 0x02, 'ua', // 58 with a 4-bit prefix: 15 + 43
      0x00, 0x03, 'foo', 0x03, 'bar',
      0x01, LOCALHOST,
      0x10, 0x0a, ':authority', LOCALHOST,
      0x00, 0x01, 'x', 0x01, 'y',
    ));
    // The mirror persists across blocks: 62 is still user-agent.
    expect(r.rewrite(bytes(0xbe))).toEqual(bytes(0x0f, 0x2b, 0x02, 'ua'));
    expect(() => r.rewrite(bytes(0xc1))).toThrow(HpackShimError); // 65: only three entries
    expect(() => r.rewrite(bytes(0x41, 0x05, 'ab'))).toThrow(/inside a string/);
  });

  it('joins HEADERS + CONTINUATION, drops padding, keeps priority and flags, passes other frames through', () => {
    const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
    const frame = (type: number, flags: number, stream: number, payload: Buffer): Buffer => {
      const h = Buffer.alloc(9);
      h.writeUIntBE(payload.length, 0, 3);
      h[3] = type;
      h[4] = flags;
      h.writeUInt32BE(stream, 5);
      return Buffer.concat([h, payload]);
    };
    const settings = frame(0x4, 0, 0, bytes(0, 3, 0, 0, 0, 100));
    const headers = frame(0x1, 0x1 | 0x8 | 0x20, 1, bytes(2, [0x80, 0, 0, 0, 7], 0x82, 0x41, 0x03, 'a/b', [0xee, 0xee])); // END_STREAM|PADDED|PRIORITY
    const continuation = frame(0x9, 0x4, 1, bytes(0x84)); // END_HEADERS
    const data = frame(0x0, 0x1, 3, bytes('body'));
    const input = Buffer.concat([Buffer.from(PREFACE, 'latin1'), settings, headers, continuation, data]);

    const expected = Buffer.concat([
      Buffer.from(PREFACE, 'latin1'), settings,
      frame(0x1, 0x1 | 0x20 | 0x4, 1, bytes([0x80, 0, 0, 0, 7], 0x82, 0x01, 0x09, 'localhost', 0x84)),
      data,
    ]);
    expect(Buffer.concat(new AuthorityRewriter().push(input))).toEqual(expected);
    const byByte = new AuthorityRewriter();
    const out: Buffer[] = [];
    for (const b of input) out.push(...byByte.push(Buffer.from([b])));
    expect(Buffer.concat(out)).toEqual(expected);

    expect(() => new AuthorityRewriter().push(Buffer.from('GET / HTTP/1.1\r\n'))).toThrow(/preface/);
    const interleaved = Buffer.concat([Buffer.from(PREFACE, 'latin1'), frame(0x1, 0, 1, bytes(0x82)), data]);
    expect(() => new AuthorityRewriter().push(interleaved)).toThrow(/inside a header block/);
  });

  it('splits a rewritten block larger than a frame into HEADERS + CONTINUATIONs', () => {
    const big = 'v'.repeat(40_000);
    const len = [0x7f, ...(() => { // 7-bit prefix integer 40000
      const out: number[] = [];
      let rest = big.length - 127;
      while (rest >= 0x80) { out.push((rest % 0x80) | 0x80); rest = Math.floor(rest / 0x80); }
      out.push(rest);
      return out;
    })()];
    const block = bytes(0x00, 0x01, 'x', len, big);
    const h = Buffer.alloc(9);
    h.writeUIntBE(block.length, 0, 3);
    h[3] = 0x1;
    h[4] = 0x4;
    h.writeUInt32BE(5, 5);
    const out = Buffer.concat(new AuthorityRewriter().push(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), h, block]))).subarray(24);
    const frames: Array<{ type: number; flags: number; payload: Buffer }> = [];
    for (let pos = 0; pos < out.length;) {
      const l = out.readUIntBE(pos, 3);
      frames.push({ type: out[pos + 3] as number, flags: out[pos + 4] as number, payload: out.subarray(pos + 9, pos + 9 + l) });
      expect(l).toBeLessThanOrEqual(16_384);
      pos += 9 + l;
    }
    expect(frames.map((f) => [f.type, f.flags])).toEqual([[0x1, 0], [0x9, 0], [0x9, 4]]);
    expect(Buffer.concat(frames.map((f) => f.payload))).toEqual(block);
  });
});
