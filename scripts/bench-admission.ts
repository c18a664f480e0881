// npm run bench:admission: does a CNI ADD cost the same with 0 and with 2000 pods in the store?
//
// A real node: ovnoded --embedded (OVS + OVN, userspace datapath) in a dedicated netns (the script
// re-executes itself there), 200 NetworkPolicies in its manifests directory. For each level of
// pods in store (BENCH_LEVELS, default 0,500,1000,2000), the pods' objects (one manifest file per
// step) and their NB ports (written straight into the node's NB in batched transactions, as
// earlier ADDs would have left them) are added, and the node is let settle: the policy engine
// has put them into its port groups and address sets, and ovn-northd and ovn-controller have
// caught up (ovn-nbctl --wait=hv sync). Then BENCH_N pods (default 30, after BENCH_WARMUP = 3
// untimed ones) are attached for real through libcni's cnitool and the shim, one at a time on a
// quiet node, and detached again.
//
// Per ADD, the daemon's own debug log gives the time of admissionOps (the policy part of the ADD
// path, which must not grow with the pods), of the NB transaction that carries it, and of the
// wait for ovn-installed: ovn-northd's and ovn-controller's work, reported apart because it is
// OVN's cost, not ovnode's. The reference is the 0-pod level of the same run; the target is ADD
// p50 at the largest level within 1.1x of it.
//
// The pre-created ports have no OVS port (no veth behind them): the daemon's periodic leak sweep
// would remove them, so it is pushed out of the run (OVNODE_RECONCILE_INTERVAL_MS); their netns
// checkpoint is the node's own netns, which exists. NODE_EXTRA_CA_CERTS is removed from every
// child environment, as in bench-cni. Everything lives in one temporary directory, removed on
// exit; the daemon is stopped with SIGTERM (it stops its OVS/OVN).

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runAsNode } from './bench-node-netns';
import { hostIfName } from '../daemon/intent/intent';
import { macForIp } from '../daemon/ipam/mac';
import { addressLine } from '../daemon/ovn/lsp';
import { NB } from '../daemon/ovs/schema';
import { OvsdbClient } from '../daemon/ovsdb/client';
import type { Operation } from '../daemon/ovsdb/types';
import { asArray, namedUuid, ovsMap, ovsSet, type Atom } from '../daemon/ovsdb/values';
import type { Attachment } from '../daemon/store/attachment';
import { toLspExternalIds } from '../daemon/store/external-ids';

const REPO = resolve(__dirname, '..', '..');
const SHIM_DIR = join(REPO, 'dist', 'bin');
const CNITOOL = join(REPO, 'build', 'tools', 'cnitool');
const LEVELS = (process.env.BENCH_LEVELS ?? '0,500,1000,2000').split(',').map(Number).sort((a, b) => a - b);
const N = Number(process.env.BENCH_N ?? 30);
// Untimed ADDs first at each level: the first ones run on code the JIT has not optimised yet.
const WARMUP = Number(process.env.BENCH_WARMUP ?? 3);
const N_NAMESPACES = 20;
const NP_PER_NAMESPACE = 10; // 200 NetworkPolicies
const N_APPS = 20;
const TIERS = ['web', 'api', 'db'] as const;
const BATCH = 250;
const TARGET_RATIO = 1.1;
const WAIT_MS = 300_000;
const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
};
const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;
const sleep = (t: number): Promise<void> => new Promise((r) => setTimeout(r, t));
let interrupted = false;

// ---------------------------------------------------------------------------------------------
// The node netns: created here, the run re-executed inside it, removed afterwards.

function outer(): void {
  runAsNode(__filename, 'ovadm', env);
}

// ---------------------------------------------------------------------------------------------
// The daemon's pino log, written to a file and read back as it grows.

interface LogLine { msg: string; level: number; [k: string]: unknown }

class LogTail {
  private offset = 0;
  private partial = '';
  readonly lines: LogLine[] = [];

  constructor(private readonly path: string) {}

