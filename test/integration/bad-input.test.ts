// Bad input through the real shim against one real node: every refusal carries the exact CNI
// error code and a message that names the problem, exits non-zero, leaves nothing half-created
// (pod veths, OVS pod ports, LSPs counted before and after) and leaves the daemon serving (a good
// ADD+DEL works right after). Also VERSION, STATUS, GC and a 1.1.0 ADD, which must succeed.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runShim } from './harness/cni';
import { NetnsSet } from './harness/netns';
import { TestNode } from './harness/node';
import { requireArtefacts } from './harness/paths';
import { attachmentState, cniEnv, countsOf, netconf, resultIps, type AttachmentCounts, type ShimResult } from './harness/shim-calls';

const SUPPORTED = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];

let netns: NetnsSet;
let node: TestNode;
let probeNs: string;
let scratch: string;
let seq = 0;

const uid = (tag: string): string => `${tag}-${randomBytes(4).toString('hex')}-${++seq}`;
const nsPath = (name: string): string => `/var/run/netns/${name}`;

beforeAll(async () => {
  requireArtefacts();
  netns = new NetnsSet();
  scratch = mkdtempSync(join(tmpdir(), `${netns.prefix}-bad-`));
  try {
    node = new TestNode({ netns, name: 'n1' });
    await node.start();
    probeNs = netns.create('probe');
  } catch (e) {
    await cleanup();
    throw e;
  }
});

