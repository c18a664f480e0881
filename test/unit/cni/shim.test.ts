// The shim: env + stdin -> one POST to ovnoded -> stdout and exit code. The daemon is a fake
// node:http server on a unix socket in a temp dir answering canned replies.
import { mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runShim, type Outcome } from '../../../cni/shim';
import { SUPPORTED_VERSIONS } from '../../../common/cni-spec';
import type { CniWireRequest } from '../../../common/protocol';

const LATEST = SUPPORTED_VERSIONS[SUPPORTED_VERSIONS.length - 1];

interface Canned { status: number; body: string; delayMs?: number }
interface Seen { method: string | undefined; url: string | undefined; contentType: string | undefined; body: CniWireRequest }

/** A stand-in for ovnoded: records each request, answers with `next`. */
class FakeDaemon {
  readonly seen: Seen[] = [];
  next: Canned = { status: 200, body: '{}' };
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.seen.push({
        method: req.method,
        url: req.url,
        contentType: req.headers['content-type'],
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as CniWireRequest,
      });
      const { status, body, delayMs } = this.next;
      const answer = (): void => {
        if (res.destroyed) return;
        res.writeHead(status, { 'content-type': 'application/json' }).end(body);
      };
      if (delayMs) setTimeout(answer, delayMs).unref(); else answer();
    });
  });

  constructor(readonly socketPath: string) {}

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.socketPath, () => resolve());
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  reset(): void {
    this.seen.length = 0;
    this.next = { status: 200, body: '{}' };
  }
}

// Made at load time: the case tables below embed the socket path in their netconfs.
const dir = mkdtempSync(join(tmpdir(), 'ovnode-shim-'));
const daemon = new FakeDaemon(join(dir, 'ovnoded.sock'));

beforeAll(() => daemon.listen());
afterAll(async () => {
  await daemon.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => daemon.reset());

/** A netconf pointing at the fake daemon. */
function conf(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ cniVersion: '1.0.0', name: 'ovn', type: 'ovnode', daemonSocket: daemon.socketPath, ...extra });
}

const addEnv = {
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'c0ffee',
  CNI_NETNS: '/var/run/netns/pod1',
  CNI_IFNAME: 'eth0',
  CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=web',
  CNI_PATH: '/opt/cni/bin',
};

function run(env: NodeJS.ProcessEnv, stdin: string | (() => string)): Promise<Outcome> {
  return runShim(env, typeof stdin === 'string' ? () => stdin : stdin);
}

/** The CNI error JSON printed on failure. */
function errorOf(o: Outcome): { cniVersion: string; code: number; msg: string; details?: string } {
  expect(o.exitCode).toBe(1);
  return o.stdout as { cniVersion: string; code: number; msg: string; details?: string };
}

describe('VERSION', () => {
  const cases: { desc: string; stdin: string; want: string }[] = [
    { desc: 'echoes the version libcni asks with', stdin: '{"cniVersion":"1.0.0"}', want: '1.0.0' },
    { desc: 'echoes a legacy version', stdin: '{"cniVersion":"0.3.1"}', want: '0.3.1' },
    { desc: 'answers with the latest on an empty stdin', stdin: '', want: LATEST },
    { desc: 'answers with the latest on garbage stdin', stdin: 'not json', want: LATEST },
    { desc: 'answers with the latest on an unknown version', stdin: '{"cniVersion":"9.9.9"}', want: LATEST },
  ];
  for (const c of cases) {
    it(c.desc, async () => {
      const out = await run({ CNI_COMMAND: 'VERSION' }, c.stdin);
      expect(out).toEqual({ exitCode: 0, stdout: { cniVersion: c.want, supportedVersions: [...SUPPORTED_VERSIONS] } });
      expect(daemon.seen).toHaveLength(0);
    });
  }
});

