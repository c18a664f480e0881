// UnixctlClient against a fake unixctl server on a real unix socket: pipelined calls answered in
// order, replies split across and merged within chunks, command errors per call, and every
// transport failure as its typed error (nobody listening, no answer in time, connection cut,
// garbage, abort). The socket directory is removed after each test.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { JsonStreamSplitter } from '../../../../daemon/ovsdb/framing';
import {
  ctlPathFromPidfile, UnixctlAbortedError, UnixctlClient, UnixctlCommandError, UnixctlProtocolError, UnixctlTimeoutError,
  UnixctlUnavailableError,
} from '../../../../daemon/ovs/unixctl';

interface Request { id: number; method: string; params: string[] }
type Answer = (req: Request, socket: Socket) => void;

const dirs: string[] = [];
const servers: Server[] = [];

afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ovnode-unixctl-'));
  dirs.push(d);
  return d;
}

/** A unixctl-like server: every request is passed to `answer`; `received` lists them. */
async function fakeServer(answer: Answer): Promise<{ path: string; received: Request[]; connections: () => number }> {
  const path = join(tempDir(), 'x.ctl');
  const received: Request[] = [];
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    const splitter = new JsonStreamSplitter();
    socket.on('data', (chunk: Buffer) => {
      for (const text of splitter.push(chunk)) {
        const req = JSON.parse(text) as Request;
        received.push(req);
        answer(req, socket);
      }
    });
    socket.on('error', () => undefined);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(path, r));
  return { path, received, connections: () => connections };
}

const ok = (result: string): Answer => (req, socket) => { socket.write(JSON.stringify({ id: req.id, result, error: null })); };