async function cleanup(): Promise<void> {
  try {
    if (node) await node.destroy();
  } finally {
    netns?.removeAll();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
}

afterAll(cleanup);

/** The refusal itself: non-zero exit, CNI error JSON with this code and a telling msg. */
function expectCniError(r: ShimResult, code: number, msg: RegExp): Record<string, unknown> {
  const ctx = `stdout=${r.stdout} stderr=${r.stderr}`;
  expect(r.status, ctx).not.toBe(0);
  expect(r.json, ctx).toBeDefined();
  const j = r.json as Record<string, unknown>;
  expect(j.code, ctx).toBe(code);
  expect(typeof j.msg, ctx).toBe('string');
  expect(j.msg as string, ctx).toMatch(msg);
  expect(typeof j.cniVersion, ctx).toBe('string');
  return j;
}

/** ADD then DEL of a fresh sandbox in the probe netns; the node must be back to `baseline`. */
function goodAddDel(baseline: AttachmentCounts): void {
  const id = uid('good');
  const add = runShim(cniEnv({ command: 'ADD', containerId: id, netns: nsPath(probeNs) }), netconf(node.socket));
  expect(add.status, `good ADD after a bad one: ${add.stdout} ${add.stderr}`).toBe(0);
  expect(resultIps(add.json)).toHaveLength(1);
  expect(resultIps(add.json)[0]).toMatch(/^10\.16\./);
  const del = runShim(cniEnv({ command: 'DEL', containerId: id, netns: nsPath(probeNs) }), netconf(node.socket));
  expect(del.status, `good DEL: ${del.stdout} ${del.stderr}`).toBe(0);
  expect(del.stdout).toBe('');
  expect(attachmentState(node)).toEqual(baseline);
}

interface BadCase {
  name: string;
  env: () => Record<string, string>;
  stdin: () => string;
  code: number;
  msg: RegExp;
  details?: RegExp;
}

const addEnv = (over: Record<string, string | undefined> = {}): Record<string, string> => {
  const env: Record<string, string | undefined> = { ...cniEnv({ command: 'ADD', containerId: uid('bad'), netns: nsPath(probeNs) }), ...over };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  return env as Record<string, string>;
};

const cases: BadCase[] = [
  {
    name: 'malformed JSON on stdin -> 6',
    env: () => addEnv(),
    stdin: () => '{"cniVersion":"1.0.0","name":"net1",',
    code: 6, msg: /decod/i, details: /JSON/i,
  },
  {
    name: 'stdin JSON is an array -> 6',
    env: () => addEnv(),
    stdin: () => `[${netconf(node.socket)}]`,
    code: 6, msg: /decod/i, details: /not a JSON object/,
  },
  {
    name: 'ADD without CNI_NETNS -> 4',
    env: () => addEnv({ CNI_NETNS: undefined }),
    stdin: () => netconf(node.socket),
    code: 4, msg: /CNI_NETNS/,
  },
  {
    name: 'ADD without CNI_CONTAINERID -> 4',
    env: () => addEnv({ CNI_CONTAINERID: undefined }),
    stdin: () => netconf(node.socket),
    code: 4, msg: /CNI_CONTAINERID/,
  },
  {
    name: 'no CNI_COMMAND -> 4',
    env: () => addEnv({ CNI_COMMAND: undefined }),
    stdin: () => netconf(node.socket),
    code: 4, msg: /CNI_COMMAND/,
  },
  {
    name: 'unknown CNI_COMMAND -> 4',
    env: () => addEnv({ CNI_COMMAND: 'FROBNICATE' }),
    stdin: () => netconf(node.socket),
    code: 4, msg: /unknown CNI_COMMAND.*FROBNICATE/,
  },
  {
    name: 'unknown cniVersion 9.9.9 -> 1, details list the supported versions',
    env: () => addEnv(),
    stdin: () => netconf(node.socket, { cniVersion: '9.9.9' }),
    code: 1, msg: /version/i, details: /9\.9\.9[\s\S]*0\.3\.0[\s\S]*0\.3\.1[\s\S]*0\.4\.0[\s\S]*1\.0\.0[\s\S]*1\.1\.0/,
  },
  {
    name: 'netns path that does not exist -> 4',
    env: () => addEnv({ CNI_NETNS: `/var/run/netns/${uid(netns.prefix)}-missing` }),
    stdin: () => netconf(node.socket),
    code: 4, msg: /CNI_NETNS .*-missing/,
  },
  {
    name: 'daemon not running (no socket at the path) -> 11',
    env: () => addEnv(),
    stdin: () => netconf(join(scratch, 'nobody-listens.sock')),
    code: 11, msg: /not reachable.*nobody-listens\.sock/, details: /ENOENT/,
  },
  {
    name: 'daemon not running (path is not a listening socket) -> 11',
    env: () => addEnv(),
    stdin: () => {
      const p = join(scratch, 'plain-file.sock');
      writeFileSync(p, '');
      return netconf(p);
    },
    code: 11, msg: /not reachable.*plain-file\.sock/,
  },
  {
    name: 'invalid static MAC in runtimeConfig -> 7',
    env: () => addEnv(),
    stdin: () => netconf(node.socket, { runtimeConfig: { mac: '02:00:00:zz:00:01' } }),
    code: 7, msg: /mac.*02:00:00:zz:00:01/i,
  },
  {
    name: 'static IP outside the subnet -> 101 (IPAM)',
    env: () => addEnv(),
    stdin: () => netconf(node.socket, { runtimeConfig: { ips: ['192.168.77.5/24'] } }),
    code: 101, msg: /192\.168\.77\.5.*outside/,
  },
  {
    name: 'unknown CNI_ARGS key without IgnoreUnknown -> 4',
    env: () => addEnv({ CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;BOGUS_KEY=1' }),
    stdin: () => netconf(node.socket),
    code: 4, msg: /CNI_ARGS.*BOGUS_KEY/,
  },
];

describe('bad input is refused with the right CNI code and nothing is left behind', () => {
  it.each(cases)('$name', (c) => {
    const before = attachmentState(node);
    const r = runShim(c.env(), c.stdin());
    const j = expectCniError(r, c.code, c.msg);
    if (c.details) expect(String(j.details ?? ''), `details of ${r.stdout}`).toMatch(c.details);
    expect(attachmentState(node), 'nothing half-created').toEqual(before);
    goodAddDel(before);
  });
});

describe('a refused ADD does not disturb other attachments', () => {
  it('a bad static IP for a second sandbox of a running pod -> 101, and the first sandbox keeps its IP', () => {
    const before = attachmentState(node);
    const nsOld = netns.create('web1');
    const nsNew = netns.create('web2');
    const nsOther = netns.create('other');
    const args = 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=web';
    const first = uid('web-s1');
    const second = uid('web-s2');
    const other = uid('other');
    try {
      const a = runShim(cniEnv({ command: 'ADD', containerId: first, netns: nsPath(nsOld), args }), netconf(node.socket));
      expect(a.status, a.stdout + a.stderr).toBe(0);
      const [ip] = resultIps(a.json);
      const mid = attachmentState(node);

      // The runtime starts a new sandbox for the same pod, with an address outside the subnet.
      const b = runShim(cniEnv({ command: 'ADD', containerId: second, netns: nsPath(nsNew), args }),
        netconf(node.socket, { runtimeConfig: { ips: ['192.168.77.6/24'] } }));
      expectCniError(b, 101, /outside/);
      expect(attachmentState(node), 'nothing half-created, nothing of the first sandbox removed').toEqual(mid);

      // The first sandbox still holds its address: another pod asking for it is refused.
      const c = runShim(cniEnv({ command: 'ADD', containerId: other, netns: nsPath(nsOther) }),
        netconf(node.socket, { runtimeConfig: { ips: [`${ip}/16`] } }));
      expect(c.status, `another pod got ${ip}, which the first sandbox of default/web still uses: ${c.stdout}`).not.toBe(0);
      expect(c.json?.code).toBe(101);
      expect(c.json?.msg as string).toMatch(/in use/);
      expect(netns.ping(node.ns, ip as string), `node -> first sandbox ${ip}`).toBe(true);
    } finally {
      for (const id of [other, second, first]) runShim(cniEnv({ command: 'DEL', containerId: id }), netconf(node.socket));
      for (const n of [nsOld, nsNew, nsOther]) netns.remove(n);
    }
    expect(attachmentState(node)).toEqual(before);
  });
});

describe('commands that must succeed', () => {
  it('VERSION with empty stdin prints the supported versions and exits 0', () => {
    const r = runShim({ CNI_COMMAND: 'VERSION' }, '');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.json).toEqual({ cniVersion: '1.1.0', supportedVersions: SUPPORTED });
  });

  it('VERSION the way libcni asks (dummy env, {"cniVersion":"1.0.0"}) answers in 1.0.0', () => {
    const env = { CNI_COMMAND: 'VERSION', CNI_NETNS: 'dummy', CNI_IFNAME: 'dummy', CNI_PATH: 'dummy', CNI_CONTAINERID: '', CNI_ARGS: '' };
    const r = runShim(env, '{"cniVersion":"1.0.0"}');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.json).toEqual({ cniVersion: '1.0.0', supportedVersions: SUPPORTED });
  });

  it('STATUS (1.1.0) on a ready daemon exits 0 with empty stdout', () => {
    const r = runShim(cniEnv({ command: 'STATUS' }), netconf(node.socket, { cniVersion: '1.1.0' }));
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toBe('');
  });

  it('ADD with a 1.1.0 config returns a 1.1.0 result', () => {
    const before = attachmentState(node);
    const id = uid('v11');
    const conf = netconf(node.socket, { cniVersion: '1.1.0' });
    const add = runShim(cniEnv({ command: 'ADD', containerId: id, netns: nsPath(probeNs) }), conf);
    try {
      expect(add.status, add.stdout + add.stderr).toBe(0);
      expect(add.json?.cniVersion).toBe('1.1.0');
      expect(resultIps(add.json)).toHaveLength(1);
      expect(add.json?.interfaces).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'eth0', sandbox: nsPath(probeNs) })]));
    } finally {
      const del = runShim(cniEnv({ command: 'DEL', containerId: id, netns: nsPath(probeNs) }), conf);
      expect(del.status, del.stdout + del.stderr).toBe(0);
    }
    expect(attachmentState(node)).toEqual(before);
  });

  it('GC (1.1.0) removes the attachment not in cni.dev/valid-attachments and keeps the listed one', () => {
    const before = attachmentState(node);
    const nsKeep = netns.create('gckeep');
    const nsGone = netns.create('gcgone');
    const keep = uid('gckeep');
    const gone = uid('gcgone');
    const conf = (extra: Record<string, unknown> = {}): string => netconf(node.socket, { cniVersion: '1.1.0', name: 'gcnet', ...extra });
    try {
      const a = runShim(cniEnv({ command: 'ADD', containerId: keep, netns: nsPath(nsKeep) }), conf());
      const b = runShim(cniEnv({ command: 'ADD', containerId: gone, netns: nsPath(nsGone) }), conf());
      expect(a.status, a.stdout + a.stderr).toBe(0);
      expect(b.status, b.stdout + b.stderr).toBe(0);
      const [keepIp] = resultIps(a.json);
      const goneIface = (b.json?.interfaces as Array<{ name: string }>)[0]?.name as string;
      const keepIface = (a.json?.interfaces as Array<{ name: string }>)[0]?.name as string;
      const mid = attachmentState(node);
      expect(countsOf(mid)).toEqual({ veths: before.veths.length + 2, ports: before.ports.length + 2, lsps: before.lsps.length + 2 });
      expect(mid.veths).toContain(goneIface);
      expect(netns.ping(node.ns, keepIp as string), `node -> kept pod ${keepIp} before GC`).toBe(true);

      const gc = runShim(cniEnv({ command: 'GC' }), conf({ 'cni.dev/valid-attachments': [{ containerID: keep, ifname: 'eth0' }] }));
      expect(gc.status, gc.stdout + gc.stderr).toBe(0);
      expect(gc.stdout).toBe('');

      const after = attachmentState(node);
      console.log('GC: before', countsOf(mid), 'after', countsOf(after));
      expect(after.veths).not.toContain(goneIface);
      expect(after.ports).not.toContain(goneIface);
      expect(after.lsps).not.toContain(`${gone}.eth0`);
      expect(after.veths).toContain(keepIface);
      expect(after.ports).toContain(keepIface);
      expect(after.lsps).toContain(`${keep}.eth0`);
      expect(countsOf(after)).toEqual({ veths: before.veths.length + 1, ports: before.ports.length + 1, lsps: before.lsps.length + 1 });
      expect(netns.ping(node.ns, keepIp as string), `node -> kept pod ${keepIp} after GC`).toBe(true);
    } finally {
      for (const id of [keep, gone]) runShim(cniEnv({ command: 'DEL', containerId: id }), conf());
      netns.remove(nsKeep);
      netns.remove(nsGone);
    }
    expect(attachmentState(node)).toEqual(before);
  });
});