describe('errors found without the daemon', () => {
  const cases: { desc: string; env: NodeJS.ProcessEnv; stdin: string | (() => string); code: number; cniVersion: string }[] = [
    { desc: 'missing CNI_COMMAND', env: { ...addEnv, CNI_COMMAND: undefined }, stdin: conf(), code: 4, cniVersion: LATEST },
    { desc: 'empty CNI_COMMAND', env: { ...addEnv, CNI_COMMAND: '' }, stdin: conf(), code: 4, cniVersion: LATEST },
    { desc: 'unknown CNI_COMMAND', env: { ...addEnv, CNI_COMMAND: 'UPDATE' }, stdin: conf(), code: 4, cniVersion: LATEST },
    { desc: 'lower-case command', env: { ...addEnv, CNI_COMMAND: 'add' }, stdin: conf(), code: 4, cniVersion: LATEST },
    { desc: 'stdin not JSON', env: addEnv, stdin: '{"cniVersion":', code: 6, cniVersion: LATEST },
    { desc: 'stdin a JSON array', env: addEnv, stdin: '[1,2]', code: 6, cniVersion: LATEST },
    { desc: 'stdin JSON null', env: addEnv, stdin: 'null', code: 6, cniVersion: LATEST },
    { desc: 'stdin empty on ADD', env: addEnv, stdin: '', code: 6, cniVersion: LATEST },
    { desc: 'stdin unreadable', env: addEnv, stdin: () => { throw new Error('EAGAIN'); }, code: 5, cniVersion: LATEST },
    { desc: 'unknown cniVersion', env: addEnv, stdin: conf({ cniVersion: '0.2.0' }), code: 1, cniVersion: LATEST },
    { desc: 'missing cniVersion', env: addEnv, stdin: conf({ cniVersion: undefined }), code: 1, cniVersion: LATEST },
    { desc: 'missing CNI_NETNS on ADD', env: { ...addEnv, CNI_NETNS: undefined }, stdin: conf({ cniVersion: '0.4.0' }), code: 4, cniVersion: '0.4.0' },
    { desc: 'empty CNI_NETNS on ADD', env: { ...addEnv, CNI_NETNS: '' }, stdin: conf(), code: 4, cniVersion: '1.0.0' },
    { desc: 'missing CNI_NETNS on CHECK', env: { ...addEnv, CNI_COMMAND: 'CHECK', CNI_NETNS: undefined }, stdin: conf(), code: 4, cniVersion: '1.0.0' },
    { desc: 'missing CNI_CONTAINERID on ADD', env: { ...addEnv, CNI_CONTAINERID: undefined }, stdin: conf(), code: 4, cniVersion: '1.0.0' },
    { desc: 'missing CNI_IFNAME on DEL', env: { ...addEnv, CNI_COMMAND: 'DEL', CNI_IFNAME: undefined }, stdin: conf(), code: 4, cniVersion: '1.0.0' },
  ];
  for (const c of cases) {
    it(`${c.desc} -> code ${c.code}`, async () => {
      const e = errorOf(await run(c.env, c.stdin));
      expect(e.code).toBe(c.code);
      expect(e.cniVersion).toBe(c.cniVersion);
      expect(typeof e.msg).toBe('string');
      expect(daemon.seen).toHaveLength(0);
    });
  }

  it('names the missing variable', async () => {
    const e = errorOf(await run({ ...addEnv, CNI_NETNS: undefined }, conf()));
    expect(e.msg).toContain('CNI_NETNS');
  });

  it('lists the supported versions for an unknown cniVersion', async () => {
    const e = errorOf(await run(addEnv, conf({ cniVersion: '0.2.0' })));
    for (const v of SUPPORTED_VERSIONS) expect(e.details).toContain(v);
  });
});

describe('daemon unreachable', () => {
  it('answers try-again-later (11) naming the socket', async () => {
    const missing = join(dir, 'nobody-home.sock');
    const e = errorOf(await run(addEnv, conf({ daemonSocket: missing })));
    expect(e.code).toBe(11);
    expect(e.cniVersion).toBe('1.0.0');
    expect(e.msg).toContain(missing);
    expect(e.details).toMatch(/ENOENT/);
  });
});