describe('UnixctlClient', () => {
  it('sends JSON-RPC 1.0 requests with string params and resolves with the result text', async () => {
    const srv = await fakeServer(ok('ovs-vswitchd (Open vSwitch) 3.1.0\n'));
    const client = new UnixctlClient(srv.path);
    await expect(client.call('version')).resolves.toBe('ovs-vswitchd (Open vSwitch) 3.1.0\n');
    expect(srv.received).toEqual([{ id: expect.any(Number), method: 'version', params: [] }]);
  });

  it('pipelines a batch on one connection; replies merged into one chunk or split byte by byte', async () => {
    const queue: Array<{ req: Request; socket: Socket }> = [];
    const srv = await fakeServer((req, socket) => {
      queue.push({ req, socket });
      if (queue.length < 3) return;
      const wire = queue.map(({ req: r }) => JSON.stringify({ id: r.id, result: `r${r.params.join('+')}`, error: null })).join('\n');
      if (r0(queue).params[0] === 'split') {
        const bytes = Buffer.from(wire);
        for (let i = 0; i < bytes.length; i++) socket.write(bytes.subarray(i, i + 1));
      } else {
        socket.write(wire);
      }
      queue.length = 0;
    });
    const client = new UnixctlClient(srv.path);
    for (const mode of ['merged', 'split']) {
      const out = await client.callAll([
        { method: 'a', params: [mode] }, { method: 'b', params: ['', 'x=1'] }, { method: 'c' },
      ]);
      expect(out).toEqual([{ ok: true, result: `r${mode}` }, { ok: true, result: 'r+x=1' }, { ok: true, result: 'r' }]);
    }
    expect(srv.connections()).toBe(2);
  });

  it('an error answer fails that call only (UnixctlCommandError with method, params and reply)', async () => {
    const srv = await fakeServer((req, socket) => {
      const bad = req.params[0] === 'bogus=1';
      socket.write(JSON.stringify({ id: req.id, result: bad ? null : '', error: bad ? 'invalid conntrack tuple field: bogus\n' : null }));
    });
    const client = new UnixctlClient(srv.path);
    const [first, second] = await client.callAll([
      { method: 'dpctl/flush-conntrack', params: ['bogus=1'] },
      { method: 'dpctl/flush-conntrack', params: ['ct_nw_src=10.16.0.5'] },
    ]);
    expect(second).toEqual({ ok: true, result: '' });
    expect(first?.ok).toBe(false);
    const err = (first as { ok: false; error: UnixctlCommandError }).error;
    expect(err).toBeInstanceOf(UnixctlCommandError);
    expect(err.code).toBe('UNIXCTL_COMMAND');
    expect(err.method).toBe('dpctl/flush-conntrack');
    expect(err.params).toEqual(['bogus=1']);
    expect(err.message).toContain('invalid conntrack tuple field: bogus');
    await expect(client.call('dpctl/flush-conntrack', ['bogus=1'])).rejects.toBeInstanceOf(UnixctlCommandError);
  });

  it('nobody listening: UnixctlUnavailableError (missing socket file, and a socket nobody accepts on)', async () => {
    const missing = join(tempDir(), 'gone.ctl');
    await expect(new UnixctlClient(missing).call('version')).rejects.toBeInstanceOf(UnixctlUnavailableError);
    const srv = await fakeServer(ok(''));
    const server = servers.pop() as Server;
    await new Promise((r) => server.close(r));
    // A closed server removes its socket file; a stale file (crashed program) refuses instead.
    writeFileSync(srv.path, '');
    await expect(new UnixctlClient(srv.path).call('version')).rejects.toMatchObject({ code: 'UNIXCTL_UNAVAILABLE' });
  });

  it('no complete answer within the deadline: UnixctlTimeoutError saying how many replies came', async () => {
    const srv = await fakeServer((req, socket) => { if (req.method === 'fast') ok('')(req, socket); });
    const client = new UnixctlClient(srv.path, { timeoutMs: 50 });
    const err = await client.callAll([{ method: 'fast' }, { method: 'never' }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnixctlTimeoutError);
    expect((err as Error).message).toMatch(/1 of 2 replies within 50 ms/);
    await expect(client.call('never', [], { timeoutMs: 20 })).rejects.toThrow(/0 of 1 replies within 20 ms/);
  });

  it('connection closed before every reply came: UnixctlProtocolError', async () => {
    const srv = await fakeServer((req, socket) => { ok('')(req, socket); socket.end(); });
    const err = await new UnixctlClient(srv.path).callAll([{ method: 'a' }, { method: 'b' }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnixctlProtocolError);
    expect((err as Error).message).toMatch(/closed after 1 of 2 replies/);
  });

  it('garbage or a reply to nobody: UnixctlProtocolError', async () => {
    const garbage = await fakeServer((_req, socket) => { socket.write('not json at all'); });
    await expect(new UnixctlClient(garbage.path).call('x')).rejects.toBeInstanceOf(UnixctlProtocolError);
    const stranger = await fakeServer((_req, socket) => { socket.write(JSON.stringify({ id: 99_999, result: '', error: null })); });
    await expect(new UnixctlClient(stranger.path).call('x')).rejects.toThrow(/unexpected id 99999/);
  });

  it('an abort signal ends the batch with UnixctlAbortedError', async () => {
    const srv = await fakeServer(() => undefined);
    const ac = new AbortController();
    const pending = new UnixctlClient(srv.path).call('never', [], { signal: ac.signal });
    ac.abort(new Error('shutting down'));
    await expect(pending).rejects.toBeInstanceOf(UnixctlAbortedError);
    await expect(new UnixctlClient(srv.path).call('x', [], { signal: ac.signal })).rejects.toThrow(/aborted: shutting down/);
  });

  it('an empty batch resolves without connecting', async () => {
    const srv = await fakeServer(ok(''));
    await expect(new UnixctlClient(srv.path).callAll([])).resolves.toEqual([]);
    expect(srv.connections()).toBe(0);
  });

  it('a socket path given as a function is resolved per batch (a restarted program has a new pid)', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'ovs-vswitchd.pid'), '4242\n');
    expect(ctlPathFromPidfile(dir, 'ovs-vswitchd')).toBe(join(dir, 'ovs-vswitchd.4242.ctl'));
    const srv = await fakeServer(ok('up'));
    let path = join(dir, 'nothing-yet.ctl');
    const client = new UnixctlClient(() => path);
    await expect(client.call('version')).rejects.toBeInstanceOf(UnixctlUnavailableError);
    path = srv.path;
    await expect(client.call('version')).resolves.toBe('up');
    await expect(new UnixctlClient(() => ctlPathFromPidfile(join(dir, 'none'), 'x')).call('v')).rejects.toBeInstanceOf(UnixctlUnavailableError);
  });
});

function r0(q: Array<{ req: Request }>): Request {
  return (q[0] as { req: Request }).req;
}