  /** Reads what was appended since the last call. */
  poll(): void {
    const fd = openSync(this.path, 'r');
    try {
      const buf = Buffer.alloc(1 << 20);
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, this.offset);
        if (n <= 0) break;
        this.offset += n;
        this.partial += buf.subarray(0, n).toString('utf8');
      }
    } finally {
      closeSync(fd);
    }
    const parts = this.partial.split('\n');
    this.partial = parts.pop() ?? '';
    for (const p of parts) {
      if (!p.startsWith('{')) continue;
      try { this.lines.push(JSON.parse(p) as LogLine); } catch { /* a foreign line */ }
    }
  }

  /** Position to search from: lines logged after this call. */
  mark(): number { this.poll(); return this.lines.length; }

  since(mark: number): LogLine[] { this.poll(); return this.lines.slice(mark); }

  /** The first line from `mark` on satisfying `pred`, waiting for it. */
  async waitFor(mark: number, pred: (l: LogLine) => boolean, what: string, daemon?: ChildProcess): Promise<LogLine> {
    const deadline = Date.now() + WAIT_MS;
    let i = mark;
    for (;;) {
      this.poll();
      for (; i < this.lines.length; i++) {
        const l = this.lines[i] as LogLine;
        if (l.level >= 50 && l.msg !== 'policy applied') throw new Error(`daemon error while waiting for ${what}: ${JSON.stringify(l)}`);
        if (pred(l)) return l;
      }
      if (daemon && daemon.exitCode !== null) throw new Error(`daemon exited (${daemon.exitCode}) while waiting for ${what}`);
      if (interrupted) throw new Error('interrupted');
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(5);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The workload: 20 namespaces, 10 NetworkPolicies each (five shapes, as bench-policy), pods by app
// and tier. Manifests are JSON Lists, as `kubectl get -o json` writes them.

const nsName = (n: number): string => `ns-${n}`;
const appName = (a: number): string => `app-${((a % N_APPS) + N_APPS) % N_APPS}`;
const npApp = (n: number, k: number): string => appName(n + 2 * k);
const bulkIp = (i: number): string => `10.16.${64 + Math.floor(i / 250)}.${(i % 250) + 2}`;

interface PodDef { name: string; namespace: string; labels: Record<string, string> }

const bulkPod = (i: number): PodDef => {
  const n = i % N_NAMESPACES;
  return { name: `bulk-${i}`, namespace: nsName(n), labels: { app: appName(Math.floor(i / N_NAMESPACES) + n), tier: TIERS[i % TIERS.length] as string } };
};
// Each is selected by its namespace's np-0 and is a peer of several policies' address sets.
const realPod = (i: number): PodDef => ({ name: `real-${i}`, namespace: nsName(i % N_NAMESPACES), labels: { app: appName(i % N_NAMESPACES), tier: TIERS[i % TIERS.length] as string } });

function podDoc(p: PodDef): Record<string, unknown> {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: p.name, namespace: p.namespace, labels: p.labels },
    spec: { containers: [{ name: 'main', image: 'bench', ports: [{ name: 'http', containerPort: 8080 }, { name: 'metrics', containerPort: 9090 }] }] },
  };
}

function namespaceDocs(): Array<Record<string, unknown>> {
  return Array.from({ length: N_NAMESPACES }, (_, n) => ({
    apiVersion: 'v1', kind: 'Namespace', metadata: { name: nsName(n), labels: { team: `team-${n % 3}`, env: n < N_NAMESPACES / 2 ? 'prod' : 'dev' } },
  }));
}

