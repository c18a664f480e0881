// The CNI server's own duties, with fake handlers (no OVS, no netns): every failure ends as that
// request's CNI error and never as a dead server; the deadline covers the wait for the sandbox
// lock; oversized, too deeply nested and wrong-protocol bodies get their precise codes.
import { mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { callDaemon } from '../../../../cni/client';
import type { Deps } from '../../../../daemon/context';
import { Metrics } from '../../../../daemon/metrics';
import { CniServer, type HandlerMap } from '../../../../daemon/server/cni-server';

const config = JSON.stringify({ cniVersion: '1.0.0', name: 'ovn', type: 'ovnode' });
const addEnv = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'sb1', CNI_NETNS: '/var/run/netns/p', CNI_IFNAME: 'eth0' };

interface Reply { status: number; body: { result?: unknown; error?: { code: number; msg: string; details?: string } } }

function post(socketPath: string, body: string | Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: '/cni', method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString() || '{}') as Reply['body'] }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function wire(env: Record<string, string>, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ protocol: 1, env, config, deadlineMs: 60_000, ...extra });
}

describe('CniServer (fake handlers)', () => {
  let dir: string;
  let socketPath: string;
  let server: CniServer | undefined;
  const deps = { log: pino({ enabled: false }), metrics: new Metrics(), readiness: () => ({ ready: true }) } as unknown as Deps;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ovnode-srv-'));
    socketPath = join(dir, 'ovnoded.sock');
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(handlers: Partial<HandlerMap>): Promise<void> {
    server = new CniServer(deps, handlers);
    await server.listen(socketPath);
  }

  it('a handler that throws synchronously ends as that request error, and the server keeps serving', async () => {
    let calls = 0;
    await start({ ADD: () => { calls++; throw new TypeError('boom'); } });
    const first = await post(socketPath, wire(addEnv));
    expect(first.status).toBe(500);
    expect(first.body.error).toMatchObject({ code: 999, msg: 'internal error', details: 'boom' });
    const second = await post(socketPath, wire(addEnv));
    expect(second.body.error?.code).toBe(999);
    expect(calls).toBe(2);
  });

  it('a result that cannot be serialized is an error reply, not a dead daemon', async () => {
    const circular: Record<string, unknown> = { cniVersion: '1.0.0' };
    circular.self = circular;
    await start({ ADD: () => Promise.resolve(circular), STATUS: () => Promise.resolve(undefined) });
    const r = await post(socketPath, wire(addEnv));
    expect(r.status).toBe(500);
    expect(r.body.error).toMatchObject({ code: 999, details: 'reply cannot be serialized' });
    expect((await post(socketPath, wire({ CNI_COMMAND: 'STATUS' }))).status).toBe(200);
  });

  it('the deadline covers the wait for the sandbox lock, and a request that gave up never runs late', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => { release = r; });
    const ran: string[] = [];
    await start({
      ADD: async (ctx) => {
        ran.push(ctx.req.args.podName ?? '');
        if (ctx.req.args.podName === 'first') await gate;
        return { cniVersion: '1.0.0' };
      },
    });
    const first = post(socketPath, wire({ ...addEnv, CNI_ARGS: 'K8S_POD_NAME=first;K8S_POD_NAMESPACE=ns' }));
    // Queued behind the first request of the same sandbox, with a 300 ms budget.
    const queued = await post(socketPath, wire({ ...addEnv, CNI_ARGS: 'K8S_POD_NAME=second;K8S_POD_NAMESPACE=ns' }, { deadlineMs: 300 }));
    expect(queued.body.error).toMatchObject({ code: 11 });
    expect(queued.body.error?.msg).toMatch(/deadline/);
    release();
    expect((await first).status).toBe(200);
    // A third request of the sandbox runs after the lock passed the abandoned one: by then that
    // one has been skipped, or it would be in `ran` before 'third'.
    await post(socketPath, wire({ ...addEnv, CNI_ARGS: 'K8S_POD_NAME=third;K8S_POD_NAMESPACE=ns' }));
    expect(ran).toEqual(['first', 'third']);
  });

  it('a body over 1 MiB is answered 6 through the shim\'s own client (never a reset, which it reports as 11)', async () => {
    await start({});
    const config = JSON.stringify({ cniVersion: '1.0.0', name: 'ovn', type: 'ovnode', pad: 'x'.repeat(1 << 20) });
    const r = await callDaemon({ socketPath, request: { protocol: 1, env: addEnv, config, deadlineMs: 10_000 } });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 6 });
    expect(r.body.error?.msg).toMatch(/too large/);
  });

  it('a body nested deeper than the bound is answered 6', async () => {
    await start({});
    const deep = `{"protocol":1,"x":${'['.repeat(5000)}${']'.repeat(5000)}}`;
    expect((await post(socketPath, deep)).body.error).toMatchObject({ code: 6 });
  });

  it('a netconf nested 10000 deep is answered 6 and the handler never runs', async () => {
    let calls = 0;
    await start({ ADD: () => { calls++; return Promise.resolve({ cniVersion: '1.0.0' }); } });
    const conf = `{"cniVersion":"1.0.0","name":"rp","type":"ovnode","dns":${'{"a":'.repeat(10000)}1${'}'.repeat(10000)}}`;
    const r = await post(socketPath, JSON.stringify({ protocol: 1, env: addEnv, config: conf, deadlineMs: 5000 }));
    expect(r.body.error).toMatchObject({ code: 6 });
    expect(calls).toBe(0);
  });

  for (const protocol of [0, 2, '1', undefined]) {
    it(`wire protocol ${JSON.stringify(protocol)} is refused with code 1`, async () => {
      await start({});
      const r = await post(socketPath, JSON.stringify({ protocol, env: addEnv, config, deadlineMs: 5000 }));
      expect(r.body.error).toMatchObject({ code: 1 });
      expect(r.body.error?.msg).toMatch(/wire protocol/);
    });
  }

  it('a non-string env value is undecodable (6)', async () => {
    await start({});
    const r = await post(socketPath, JSON.stringify({ protocol: 1, env: { ...addEnv, CNI_NETNS: 5 }, config, deadlineMs: 5000 }));
    expect(r.body.error).toMatchObject({ code: 6 });
  });

  it('a relative CNI_NETNS is an invalid environment (4)', async () => {
    await start({});
    const r = await post(socketPath, wire({ ...addEnv, CNI_NETNS: 'netns/p' }));
    expect(r.body.error).toMatchObject({ code: 4 });
  });
});
