// The fake SR-IOV device plugin against a fake kubelet written here with plain node:http2 (not
// grpc-lite, so a framing mistake shared by the plugin's server and client cannot cancel out):
// registration, ListAndWatch with health updates, Allocate's env, re-registration when its socket
// is deleted (what a restarting kubelet does), start/stop, and the bundled command line.
// Requests carry the socket path as :authority, as kubelet 1.20's grpc-go does.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import {
  connect as h2connect, createServer as h2createServer, type ClientHttp2Session, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Session,
} from 'node:http2';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AllocateRequestCodec, AllocateResponseCodec, ListAndWatchResponseCodec, PreferredAllocationRequestCodec, PreferredAllocationResponseCodec,
  RegisterRequestCodec, type Device, type RegisterRequest,
} from '../../fakes/deviceplugin-v1beta1';
import { FakeSriovDevicePlugin, pciDeviceEnvName, type FakeSriovDevicePluginOptions } from '../../fakes/fake-sriov-device-plugin';

const RESOURCE = 'ovnode.io/fake_vf';
const VFS = ['0000:03:00.2', '0000:03:00.3', '0000:03:00.4'];

// ------------------------------------------------------------------------------- gRPC by hand

/** gRPC length-prefixed messages, parsed by hand: flag 0, u32 BE length, bytes. */
function unframe(buf: Buffer): { messages: Buffer[]; rest: Buffer } {
  const messages: Buffer[] = [];
  let pos = 0;
  while (buf.length - pos >= 5) {
    expect(buf[pos], 'compressed flag').toBe(0);
    const len = buf.readUInt32BE(pos + 1);
    if (buf.length - pos - 5 < len) break;
    messages.push(buf.subarray(pos + 5, pos + 5 + len));
    pos += 5 + len;
  }
  return { messages, rest: buf.subarray(pos) };
}

function frame(msg: Buffer): Buffer {
  const head = Buffer.from([0, 0, 0, 0, 0]);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}

interface RawCall {
  headers: Promise<IncomingHttpHeaders>;
  /** All messages so far; grows as they arrive. */
  messages: Buffer[];
  /** Resolves with the trailers (or the trailers-only headers) when the call ends. */
  status: Promise<IncomingHttpHeaders>;
  nextMessage(): Promise<Buffer>;
  cancel(): void;
}

/** A gRPC call as kubelet 1.20 makes it: POST, application/grpc, te: trailers, :authority = the socket path. */
function rawCall(session: ClientHttp2Session, socketPath: string, path: string, body: Buffer): RawCall {
  const req = session.request({
    ':method': 'POST', ':path': path, ':authority': socketPath, 'content-type': 'application/grpc', te: 'trailers',
  });
  const messages: Buffer[] = [];
  const waiters: Array<() => void> = [];
  let pending = Buffer.alloc(0);
  let trailers: IncomingHttpHeaders | undefined;
  let seen = 0;
  const headers = new Promise<IncomingHttpHeaders>((res) => req.once('response', (h) => {
    if (h['grpc-status'] !== undefined) trailers = h; // trailers-only
    res(h);
  }));
  req.on('trailers', (t) => {
    trailers = t;
  });
  req.on('data', (chunk: Buffer) => {
    const r = unframe(Buffer.concat([pending, chunk]));
    pending = Buffer.from(r.rest);
    messages.push(...r.messages);
    for (const w of waiters.splice(0)) w();
  });
  req.on('error', () => {});
  const status = new Promise<IncomingHttpHeaders>((res, rej) => req.once('close', () => {
    for (const w of waiters.splice(0)) w();
    if (trailers) res(trailers);
    else rej(new Error(`${path}: closed without grpc-status (rst ${req.rstCode})`));
  }));
  status.catch(() => {});
  req.end(frame(body));
  return {
    headers, messages, status,
    nextMessage: () => new Promise((res, rej) => {
      const check = () => {
        if (messages.length > seen) return res(messages[seen++] as Buffer);
        if (req.closed) return rej(new Error(`${path}: ended after ${seen} messages`));
        waiters.push(check);
      };
      check();
    }),
    cancel: () => req.close(),
  };
}