function policySpec(n: number, k: number): Record<string, unknown> {
  const podSelector = { matchLabels: { app: npApp(n, k) } };
  switch (k % 5) {
    case 0: return { podSelector, ingress: [{ from: [{ podSelector: { matchLabels: { tier: 'web' } } }], ports: [{ port: 'http' }, { protocol: 'TCP', port: 443 }] }] };
    case 1: return {
      podSelector,
      ingress: [
        { from: [{ namespaceSelector: { matchLabels: { env: 'prod' } }, podSelector: { matchLabels: { tier: 'api' } } }], ports: [{ protocol: 'TCP', port: 5432 }] },
        { from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.16.0.0/16'] } }], ports: [{ protocol: 'TCP', port: 8000, endPort: 8100 }] },
      ],
    };
    case 2: return {
      podSelector, policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: `team-${n % 3}` } } }] }],
      egress: [
        { to: [{ podSelector: { matchLabels: { tier: 'db' } } }], ports: [{ protocol: 'TCP', port: 5432, endPort: 5440 }] },
        { to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['169.254.0.0/16'] } }], ports: [{ protocol: 'UDP', port: 53 }] },
      ],
    };
    case 3: return {
      podSelector, policyTypes: ['Egress'],
      egress: [{ to: [{ namespaceSelector: { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] }, podSelector: { matchLabels: { app: npApp(n, 2) } } }], ports: [{ protocol: 'TCP', port: 'http' }] }],
    };
    default: return {
      podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: [npApp(n, k), appName(n + 13)] }] },
      ingress: [
        { from: [{ podSelector: { matchExpressions: [{ key: 'app', operator: 'NotIn', values: [npApp(n, 0)] }] } }], ports: [{ port: 'metrics' }] },
        { ports: [{ protocol: 'TCP', port: 9100 }] },
      ],
    };
  }
}

function policyDocs(): Array<Record<string, unknown>> {
  const docs: Array<Record<string, unknown>> = [];
  for (let n = 0; n < N_NAMESPACES; n++) {
    for (let k = 0; k < NP_PER_NAMESPACE; k++) {
      docs.push({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: `np-${k}`, namespace: nsName(n) }, spec: policySpec(n, k) });
    }
  }
  return docs;
}