describe('against a fake daemon', () => {
  const result = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0' }], ips: [{ address: '10.16.0.5/16', interface: 0 }] };

  const ok: { desc: string; env: NodeJS.ProcessEnv; want: Outcome }[] = [
    { desc: 'ADD prints the result', env: addEnv, want: { exitCode: 0, stdout: result } },
    { desc: 'DEL prints nothing', env: { ...addEnv, CNI_COMMAND: 'DEL' }, want: { exitCode: 0 } },
    { desc: 'DEL with an empty CNI_NETNS is allowed', env: { ...addEnv, CNI_COMMAND: 'DEL', CNI_NETNS: '' }, want: { exitCode: 0 } },
    { desc: 'DEL without CNI_NETNS is allowed', env: { ...addEnv, CNI_COMMAND: 'DEL', CNI_NETNS: undefined }, want: { exitCode: 0 } },
    { desc: 'CHECK prints nothing', env: { ...addEnv, CNI_COMMAND: 'CHECK' }, want: { exitCode: 0 } },
    { desc: 'GC needs no container variables', env: { CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' }, want: { exitCode: 0 } },
    { desc: 'STATUS needs no container variables', env: { CNI_COMMAND: 'STATUS' }, want: { exitCode: 0 } },
  ];
  for (const c of ok) {
    it(c.desc, async () => {
      daemon.next = { status: 200, body: JSON.stringify({ result }) };
      expect(await run(c.env, conf())).toEqual(c.want);
      expect(daemon.seen).toHaveLength(1);
    });
  }

  it('ADD with an empty 200 reply is an error, never an empty success', async () => {
    daemon.next = { status: 200, body: '' };
    const out = await run(addEnv, conf());
    expect(out.exitCode).toBe(1);
    expect(out.stdout).toMatchObject({ code: 5, msg: 'ovnoded answered ADD without a result' });
  });

  it('ADD with a result that is not a CNI result is an error', async () => {
    daemon.next = { status: 200, body: JSON.stringify({ result: [] }) };
    expect((await run(addEnv, conf())).stdout).toMatchObject({ code: 5 });
  });

  for (const status of [500, 503, 404]) {
    it(`a ${status} reply without an error body is try-again-later (11), not success`, async () => {
      daemon.next = { status, body: '' };
      const out = await run(addEnv, conf());
      expect(out.exitCode).toBe(1);
      expect(out.stdout).toMatchObject({ code: 11, msg: `ovnoded answered HTTP ${status} without an error` });
    });
  }

  it('DEL with an empty 200 reply succeeds', async () => {
    daemon.next = { status: 200, body: '' };
    expect(await run({ ...addEnv, CNI_COMMAND: 'DEL' }, conf())).toEqual({ exitCode: 0 });
  });

  for (const socket of [42, 'relative/ovnoded.sock', '']) {
    it(`a daemonSocket of ${JSON.stringify(socket)} is a config error (7), not the default socket`, async () => {
      daemon.next = { status: 200, body: JSON.stringify({ result: { cniVersion: '1.0.0' } }) };
      const out = await run(addEnv, JSON.stringify({ ...JSON.parse(conf()), daemonSocket: socket }));
      expect(out).toMatchObject({ exitCode: 1, stdout: { code: 7 } });
    });
  }

  it('a netconf larger than the daemon accepts is refused as undecodable (6) without a call', async () => {
    const big = JSON.stringify({ ...JSON.parse(conf()), padding: 'x'.repeat(600 * 1024) });
    const out = await run(addEnv, big);
    expect(out).toMatchObject({ exitCode: 1, stdout: { code: 6 } });
  });

  const errors: { desc: string; env: NodeJS.ProcessEnv; status: number; cniVersion: string }[] = [
    { desc: 'ADD', env: addEnv, status: 500, cniVersion: '1.0.0' },
    { desc: 'DEL', env: { ...addEnv, CNI_COMMAND: 'DEL' }, status: 400, cniVersion: '0.4.0' },
    { desc: 'STATUS', env: { CNI_COMMAND: 'STATUS' }, status: 503, cniVersion: '1.1.0' },
  ];
  for (const c of errors) {
    it(`${c.desc}: an error reply exits 1 with the conf's cniVersion added`, async () => {
      const error = { code: 7, msg: 'invalid network config', details: '"mtu" out of range' };
      daemon.next = { status: c.status, body: JSON.stringify({ error }) };
      expect(await run(c.env, conf({ cniVersion: c.cniVersion }))).toEqual({
        exitCode: 1,
        stdout: { cniVersion: c.cniVersion, ...error },
      });
    });
  }

  it('an unreadable reply is try-again-later (11)', async () => {
    daemon.next = { status: 200, body: '<html>' };
    expect(errorOf(await run(addEnv, conf())).code).toBe(11);
  });

  it('a daemon slower than the deadline is try-again-later (11)', async () => {
    daemon.next = { status: 200, body: JSON.stringify({ result }), delayMs: 2_000 };
    const e = errorOf(await run(addEnv, conf({ timeoutSeconds: 0.1 })));
    expect(e.code).toBe(11);
    expect(e.msg).toContain('100 ms');
  });

  it('forwards the CNI env, the raw config and a deadline', async () => {
    const raw = conf({ mtu: 1400, runtimeConfig: { ips: ['10.16.0.9/16'] } });
    await run({ ...addEnv, PATH: '/usr/bin', HOME: '/root', KUBECONFIG: '/secret' }, raw);
    expect(daemon.seen).toHaveLength(1);
    const [seen] = daemon.seen;
    expect(seen?.method).toBe('POST');
    expect(seen?.url).toBe('/cni');
    expect(seen?.contentType).toBe('application/json');
    expect(seen?.body).toEqual({ protocol: 1, env: addEnv, config: raw, deadlineMs: 60_000 });
  });

  const deadlines: { desc: string; env: NodeJS.ProcessEnv; extra: Record<string, unknown>; want: number }[] = [
    { desc: 'ADD default', env: addEnv, extra: {}, want: 60_000 },
    { desc: 'DEL default', env: { ...addEnv, CNI_COMMAND: 'DEL' }, extra: {}, want: 60_000 },
    { desc: 'CHECK default', env: { ...addEnv, CNI_COMMAND: 'CHECK' }, extra: {}, want: 20_000 },
    { desc: 'STATUS default', env: { CNI_COMMAND: 'STATUS' }, extra: {}, want: 5_000 },
    { desc: 'timeoutSeconds shortens ADD', env: addEnv, extra: { timeoutSeconds: 7 }, want: 7_000 },
    { desc: 'timeoutSeconds shortens CHECK', env: { ...addEnv, CNI_COMMAND: 'CHECK' }, extra: { timeoutSeconds: 2.5 }, want: 2_500 },
  ];
  const badTimeouts: { desc: string; value: unknown }[] = [
    { desc: 'a string', value: '7' },
    { desc: 'zero (would disable the timeout)', value: 0 },
    { desc: 'negative', value: -1 },
    { desc: 'over an hour', value: 7200 },
  ];
  for (const c of badTimeouts) {
    it(`timeoutSeconds ${c.desc} is an invalid config (7) and reaches no daemon`, async () => {
      const out = await run(addEnv, conf({ timeoutSeconds: c.value }));
      expect(out.exitCode).toBe(1);
      expect((out.stdout as Record<string, unknown>).code).toBe(7);
      expect(daemon.seen).toHaveLength(0);
    });
  }
  for (const c of deadlines) {
    it(`deadlineMs: ${c.desc} -> ${c.want}`, async () => {
      await run(c.env, conf(c.extra));
      expect(daemon.seen[0]?.body.deadlineMs).toBe(c.want);
    });
  }
});