async function unary(session: ClientHttp2Session, socketPath: string, path: string, body: Buffer): Promise<{ status: string; message: string; reply?: Buffer }> {
  const call = rawCall(session, socketPath, path, body);
  const t = await call.status;
  expect(call.messages.length).toBeLessThanOrEqual(1);
  return { status: String(t['grpc-status']), message: decodeURIComponent(String(t['grpc-message'] ?? '')), ...(call.messages[0] ? { reply: call.messages[0] } : {}) };
}

// --------------------------------------------------------------------------------- fake kubelet

/** kubelet's Registration service on <dir>/kubelet.sock, plain node:http2. */
class FakeKubelet {
  readonly registrations: RegisterRequest[] = [];
  readonly paths: string[] = [];
  private readonly waiters: Array<() => void> = [];
  private readonly sessions = new Set<ServerHttp2Session>();

  private constructor(readonly socketPath: string, private readonly server: Http2Server) {}

  /** reject: answer Register with this gRPC status code instead of OK. */
  static async start(dir: string, reject?: { code: number; message: string }): Promise<FakeKubelet> {
    const server = h2createServer();
    const k = new FakeKubelet(join(dir, 'kubelet.sock'), server);
    server.on('session', (s) => {
      k.sessions.add(s);
      s.on('close', () => k.sessions.delete(s));
    });
    server.on('stream', (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        k.paths.push(String(headers[':path']));
        expect(headers['content-type']).toBe('application/grpc');
        const { messages, rest } = unframe(Buffer.concat(chunks));
        expect(messages).toHaveLength(1);
        expect(rest.length).toBe(0);
        k.registrations.push(RegisterRequestCodec.decode(messages[0] as Buffer));
        for (const w of k.waiters.splice(0)) w();
        if (reject) {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(reject.code), 'grpc-message': encodeURIComponent(reject.message) }, { endStream: true });
          return;
        }
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(frame(Buffer.alloc(0))); // Empty
      });
    });
    await new Promise<void>((res) => server.listen(k.socketPath, res));
    return k;
  }

  waitForRegistrations(n: number, timeoutMs = 5000): Promise<void> {
    return new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`${this.registrations.length} registrations, waited for ${n}`)), timeoutMs);
      const check = () => {
        if (this.registrations.length >= n) {
          clearTimeout(timer);
          res();
        } else this.waiters.push(check);
      };
      check();
    });
  }

  /** Stops listening (the socket file goes with it, as when kubelet exits) and drops connections. */
  close(): Promise<void> {
    for (const s of this.sessions) s.destroy();
    return new Promise((res) => this.server.close(() => res()));
  }
}

// ------------------------------------------------------------------------------------- fixtures

const dirs: string[] = [];
const plugins: FakeSriovDevicePlugin[] = [];
const kubelets: FakeKubelet[] = [];
const sessions: ClientHttp2Session[] = [];

afterEach(async () => {
  for (const s of sessions.splice(0)) s.destroy();
  await Promise.all(plugins.splice(0).map((p) => p.stop()));
  await Promise.all(kubelets.splice(0).map((k) => k.close().catch(() => {})));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'ovnode-fdp-'));
  dirs.push(d);
  return d;
}

async function kubelet(dir: string, reject?: { code: number; message: string }): Promise<FakeKubelet> {
  const k = await FakeKubelet.start(dir, reject);
  kubelets.push(k);
  return k;
}

interface Logged { msg: string; fields: Record<string, unknown> | undefined }

function plugin(dir: string, opts: Partial<FakeSriovDevicePluginOptions> = {}): { p: FakeSriovDevicePlugin; logs: Logged[] } {
  const logs: Logged[] = [];
  const p = new FakeSriovDevicePlugin({ resourceName: RESOURCE, deviceIds: VFS, pluginDir: dir, log: (msg, fields) => logs.push({ msg, fields }), ...opts });
  plugins.push(p);
  return { p, logs };
}

async function connectTo(socketPath: string): Promise<ClientHttp2Session> {
  const s = h2connect('http://localhost', { createConnection: () => netConnect(socketPath) });
  sessions.push(s);
  s.on('error', () => {});
  await once(s, 'connect');
  return s;
}