function writeManifest(dir: string, file: string, items: Array<Record<string, unknown>>): void {
  // Written aside and renamed: the daemon's watch never reads half a file.
  const tmp = join(dir, `.${file}.tmp`);
  writeFileSync(tmp, JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
  execFileSync('mv', [tmp, join(dir, file)]);
}

/** The NB ports of bulk pods [from, to), as ADDs would have written them, BATCH per transaction. */
async function createBulkPorts(nb: OvsdbClient, from: number, to: number, netns: string): Promise<void> {
  for (let start = from; start < to; start += BATCH) {
    const ops: Operation[] = [];
    const refs: Atom[] = [];
    for (let i = start; i < Math.min(to, start + BATCH); i++) {
      const p = bulkPod(i);
      const ip = bulkIp(i);
      const sandbox = randomBytes(32).toString('hex');
      const a: Attachment = {
        sandbox, ifName: 'eth0', netns, network: 'ovnbench', lspName: `${p.name}.${p.namespace}`, logicalSwitch: 'ovn-default',
        hostIfName: hostIfName(sandbox, 'eth0'), mac: macForIp(ip), ips: [ip], podName: p.name, podNamespace: p.namespace,
        podUid: randomBytes(16).toString('hex'),
      };
      const line = addressLine(a);
      ops.push({ op: 'insert', table: NB.lsp, 'uuid-name': `lsp${i}`, row: { name: a.lspName, addresses: ovsSet([line]), port_security: ovsSet([line]), external_ids: ovsMap(toLspExternalIds(a)) } });
      refs.push(namedUuid(`lsp${i}`));
    }
    ops.push({ op: 'mutate', table: NB.ls, where: [['name', '==', 'ovn-default']], mutations: [['ports', 'insert', ovsSet(refs)]] });
    ops.push({ op: 'comment', comment: `bench-admission: bulk pods ${start}..${start + refs.length - 1}` });
    await nb.transact(ops);
  }
}

/** ovn-northd and ovn-controller have processed everything the NB holds now. */
function hvSync(nbSocket: string): number {
  const t0 = process.hrtime.bigint();
  execFileSync('ovn-nbctl', [`--db=unix:${nbSocket}`, '--wait=hv', `--timeout=${WAIT_MS / 1000}`, 'sync'], { env, stdio: 'ignore' });
  return ms(t0);
}

// ---------------------------------------------------------------------------------------------
// One level: settle, then N+1 ADD/DEL cycles through cnitool.

interface AddSample {
  addMs: number;
  daemonMs: number;
  admissionMs: number;
  admissionOps: number;
  nbMs: number;
  waitMs: number;
  policyRunMs: number;
}

interface Level {
  pods: number;
  policies: number;
  memberships: { ports: number; addresses: number };
  samples: AddSample[];
}

function cnitool(netconfDir: string, cmd: 'add' | 'del', netns: string, p: PodDef): { ms: number; ok: boolean; err: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(CNITOOL, [cmd, 'ovnbench', netns], {
    env: { ...env, NETCONFPATH: netconfDir, CNI_PATH: `${SHIM_DIR}:/usr/lib/cni`, CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${p.namespace};K8S_POD_NAME=${p.name}` },
    encoding: 'utf8',
  });
  return { ms: ms(t0), ok: r.status === 0, err: `${r.stdout}${r.stderr}` };
}

const isRun = (l: LogLine): boolean => l.msg === 'policy applied';
const num = (v: unknown): number => (typeof v === 'number' ? v : NaN);

async function cycle(ctx: { tail: LogTail; daemon: ChildProcess; netconfDir: string; nbSocket: string; prefix: string }, p: PodDef, tag: string): Promise<AddSample> {
  const { tail, daemon } = ctx;
  const netnsName = `${ctx.prefix}${tag}`;
  const netns = `/var/run/netns/${netnsName}`;
  execFileSync('ip', ['netns', 'add', netnsName]);
  try {
    const mark = tail.mark();
    const add = cnitool(ctx.netconfDir, 'add', netns, p);
    if (!add.ok) throw new Error(`ADD of ${p.namespace}/${p.name} failed: ${add.err}`);
    // The run the ADD asked for (100 ms later, off the request path) is waited for, so that the
    // DEL and the next ADD start on a quiet daemon; its length is reported.
    const run = await tail.waitFor(mark, isRun, 'the policy run after the ADD', daemon);
    const lines = tail.since(mark);
    const lsp = `${p.name}.${p.namespace}`;
    const step = (s: string): number => num(lines.find((l) => l.cmd === 'ADD' && l.msg === 'step done' && l.step === s)?.ms);
    const admission = lines.find((l) => l.step === 'admission' && l.lsp === lsp);
    const served = lines.find((l) => l.msg === 'request served' && l.cmd === 'ADD');
    const delMark = tail.mark();
    const del = cnitool(ctx.netconfDir, 'del', netns, p);
    if (!del.ok) throw new Error(`DEL of ${p.namespace}/${p.name} failed: ${del.err}`);
    await tail.waitFor(delMark, isRun, 'the policy run after the DEL', daemon);
    hvSync(ctx.nbSocket);
    return {
      addMs: add.ms, daemonMs: num(served?.ms), admissionMs: num(admission?.ms), admissionOps: num(admission?.ops),
      nbMs: step('ovn'), waitMs: step('wait'), policyRunMs: num(run.ms),
    };
  } finally {
    spawnSync('ip', ['netns', 'del', netnsName]);
  }
}

function memberships(nb: OvsdbClient): { ports: number; addresses: number } {
  let ports = 0;
  let addresses = 0;
  for (const r of nb.rows('Port_Group').values()) ports += asArray(r.ports).length;
  for (const r of nb.rows('Address_Set').values()) addresses += asArray(r.addresses).length;
  return { ports, addresses };
}

let ticks = 0;

/**
 * Runs the policy engine until the memberships it writes no longer change, then lets OVN catch
 * up. Ports written straight into the NB start no run of their own (in a real node the ADD that
 * creates a port schedules one), and a large batch can reach the daemon's monitor after the run
 * that the pods' objects started: each round edits a bench-only Namespace object to start one.
 */
async function settle(ctx: { tail: LogTail; daemon: ChildProcess; nb: OvsdbClient; nbSocket: string; manifests: string }): Promise<{ ports: number; addresses: number }> {
  let last = '';
  for (let round = 0; round < 10; round++) {
    // Our own cache: updates wait on this process's socket until it reads them.
    await ctx.nb.echo();
    const now = memberships(ctx.nb);
    if (JSON.stringify(now) === last) {
      hvSync(ctx.nbSocket);
      return now;
    }
    last = JSON.stringify(now);
    const mark = ctx.tail.mark();
    writeManifest(ctx.manifests, '99-bench-tick.json', [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench-tick', annotations: { tick: String(++ticks) } } }]);
    await ctx.tail.waitFor(mark, isRun, 'the policy run of a settle round', ctx.daemon);
  }
  throw new Error('the policy state did not settle in 10 runs');
}

function startDaemon(stateDir: string, manifests: string, logPath: string): ChildProcess {
  const out = openSync(logPath, 'a');
  const child = spawn(process.execPath, [join(SHIM_DIR, 'ovnoded'), 'run', '--embedded', '--state-dir', stateDir,
    '--socket', join(stateDir, 'run', 'ovnoded.sock'), '--manifests', manifests,
    '--node-name', 'bench', '--metrics-address', '', '--log-level', 'debug'],
  { env: { ...env, OVNODE_RECONCILE_INTERVAL_MS: String(24 * 3600_000) }, stdio: ['ignore', out, out] });
  closeSync(out);
  return child;
}

async function inner(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'ovbench-adm-'));
  const nodeNs = process.env.OVNODE_BENCH_INNER as string;
  const stateDir = join(tmp, 'state');
  const manifests = join(tmp, 'manifests');
  const netconfDir = join(tmp, 'netconf');
  const logPath = join(tmp, 'ovnoded.log');
  for (const d of [stateDir, manifests, netconfDir]) mkdirSync(d, { recursive: true });
  writeFileSync(logPath, '');
  writeFileSync(join(netconfDir, '10-ov.conflist'), JSON.stringify({
    cniVersion: '1.0.0', name: 'ovnbench', plugins: [{ type: 'ovnode', daemonSocket: join(stateDir, 'run', 'ovnoded.sock') }],
  }));
  const reals = Array.from({ length: N + WARMUP }, (_, i) => realPod(i));
  writeManifest(manifests, '00-namespaces.json', namespaceDocs());
  const policies = policyDocs();
  writeManifest(manifests, '01-policies.json', policies);
  writeManifest(manifests, '02-real-pods.json', reals.map(podDoc));

  const tail = new LogTail(logPath);
  const daemon = startDaemon(stateDir, manifests, logPath);
  const nbSocket = join(stateDir, 'ovn', 'nb.sock');
  const nb = new OvsdbClient({ socketPath: nbSocket, database: 'OVN_Northbound' });
  const levels: Level[] = [];
  try {
    await tail.waitFor(0, (l) => l.msg === 'ovnoded ready', 'the daemon to be ready', daemon);
    await nb.connect();
    await nb.monitor({ Port_Group: { columns: ['name', 'ports'] }, Address_Set: { columns: ['name', 'addresses'] } });
    let pods = 0;
    for (const level of LEVELS) {
      const t0 = process.hrtime.bigint();
      if (level > pods) {
        await createBulkPorts(nb, pods, level, `/var/run/netns/${nodeNs}`);
        // The objects last: their change starts the engine's run, which then sees the ports too.
        const mark = tail.mark();
        writeManifest(manifests, `10-bulk-${String(level).padStart(6, '0')}.json`, Array.from({ length: level - pods }, (_, k) => podDoc(bulkPod(pods + k))));
        const changed = await tail.waitFor(mark, (l) => l.msg === 'manifests changed', 'the manifests to be read', daemon);
        await tail.waitFor(tail.lines.indexOf(changed), isRun, 'the policy run for the new pods', daemon);
        pods = level;
      }
      const state = await settle({ tail, daemon, nb, nbSocket, manifests });
      const samples: AddSample[] = [];
      for (let i = 0; i < N + WARMUP; i++) {
        const s = await cycle({ tail, daemon, netconfDir, nbSocket, prefix: `${nodeNs.slice(0, 10)}` }, reals[i] as PodDef, `l${level}p${i}`);
        if (i >= WARMUP) samples.push(s);
      }
      levels.push({ pods: level, policies: policies.length, memberships: state, samples });
      console.error(`level ${level} pods: done (${(ms(t0) / 1000).toFixed(1)} s)`);
    }
  } finally {
    await nb.close().catch(() => undefined);
    await new Promise<void>((r) => {
      if (daemon.exitCode !== null) { r(); return; }
      daemon.once('exit', () => r());
      daemon.kill('SIGTERM');
    });
    if (levels.length > 0) report(levels);
    rmSync(tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

function report(levels: Level[]): void {
  const f = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
  const col = (l: Level, k: keyof AddSample): number[] => l.samples.map((s) => s[k]);
  const p50 = (l: Level, k: keyof AddSample): number => pct(col(l, k), 50);
  // The ADD without OVN's part: what ovnode's request path (and the shim) cost.
  const own = (l: Level): number => pct(l.samples.map((s) => s.addMs - s.waitMs), 50);
  const base = levels[0] as Level;
  const last = levels.at(-1) as Level;
  const ratio = (l: Level, v: (x: Level) => number): string => `${f(v(l) / v(base), 2)}x`;
  const table = (header: string[], rows: string[][]): void => {
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
    const line = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i] as number)).join('   ');
    console.log(line(header));
    for (const r of rows) console.log(line(r));
  };

  console.log(`\nCNI ADD vs pods in store: real node (ovnoded --embedded, OVS/OVN userspace datapath), ${base.policies} NetworkPolicies, `
    + `${base.samples.length} ADDs per level through cnitool (after ${WARMUP} untimed), each on a quiet node; reference: the ${base.pods}-pod level of this run\n`);
  table(['pods in store', 'policies', 'admission p50 / p90 (ms)', 'ADD p50 (ms)', `ratio vs ${base.pods} pods`],
    levels.map((l) => [String(l.pods), String(l.policies), `${f(p50(l, 'admissionMs'), 3)} / ${f(pct(col(l, 'admissionMs'), 90), 3)}`,
      f(p50(l, 'addMs')), ratio(l, (x) => p50(x, 'addMs'))]));

  console.log('\nwhere an ADD\'s time goes, p50 (ms); the policy run an ADD schedules is off the request path, waited for between ADDs');
  table(['pods in store', 'PG ports / AS addrs', 'daemon ADD', 'NB txn', 'ovn-installed wait', 'ADD - wait', 'ratio', 'policy run after ADD'],
    levels.map((l) => [String(l.pods), `${l.memberships.ports} / ${l.memberships.addresses}`, f(p50(l, 'daemonMs')), f(p50(l, 'nbMs')),
      f(p50(l, 'waitMs')), f(own(l)), ratio(l, own), f(p50(l, 'policyRunMs'))]));
  console.log('  daemon ADD: the request as the daemon served it; NB txn: the LSP and its admission ops, one transaction;');
  console.log('  ovn-installed wait: ovn-northd + ovn-controller binding the port (OVN\'s work); ADD - wait: the cnitool ADD without it');
  const ops = [...new Set(levels.flatMap((l) => col(l, 'admissionOps')))].sort((a, b) => a - b);
  console.log(`  admission ops per ADD (port groups + address sets joined): ${ops.join(', ')}`);

  const targets: Array<[string, number]> = [
    [`ADD p50 at ${last.pods} pods <= ${TARGET_RATIO}x ${base.pods} pods`, p50(last, 'addMs') / p50(base, 'addMs')],
    [`admission p50 at ${last.pods} pods <= ${TARGET_RATIO}x ${base.pods} pods`, p50(last, 'admissionMs') / p50(base, 'admissionMs')],
    [`ADD - ovn-installed wait p50 <= ${TARGET_RATIO}x ${base.pods} pods`, own(last) / own(base)],
  ];
  console.log('\ntargets:');
  for (const [name, r] of targets) console.log(`  ${r <= TARGET_RATIO ? 'MET   ' : 'MISSED'} ${name.padEnd(50)} ${r.toFixed(2)}x`);
}

if (process.env.OVNODE_BENCH_INNER) {
  const stop = (): void => { interrupted = true; };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  inner().catch((e) => { console.error(e); process.exitCode = 1; });
} else outer();