const devicesOf = (msg: Buffer): Device[] => ListAndWatchResponseCodec.decode(msg).devices;
const until = async (cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> => {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

// ----------------------------------------------------------------------------------------- tests

describe('FakeSriovDevicePlugin', () => {
  it('registers with kubelet: API version, its socket name and the resource name', async () => {
    const dir = await tempDir();
    const k = await kubelet(dir);
    const { p } = plugin(dir);
    await p.start();
    expect(k.paths).toEqual(['/v1beta1.Registration/Register']);
    expect(k.registrations).toEqual([{
      version: 'v1beta1', endpoint: 'fake-sriov-ovnode_io_fake_vf.sock', resourceName: RESOURCE,
      options: { preStartRequired: false, getPreferredAllocationAvailable: false },
    }]);
    expect(p.socketPath).toBe(join(dir, 'fake-sriov-ovnode_io_fake_vf.sock'));
    expect(existsSync(p.socketPath)).toBe(true);
    expect(p.registrations).toBe(1);
  });

  it('serves ListAndWatch: the PCI addresses, all Healthy, then an update per health change on the open stream', async () => {
    const dir = await tempDir();
    await kubelet(dir);
    const { p } = plugin(dir, { endpoint: 'vf.sock' });
    await p.start();
    const s = await connectTo(p.socketPath);
    const call = rawCall(s, p.socketPath, '/v1beta1.DevicePlugin/ListAndWatch', Buffer.alloc(0));
    const h = await call.headers;
    expect(h[':status']).toBe(200);
    expect(h['content-type']).toBe('application/grpc');
    expect(devicesOf(await call.nextMessage())).toEqual(VFS.map((id) => ({ id, health: 'Healthy' })));

    p.setHealth('0000:03:00.3', false);
    expect(devicesOf(await call.nextMessage())).toEqual([
      { id: '0000:03:00.2', health: 'Healthy' }, { id: '0000:03:00.3', health: 'Unhealthy' }, { id: '0000:03:00.4', health: 'Healthy' },
    ]);
    p.setHealth('0000:03:00.3', false); // no change, no message
    p.setHealth('0000:03:00.3', true);
    expect(devicesOf(await call.nextMessage()).map((d) => d.health)).toEqual(['Healthy', 'Healthy', 'Healthy']);
    expect(call.messages).toHaveLength(3);
    expect(() => p.setHealth('0000:99:00.0', false)).toThrow(/unknown device/);

    // Still open: kubelet keeps this stream for the plugin's lifetime.
    const settled = await Promise.race([call.status.then(() => 'ended', () => 'ended'), new Promise((r) => setTimeout(() => r('open'), 100))]);
    expect(settled).toBe('open');
    call.cancel();
  });

  it('answers Allocate with the SR-IOV device plugin env, and the other DevicePlugin calls', async () => {
    const dir = await tempDir();
    await kubelet(dir);
    const { p } = plugin(dir);
    await p.start();
    const s = await connectTo(p.socketPath);

    const alloc = await unary(s, p.socketPath, '/v1beta1.DevicePlugin/Allocate', AllocateRequestCodec.encode({
      containerRequests: [{ devicesIds: ['0000:03:00.2', '0000:03:00.4'] }, { devicesIds: ['0000:03:00.3'] }],
    }));
    expect(alloc.status).toBe('0');
    expect(pciDeviceEnvName(RESOURCE)).toBe('PCIDEVICE_OVNODE_IO_FAKE_VF');
    expect(AllocateResponseCodec.decode(alloc.reply as Buffer)).toEqual({
      containerResponses: [
        { envs: { PCIDEVICE_OVNODE_IO_FAKE_VF: '0000:03:00.2,0000:03:00.4' }, mounts: [], devices: [], annotations: {} },
        { envs: { PCIDEVICE_OVNODE_IO_FAKE_VF: '0000:03:00.3' }, mounts: [], devices: [], annotations: {} },
      ],
    });
    expect(p.allocations).toEqual([['0000:03:00.2', '0000:03:00.4'], ['0000:03:00.3']]);

    const bad = await unary(s, p.socketPath, '/v1beta1.DevicePlugin/Allocate', AllocateRequestCodec.encode({ containerRequests: [{ devicesIds: ['0000:99:00.0'] }] }));
    expect(bad.status).toBe('3'); // INVALID_ARGUMENT
    expect(bad.message).toMatch(/unknown device\(s\) 0000:99:00.0/);
    expect(p.allocations).toHaveLength(2);

    const opts = await unary(s, p.socketPath, '/v1beta1.DevicePlugin/GetDevicePluginOptions', Buffer.alloc(0));
    expect(opts).toMatchObject({ status: '0', reply: Buffer.alloc(0) }); // both options false: nothing on the wire
    const pre = await unary(s, p.socketPath, '/v1beta1.DevicePlugin/PreStartContainer', Buffer.from([0x0a, 0x01, 0x78]));
    expect(pre).toMatchObject({ status: '0', reply: Buffer.alloc(0) });

    const pref = await unary(s, p.socketPath, '/v1beta1.DevicePlugin/GetPreferredAllocation', PreferredAllocationRequestCodec.encode({
      containerRequests: [{ availableDeviceIds: VFS, mustIncludeDeviceIds: ['0000:03:00.4'], allocationSize: 2 }],
    }));
    expect(PreferredAllocationResponseCodec.decode(pref.reply as Buffer)).toEqual({ containerResponses: [{ deviceIds: ['0000:03:00.4', '0000:03:00.2'] }] });

    const unknown = await unary(s, p.socketPath, '/v1beta1.DevicePlugin/Nope', Buffer.alloc(0));
    expect(unknown.status).toBe('12'); // UNIMPLEMENTED
  });

  it('listens again and re-registers when its socket is deleted, as a restarting kubelet does', async () => {
    const dir = await tempDir();
    const k = await kubelet(dir);
    const { p, logs } = plugin(dir);
    await p.start();
    const old = await connectTo(p.socketPath);
    const oldStream = rawCall(old, p.socketPath, '/v1beta1.DevicePlugin/ListAndWatch', Buffer.alloc(0));
    await oldStream.nextMessage();

    await rm(p.socketPath);
    await k.waitForRegistrations(2);
    expect(k.registrations[1]).toEqual(k.registrations[0]);
    await until(() => p.registrations === 2, 'the plugin to count the answered Register');
    expect(existsSync(p.socketPath)).toBe(true);
    expect(logs.map((l) => l.msg)).toContain('plugin socket gone (kubelet restarted?): listening again');
    // The old server is gone with its streams; the new socket serves.
    await expect(oldStream.status.then(() => 'ended', () => 'ended')).resolves.toBe('ended');
    const s = await connectTo(p.socketPath);
    const again = rawCall(s, p.socketPath, '/v1beta1.DevicePlugin/ListAndWatch', Buffer.alloc(0));
    expect(devicesOf(await again.nextMessage()).map((d) => d.id)).toEqual(VFS);
    again.cancel();
  });

  it('after a kubelet restart registers with the new kubelet once its socket appears', async () => {
    const dir = await tempDir();
    const first = await kubelet(dir);
    const { p, logs } = plugin(dir);
    await p.start();
    // kubelet exits (its socket goes), the new one deletes every socket in the dir, then listens.
    await first.close();
    await rm(p.socketPath);
    await until(() => logs.some((l) => l.msg === 'waiting for kubelet socket') && existsSync(p.socketPath), 'the plugin to listen again and wait');
    expect(p.registrations).toBe(1);
    const second = await kubelet(dir);
    await second.waitForRegistrations(1);
    expect(second.registrations[0]?.endpoint).toBe('fake-sriov-ovnode_io_fake_vf.sock');
    expect(first.registrations).toHaveLength(1);
    await until(() => p.registrations === 2, 'registrations to be counted');
  });

  it('start() waits for kubelet to come up', async () => {
    const dir = await tempDir();
    const { p } = plugin(dir);
    let started = false;
    const starting = p.start().then(() => {
      started = true;
    });
    await until(() => existsSync(p.socketPath), 'the plugin socket');
    await new Promise((r) => setTimeout(r, 50));
    expect(started).toBe(false);
    const k = await kubelet(dir);
    await starting;
    expect(k.registrations).toHaveLength(1);
  });

  it('start() fails when kubelet rejects the registration, and leaves no socket', async () => {
    const dir = await tempDir();
    await kubelet(dir, { code: 2, message: 'invalid name of device plugin socket: 100% wrong' });
    const { p } = plugin(dir);
    await expect(p.start()).rejects.toThrow('invalid name of device plugin socket: 100% wrong');
    expect(existsSync(p.socketPath)).toBe(false);
  });

  it('stop() ends ListAndWatch with OK, removes the socket and stops watching', async () => {
    const dir = await tempDir();
    const k = await kubelet(dir);
    const { p } = plugin(dir);
    await p.start();
    const s = await connectTo(p.socketPath);
    const call = rawCall(s, p.socketPath, '/v1beta1.DevicePlugin/ListAndWatch', Buffer.alloc(0));
    await call.nextMessage();
    await p.stop();
    expect((await call.status)['grpc-status']).toBe('0');
    expect(existsSync(p.socketPath)).toBe(false);
    // A kubelet restart now brings no registration.
    await k.close();
    const k2 = await kubelet(dir);
    await new Promise((r) => setTimeout(r, 100));
    expect(k2.registrations).toHaveLength(0);
  });

  it('checks its options', () => {
    expect(() => new FakeSriovDevicePlugin({ resourceName: 'fake_vf', deviceIds: VFS })).toThrow(/not <domain>\/<name>/);
    expect(() => new FakeSriovDevicePlugin({ resourceName: RESOURCE, deviceIds: [] })).toThrow(/no device IDs/);
    expect(() => new FakeSriovDevicePlugin({ resourceName: RESOURCE, deviceIds: [VFS[0] as string, VFS[0] as string] })).toThrow(/given twice/);
    expect(() => new FakeSriovDevicePlugin({ resourceName: RESOURCE, deviceIds: VFS, endpoint: 'kubelet.sock' })).toThrow(/other than kubelet.sock/);
    expect(new FakeSriovDevicePlugin({ resourceName: RESOURCE, deviceIds: VFS }).kubeletSocketPath).toBe('/var/lib/kubelet/device-plugins/kubelet.sock');
  });
});

describe('fake-sriov-device-plugin-main (bundled as the lab runs it)', () => {
  const MAIN = resolve(__dirname, '../../fakes/fake-sriov-device-plugin-main.ts');

  async function bundle(dir: string): Promise<string> {
    const outfile = join(dir, 'fake-sriov-device-plugin.js');
    await build({ entryPoints: [MAIN], bundle: true, platform: 'node', target: 'node20', outfile, logLevel: 'silent' });
    return outfile;
  }

  function run(js: string, args: string[]): { lines: Array<Record<string, unknown>>; exit: Promise<number | null>; kill: (sig: NodeJS.Signals) => void } {
    const child = spawn(process.execPath, [js, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Array<Record<string, unknown>> = [];
    let buf = '';
    child.stdout.on('data', (c: Buffer) => {
      buf += c.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        lines.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
        buf = buf.slice(i + 1);
      }
    });
    const exit = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
    return { lines, exit, kill: (sig) => child.kill(sig) };
  }

  it('registers, logs JSON lines and exits 0 on SIGTERM with its socket removed', async () => {
    const dir = await tempDir();
    const js = await bundle(dir);
    const k = await kubelet(dir);
    const child = run(js, ['--resource', RESOURCE, '--devices', VFS.join(','), '--dir', dir, '--endpoint', 'main.sock']);
    try {
      await k.waitForRegistrations(1, 10_000);
      expect(k.registrations[0]).toMatchObject({ version: 'v1beta1', endpoint: 'main.sock', resourceName: RESOURCE });
      await until(() => child.lines.some((l) => l.msg === 'registered with kubelet'), 'the registered line');
      const s = await connectTo(join(dir, 'main.sock'));
      const call = rawCall(s, join(dir, 'main.sock'), '/v1beta1.DevicePlugin/ListAndWatch', Buffer.alloc(0));
      expect(devicesOf(await call.nextMessage()).map((d) => d.id)).toEqual(VFS);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await child.exit).toBe(0);
    expect(existsSync(join(dir, 'main.sock'))).toBe(false);
    expect(child.lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['listening', 'registered with kubelet', 'signal: stopping', 'stopped']));
    for (const l of child.lines) expect(typeof l.time).toBe('string');
  }, 30_000);

  it('exits 2 on a usage error', async () => {
    const dir = await tempDir();
    const child = run(await bundle(dir), ['--devices', VFS.join(',')]);
    expect(await child.exit).toBe(2);
    expect(child.lines[0]).toMatchObject({ msg: 'usage error', error: '--resource is required' });
  }, 30_000);
});
