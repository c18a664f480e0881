// npm run bench:policy: the policy engine against a REAL OVN northbound ovsdb-server (and, unless
// BENCH_NORTHD=0, ovn-northd with its southbound database, as the embedded stack runs them). No
// OVS or kernel datapath: the pod ports exist in the NB only, as the CNI ADD path writes them.
//
// Builds the node topology (ensureTopology: ovn-default 10.16.0.0/16 and join), 200 pod LSPs in
// ONE transaction with ovnode's checkpoint external_ids, and a MemoryStore with 200 Pods (10
// namespaces), 50 NetworkPolicies and 20 SecurityGroups; then measures
//   1. the cold apply (PolicyEngine.reconcileNow from an empty policy state),
//   2. an idempotent re-run (must plan 0 operations),
//   3. one pod label change, from MemoryStore.apply until the engine's run has finished AND the
//      NB monitor cache shows the pod's LSP in the expected Port_Group (its 'change' event),
//      BENCH_CHANGES times (default 20) with different pods,
//   4. the reference: the same label changes applied the naive way (delete every ovnode-owned
//      Port_Group and Address_Set row and recreate the whole desired state in one transaction),
// and, for the CNI ADD path, engine.admissionOps for a new pod (indexes, this pod only) against
// the full desired-state computation it replaced (reference, same NB, same pod, same operations).
// With ovn-northd running, its log is checked for failed southbound transactions at the end: a
// desired state the NB accepts can still be one northd cannot translate.
// Every file (databases, sockets, pidfiles, logs, control sockets) lives in one temporary
// directory; the servers are killed by pid and the directory removed on exit, on failure and on
// SIGINT/SIGTERM. BENCH_VERBOSE=1 prints every sample.
//
// Where the time of a run goes is measured inside the engine's own runs: the engine calls the
// policy modules through their CommonJS export objects, so the bench wraps those exports with
// timers (podPorts, computeDesired and its translators, planReconcile) and the registry's sync.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { hostIfName } from '../daemon/intent/intent';
import { macForIp } from '../daemon/ipam/mac';
import { SubnetRegistry } from '../daemon/ipam/registry';
import { NB_MONITOR } from '../daemon/node/monitors';
import { MemoryStore } from '../daemon/objects/memory-store';
import { SUPPORTED_KINDS, type RawObject } from '../daemon/objects/parse';
import type { Kind, PodObj } from '../daemon/objects/types';
import { validateObject } from '../daemon/objects/validate';
import { addressLine } from '../daemon/ovn/lsp';
import { ensureTopology } from '../daemon/ovn/topology';
import { NB } from '../daemon/ovs/schema';
import { OvsdbClient } from '../daemon/ovsdb/client';
import type { Operation, OperationResult } from '../daemon/ovsdb/types';
import { asArray, asMap, namedUuid, ovsMap, ovsSet, uuid, type Atom, type Row } from '../daemon/ovsdb/values';
import * as desiredModule from '../daemon/policy/desired';
import { computeDesired } from '../daemon/policy/desired';
import { PolicyEngine } from '../daemon/policy/engine';
import { aclKey, type DesiredAcl, type DesiredState } from '../daemon/policy/model';
import { pgNetworkPolicy } from '../daemon/policy/names';
import * as npModule from '../daemon/policy/network-policy';
import * as podsModule from '../daemon/policy/pods';
import { podPorts } from '../daemon/policy/pods';
import { portSecurityLine, ANNOTATION } from '../daemon/policy/port-settings';
import * as reconcileModule from '../daemon/policy/reconcile';
import { OWNER_KEY, ROW_KEY } from '../daemon/policy/reconcile';
import * as sgModule from '../daemon/policy/security-groups';
import * as subnetsModule from '../daemon/policy/subnets';
import type { Attachment } from '../daemon/store/attachment';
import { toLspExternalIds } from '../daemon/store/external-ids';

const run = promisify(execFile);
const NB_SCHEMA = '/usr/share/ovn/ovn-nb.ovsschema';
const SB_SCHEMA = '/usr/share/ovn/ovn-sb.ovsschema';
const NORTHD = existsSync('/usr/bin/ovn-northd') && process.env.BENCH_NORTHD !== '0';
// BENCH_PODS / BENCH_NAMESPACES scale the workload (5 policies per namespace); the defaults are
// the figures the README quotes.
const N_PODS = Number(process.env.BENCH_PODS ?? 200);
const N_NAMESPACES = Number(process.env.BENCH_NAMESPACES ?? 10);
const N_APPS = 20;
const TIERS = ['web', 'api', 'db'] as const;
const NP_PER_NAMESPACE = 5; // 50 NetworkPolicies
const N_SGS = 20;
const N_CHANGES = Number(process.env.BENCH_CHANGES ?? 20);
const TARGET_MS = 100;
const WAIT_TIMEOUT_MS = 10_000;

const POD_SWITCH = { name: 'ovn-default', cidrs: ['10.16.0.0/16'], gateways: ['10.16.0.1'] };
const JOIN_SWITCH = { name: 'join', cidrs: ['100.64.0.0/16'], gateways: ['100.64.0.1'] };
const NODE_IP = '100.64.0.2';

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
};
const median = (xs: number[]): number => pct(xs, 50);
const sleepSync = (ms: number): void => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); };

// ---------------------------------------------------------------------------------------------
// Servers: everything under one temporary directory, killed by the pids of their pidfiles.

class TempStack {
  readonly dir = mkdtempSync(join(tmpdir(), 'ovbench-policy-'));
  readonly nbSocket = join(this.dir, 'nb.sock');
  readonly sbSocket = join(this.dir, 'sb.sock');
  /** Pidfiles of every daemon started (or being started), for cleanup. */
  private readonly pidfiles: string[] = [];
  private cleaned = false;
  private readonly env: NodeJS.ProcessEnv;

  constructor() {
    const d = this.dir;
    // Default run/db/log directories of the OVS and OVN tools point into the temp dir too.
    this.env = { ...process.env, OVS_RUNDIR: d, OVS_DBDIR: d, OVS_LOGDIR: d, OVN_RUNDIR: d, OVN_DBDIR: d, OVN_LOGDIR: d };
  }

  async startDb(name: 'nb' | 'sb', schema: string, socket: string): Promise<void> {
    const db = join(this.dir, `${name}.db`);
    await run('ovsdb-tool', ['create', db, schema], { env: this.env });
    await this.daemon('ovsdb-server', `ovsdb-${name}`, [db, `--remote=punix:${socket}`]);
    if (!existsSync(socket)) throw new Error(`ovsdb-server (${name}) has no socket\n${this.logTail(`ovsdb-${name}`)}`);
  }

  async startNorthd(): Promise<void> {
    await this.daemon('ovn-northd', 'ovn-northd', [`--ovnnb-db=unix:${this.nbSocket}`, `--ovnsb-db=unix:${this.sbSocket}`]);
  }

  /** --detach returns once the daemon is ready; its pid is then in the pidfile. */
  private async daemon(cmd: string, base: string, args: string[]): Promise<void> {
    const pidfile = join(this.dir, `${base}.pid`);
    this.pidfiles.push(pidfile);
    try {
      await run(cmd, [...args, `--pidfile=${pidfile}`, `--log-file=${join(this.dir, `${base}.log`)}`,
        `--unixctl=${join(this.dir, `${base}.ctl`)}`, '--detach', '--no-chdir'], { env: this.env });
    } catch (e) {
      throw new Error(`${cmd} failed to start: ${(e as Error).message}\n${this.logTail(base)}`);
    }
  }

  /** ovn-northd's failed southbound transactions so far (it logs each with its reason). */
  northdErrors(): string[] {
    const log = join(this.dir, 'ovn-northd.log');
    if (!existsSync(log)) return [];
    return readFileSync(log, 'utf8').split('\n').filter((l) => /\|(WARN|ERR)\|/.test(l) && /transaction error|constraint violation/.test(l));
  }

  private logTail(base: string): string {
    const log = join(this.dir, `${base}.log`);
    return existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-20).join('\n') : '(no log)';
  }

  /**
   * Synchronous, so a signal handler can call it: SIGTERM to each daemon whose pidfile names a
   * process started from this directory, wait until it is gone (or a zombie nobody reaps),
   * SIGKILL after 2 s, then remove the directory. Idempotent.
   */
  cleanupSync(): void {
    if (this.cleaned) return;
    this.cleaned = true;
    const pids: number[] = [];
    for (const f of this.pidfiles) {
      let pid: number;
      try { pid = Number(readFileSync(f, 'utf8').trim()); } catch { continue; }
      if (!Number.isInteger(pid) || pid <= 1) continue;
      // Only a process whose command line names our directory: never a recycled pid.
      let cmdline = '';
      try { cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { continue; }
      if (!cmdline.includes(this.dir)) continue;
      try { process.kill(pid, 'SIGTERM'); pids.push(pid); } catch { /* already gone */ }
    }
    const gone = (pid: number): boolean => {
      let stat = '';
      try { stat = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return true; }
      return / Z /.test(stat.slice(stat.lastIndexOf(')')));
    };
    for (let i = 0; i < 200 && !pids.every(gone); i++) sleepSync(10);
    for (const pid of pids) if (!gone(pid)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Instrumentation: NB transactions, and where the engine's run spends its time.

interface Counters { txns: number; ops: number; bytes: number; transactMs: number }

/** Counts every transaction, its operations (comments excluded) and its request size. */
class CountingClient extends OvsdbClient {
  readonly c: Counters = { txns: 0, ops: 0, bytes: 0, transactMs: 0 };
  /** performance.now() when the last transact() call resolved (reply received). */
  lastReplyAt = 0;

  override async transact(ops: Operation[]): Promise<OperationResult[]> {
    const t0 = performance.now();
    this.c.txns++;
    this.c.ops += ops.filter((o) => o.op !== 'comment').length;
    this.c.bytes += JSON.stringify({ id: 0, method: 'transact', params: ['OVN_Northbound', ...ops] }).length;
    try {
      return await super.transact(ops);
    } finally {
      this.lastReplyAt = performance.now();
      this.c.transactMs += this.lastReplyAt - t0;
    }
  }

  snapshot(): Counters { return { ...this.c }; }
  since(s: Counters): Counters {
    return { txns: this.c.txns - s.txns, ops: this.c.ops - s.ops, bytes: this.c.bytes - s.bytes, transactMs: this.c.transactMs - s.transactMs };
  }
}

const PHASES = ['syncPools', 'podPorts', 'computeDesired', 'translateSubnets', 'translateNetworkPolicies', 'translateSecurityGroups', 'planReconcile'] as const;
type Phase = (typeof PHASES)[number];
const phaseMs: Record<Phase, number> = Object.fromEntries(PHASES.map((p) => [p, 0])) as Record<Phase, number>;
const phaseCalls: Record<Phase, number> = Object.fromEntries(PHASES.map((p) => [p, 0])) as Record<Phase, number>;
const phaseSnapshot = (): Record<Phase, number> => ({ ...phaseMs });
const phaseSince = (s: Record<Phase, number>): Record<Phase, number> =>
  Object.fromEntries(PHASES.map((p) => [p, phaseMs[p] - s[p]])) as Record<Phase, number>;

/** Replaces a function export (or method) by a timed wrapper; the engine looks exports up per call. */
function timeExport(target: object, name: string, phase: Phase): void {
  const obj = target as Record<string, unknown>;
  const orig = obj[name];
  if (typeof orig !== 'function') throw new Error(`cannot instrument ${name}: not a function`);
  obj[name] = function timed(this: unknown, ...args: unknown[]): unknown {
    const t0 = performance.now();
    try {
      return (orig as (...a: unknown[]) => unknown).apply(this, args);
    } finally {
      phaseMs[phase] += performance.now() - t0;
      phaseCalls[phase]++;
    }
  };
}

// ---------------------------------------------------------------------------------------------
// The workload.

const nsName = (n: number): string => `ns-${n}`;
const appName = (a: number): string => `app-${((a % N_APPS) + N_APPS) % N_APPS}`;
/** The app the k-th policy of namespace n selects (k = 4 selects two apps). */
const npApp = (n: number, k: number): string => appName(n + 3 * k);
const podIp = (i: number): string => `10.16.${Math.floor(i / 200)}.${(i % 200) + 10}`;

interface PodSpec { name: string; namespace: string; ip: string; mac: string }

function podDocs(): { pods: PodSpec[]; docs: Array<{ kind: Kind; body: Record<string, unknown> }> } {
  const pods: PodSpec[] = [];
  const docs: Array<{ kind: Kind; body: Record<string, unknown> }> = [];
  for (let n = 0; n < N_NAMESPACES; n++) {
    docs.push({ kind: 'Namespace', body: { metadata: { name: nsName(n), labels: { team: `team-${n % 3}`, env: n < N_NAMESPACES / 2 ? 'prod' : 'dev' } } } });
  }
  const perNs = N_PODS / N_NAMESPACES;
  for (let i = 0; i < N_PODS; i++) {
    const n = Math.floor(i / perNs);
    const j = i % perNs;
    const tier = i % TIERS.length;
    const ports: Array<Record<string, unknown>> = [
      { name: 'http', containerPort: 8080 + tier },
      { name: 'metrics', containerPort: 9090 },
    ];
    if (i % 5 === 0) ports.push({ name: 'dns', containerPort: 53, protocol: 'UDP' });
    const annotations: Record<string, string> = {};
    if (i % 4 !== 0) annotations[ANNOTATION.securityGroups] = i % 3 === 0 ? `sg-${i % N_SGS},sg-${(i + 7) % N_SGS}` : `sg-${i % N_SGS}`;
    const name = `pod-${i}`;
    docs.push({
      kind: 'Pod',
      body: {
        metadata: { name, namespace: nsName(n), labels: { app: appName(j + n), tier: TIERS[tier] }, annotations },
        spec: { containers: [{ name: 'main', image: 'bench', ports }] },
      },
    });
    const ip = podIp(i);
    pods.push({ name, namespace: nsName(n), ip, mac: macForIp(ip) });
  }
  return { pods, docs };
}

function networkPolicyDocs(): Array<{ kind: Kind; body: Record<string, unknown> }> {
  const docs: Array<{ kind: Kind; body: Record<string, unknown> }> = [];
  const np = (n: number, k: number, spec: Record<string, unknown>): void => {
    docs.push({ kind: 'NetworkPolicy', body: { metadata: { name: `np-${k}`, namespace: nsName(n) }, spec } });
  };
  const byApp = (n: number, k: number) => ({ matchLabels: { app: npApp(n, k) } });
  for (let n = 0; n < N_NAMESPACES; n++) {
    // Ingress from pods of a tier, a named port and a number.
    np(n, 0, {
      podSelector: byApp(n, 0),
      ingress: [{ from: [{ podSelector: { matchLabels: { tier: 'web' } } }], ports: [{ port: 'http' }, { protocol: 'TCP', port: 443 }] }],
    });
    // Ingress from a namespace+pod selector peer, and from an ipBlock with except and a port range.
    np(n, 1, {
      podSelector: byApp(n, 1),
      ingress: [
        { from: [{ namespaceSelector: { matchLabels: { env: 'prod' } }, podSelector: { matchLabels: { tier: 'api' } } }], ports: [{ protocol: 'TCP', port: 5432 }] },
        { from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.16.0.0/16', '10.99.0.0/16'] } }], ports: [{ protocol: 'TCP', port: 8000, endPort: 8100 }] },
      ],
    });
    // Ingress and egress: from a team's namespaces; to db pods on a port range, DNS anywhere but link-local.
    np(n, 2, {
      podSelector: byApp(n, 2),
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: `team-${n % 3}` } } }] }],
      egress: [
        { to: [{ podSelector: { matchLabels: { tier: 'db' } } }], ports: [{ protocol: 'TCP', port: 5432, endPort: 5440 }] },
        { to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['169.254.0.0/16'] } }], ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] },
      ],
    });
    // Egress only, named ports resolved over every pod, a matchExpressions namespace selector.
    np(n, 3, {
      podSelector: byApp(n, 3),
      policyTypes: ['Egress'],
      egress: [
        {
          to: [{ namespaceSelector: { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] }, podSelector: { matchLabels: { app: npApp(n, 2) } } }],
          ports: [{ protocol: 'UDP', port: 'dns' }, { protocol: 'TCP', port: 'http' }],
        },
        { to: [{ ipBlock: { cidr: '10.16.0.0/16' } }] },
      ],
    });
    // Two apps by matchExpressions; ingress from every other app on a named port, and from anywhere on one port.
    np(n, 4, {
      podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: [npApp(n, 4), appName(n + 13)] }] },
      ingress: [
        { from: [{ podSelector: { matchExpressions: [{ key: 'app', operator: 'NotIn', values: [npApp(n, 0)] }] } }], ports: [{ port: 'metrics' }] },
        { ports: [{ protocol: 'TCP', port: 9100 }] },
      ],
    });
  }
  return docs;
}

function securityGroupDocs(): Array<{ kind: Kind; body: Record<string, unknown> }> {
  const docs: Array<{ kind: Kind; body: Record<string, unknown> }> = [];
  for (let s = 0; s < N_SGS; s++) {
    const ingressRules: Array<Record<string, unknown>> = [
      { ipVersion: 'ipv4', protocol: 'tcp', priority: 10, remoteType: 'address', remoteAddress: '10.0.0.0/8', portRangeMin: 22, portRangeMax: 22, policy: 'allow' },
      { ipVersion: 'ipv4', protocol: 'icmp', priority: 20, remoteType: 'address', remoteAddress: '0.0.0.0/0', policy: 'allow' },
      { ipVersion: 'ipv4', protocol: 'tcp', priority: 30, remoteType: 'securityGroup', remoteSecurityGroup: `sg-${(s + 1) % N_SGS}`, portRangeMin: 8080, portRangeMax: 8090, policy: 'allow' },
      { ipVersion: 'ipv4', protocol: 'udp', priority: 5, remoteType: 'address', remoteAddress: '192.168.0.0/16', portRangeMin: 1, portRangeMax: 65535, policy: 'drop' },
    ];
    if (s % 2 === 1) ingressRules.push({ ipVersion: 'ipv6', protocol: 'tcp', priority: 40, remoteType: 'address', remoteAddress: '::/0', portRangeMin: 443, portRangeMax: 443, policy: 'allow' });
    if (s % 3 === 0) ingressRules.push({ ipVersion: 'ipv4', protocol: 'all', priority: 150, remoteType: 'address', remoteAddress: `10.16.${s}.0/24`, policy: 'drop' });
    const egressRules: Array<Record<string, unknown>> = [
      { ipVersion: 'ipv4', protocol: 'all', priority: 100, remoteType: 'address', remoteAddress: '0.0.0.0/0', policy: 'allow' },
      { ipVersion: 'ipv4', protocol: 'tcp', priority: 1, remoteType: 'address', remoteAddress: '0.0.0.0/0', portRangeMin: 25, portRangeMax: 25, policy: 'drop' },
      { ipVersion: 'ipv4', protocol: 'all', priority: 50, remoteType: 'securityGroup', remoteSecurityGroup: `sg-${(s + 2) % N_SGS}`, policy: 'allow' },
    ];
    if (s % 4 === 0) egressRules.push({ ipVersion: 'ipv4', protocol: 'udp', priority: 60, remoteType: 'address', remoteAddress: '8.8.8.8', portRangeMin: 53, portRangeMax: 53, policy: 'allow' });
    docs.push({ kind: 'SecurityGroup', body: { metadata: { name: `sg-${s}` }, spec: { allowSameGroupTraffic: s % 2 === 0, ingressRules, egressRules } } });
  }
  return docs;
}

/** Validates (and defaults) each document exactly as a manifests directory would, then stores it. */
function loadStore(store: MemoryStore, docs: Array<{ kind: Kind; body: Record<string, unknown> }>): void {
  docs.forEach((d, i) => {
    const apiVersion = SUPPORTED_KINDS[d.kind];
    const raw: RawObject = { source: 'bench-policy', document: i + 1, apiVersion, kind: d.kind, body: { apiVersion, kind: d.kind, ...d.body } };
    const v = validateObject(raw);
    if (!v.ok) throw new Error(`bench input rejected: ${v.rejected.message}`);
    store.apply(v.object);
  });
}

/** The 200 pod LSPs in one transaction, as the ADD path writes each (addresses, port_security, checkpoint). */
async function createPodPorts(nb: OvsdbClient, store: MemoryStore, pods: PodSpec[]): Promise<void> {
  const ops: Operation[] = [];
  const refs: Atom[] = [];
  pods.forEach((p, i) => {
    const sandbox = randomBytes(32).toString('hex');
    const a: Attachment = {
      sandbox, ifName: 'eth0', netns: `/var/run/netns/bench-${i}`, network: 'ovnode', lspName: `${p.name}.${p.namespace}`,
      logicalSwitch: POD_SWITCH.name, hostIfName: hostIfName(sandbox, 'eth0'), mac: p.mac, ips: [p.ip],
      podName: p.name, podNamespace: p.namespace, podUid: randomBytes(16).toString('hex'),
    };
    const pod = store.get('Pod', p.name, p.namespace);
    ops.push({
      op: 'insert', table: NB.lsp, 'uuid-name': `lsp${i}`,
      row: {
        name: a.lspName, addresses: ovsSet([addressLine(a)]),
        port_security: ovsSet(portSecurityLine(store, pod, a.mac, a.ips)), external_ids: ovsMap(toLspExternalIds(a)),
      },
    });
    refs.push(namedUuid(`lsp${i}`));
  });
  ops.push({ op: 'mutate', table: NB.ls, where: [['name', '==', POD_SWITCH.name]], mutations: [['ports', 'insert', ovsSet(refs)]] });
  ops.push({ op: 'comment', comment: 'bench-policy: pod ports' });
  await nb.transact(ops);
}

// ---------------------------------------------------------------------------------------------
// The naive reference: drop every ovnode-owned Port_Group/Address_Set, recreate the desired state.

function aclRow(a: DesiredAcl): Record<string, unknown> {
  // Same row as reconcile.ts writes, so the engine recognises it afterwards (checked below).
  return {
    direction: a.direction, priority: a.priority, match: a.match, action: a.action,
    external_ids: ovsMap({ [OWNER_KEY]: a.owner, [ROW_KEY]: aclKey(a) }),
  };
}

const ours = (r: Row): boolean => asMap(r.external_ids)[OWNER_KEY] !== undefined;

function naiveOps(nb: OvsdbClient, desired: DesiredState): Operation[] {
  const ops: Operation[] = [];
  for (const table of ['Port_Group', 'Address_Set']) {
    for (const r of nb.rows(table).values()) if (ours(r)) ops.push({ op: 'delete', table, where: [['_uuid', '==', uuid(r._uuid)]] });
  }
  for (const as of desired.addressSets) {
    ops.push({ op: 'insert', table: 'Address_Set', row: { name: as.name, addresses: ovsSet(as.addresses), external_ids: ovsMap({ [OWNER_KEY]: as.owner }) } });
  }
  const lspByName = new Map([...nb.rows(NB.lsp).values()].map((r) => [r.name as string, r._uuid]));
  let seq = 0;
  for (const pg of desired.portGroups) {
    const acls = pg.acls.map((a) => {
      const n = `acl${seq++}`;
      ops.push({ op: 'insert', table: 'ACL', 'uuid-name': n, row: aclRow(a) as never });
      return namedUuid(n);
    });
    const ports = pg.ports.map((p) => lspByName.get(p)).filter((u): u is string => u !== undefined).map(uuid);
    ops.push({ op: 'insert', table: 'Port_Group', row: { name: pg.name, ports: ovsSet(ports), acls: ovsSet(acls), external_ids: ovsMap({ [OWNER_KEY]: pg.owner }) } });
  }
  return ops;
}

// ---------------------------------------------------------------------------------------------
// Waiting for the NB and for the engine.

interface LogRecord { level: number; msg: string; ms?: number; ops?: number; err?: string; [k: string]: unknown }

class EngineLog {
  readonly records: LogRecord[] = [];
  private readonly waiters = new Set<{ resolve: (r: LogRecord & { at: number }) => void; reject: (e: Error) => void }>();

  readonly stream = {
    write: (line: string): void => {
      const at = performance.now();
      const r = JSON.parse(line) as LogRecord;
      this.records.push(r);
      if (r.msg === 'policy applied') { for (const w of this.waiters) w.resolve({ ...r, at }); this.waiters.clear(); }
      if (r.level >= 50) { for (const w of this.waiters) w.reject(new Error(`engine: ${r.msg}: ${String(r.err)}`)); this.waiters.clear(); }
    },
  };

  /** The next finished engine run (its 'policy applied' line, and when it was written). */
  nextRun(): Promise<LogRecord & { at: number }> {
    return withTimeout(new Promise((resolve, reject) => { this.waiters.add({ resolve, reject }); }), 'engine run');
  }

  failures(): LogRecord[] { return this.records.filter((r) => r.level >= 50); }
  last(): LogRecord | undefined { return [...this.records].reverse().find((r) => r.msg === 'policy applied'); }
}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_TIMEOUT_MS); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** When a Port_Group named `pg` next shows up (change event) with `lspUuid` among its ports. */
function portGroupShows(nb: OvsdbClient, pg: string, lspUuid: string): Promise<number> {
  return withTimeout(new Promise<number>((resolve) => {
    const onChange = (table: string, _u: string, _old: Row | undefined, row: Row | undefined): void => {
      if (table !== 'Port_Group' || row?.name !== pg || !asArray<string>(row.ports).includes(lspUuid)) return;
      nb.off('change', onChange);
      resolve(performance.now());
    };
    nb.on('change', onChange);
  }), `${pg} to list the port`);
}

function rowCounts(nb: OvsdbClient): Record<'ACL' | 'Port_Group' | 'Address_Set', { ours: number; total: number }> {
  const count = (t: string) => { const rows = [...nb.rows(t).values()]; return { ours: rows.filter(ours).length, total: rows.length }; };
  return { ACL: count('ACL'), Port_Group: count('Port_Group'), Address_Set: count('Address_Set') };
}

// ---------------------------------------------------------------------------------------------

interface Change {
  pod: PodObj;
  next: PodObj;
  lspUuid: string;
  pg: string;
}

/** N_CHANGES label changes: each moves a different pod to the app a policy of its namespace selects. */
function planChanges(store: MemoryStore, nb: OvsdbClient): Change[] {
  const lsps = new Map([...nb.rows(NB.lsp).values()].map((r) => [r.name as string, r._uuid]));
  const used = new Set<string>();
  const out: Change[] = [];
  const perNs = N_PODS / N_NAMESPACES;
  for (let c = 0; c < N_CHANGES; c++) {
    const n = c % N_NAMESPACES;
    const k = (c + Math.floor(c / N_NAMESPACES)) % NP_PER_NAMESPACE;
    const target = npApp(n, k);
    for (let t = 0; t < perNs; t++) {
      const i = n * perNs + ((c * 7 + 3 + t) % perNs);
      const pod = store.get('Pod', `pod-${i}`, nsName(n));
      if (!pod || used.has(pod.metadata.name) || pod.metadata.labels.app === target) continue;
      used.add(pod.metadata.name);
      const next: PodObj = { ...pod, metadata: { ...pod.metadata, labels: { ...pod.metadata.labels, app: target } } };
      const lspUuid = lsps.get(`${pod.metadata.name}.${nsName(n)}`);
      if (!lspUuid) throw new Error(`no LSP for ${pod.metadata.name}`);
      out.push({ pod, next, lspUuid, pg: pgNetworkPolicy(nsName(n), `np-${k}`) });
      break;
    }
  }
  if (out.length !== N_CHANGES) throw new Error('could not plan the label changes');
  return out;
}

interface ChangeSample {
  /** store.apply until the Port_Group change event with the pod's LSP. */
  nbMs: number;
  /** store.apply until the engine's run (or the naive transaction) finished. */
  doneMs: number;
  /** max of both: the change is applied and visible. */
  e2eMs: number;
  /** store.apply itself: the engine plans synchronously inside the store's change listener. */
  applyMs: number;
  txns: number;
  ops: number;
  bytes: number;
  transactMs: number;
  phases: Record<Phase, number>;
  engineMs?: number;
  counts?: Record<string, unknown>;
}

async function main(stack: TempStack): Promise<void> {
  await stack.startDb('nb', NB_SCHEMA, stack.nbSocket);
  if (NORTHD) {
    await stack.startDb('sb', SB_SCHEMA, stack.sbSocket);
    await stack.startNorthd();
  }
  const engineLog = new EngineLog();
  const log = pino({ level: 'info', base: undefined }, engineLog.stream);
  const nb = new CountingClient({ socketPath: stack.nbSocket, database: 'OVN_Northbound' });
  try {
    await nb.connect();
    await nb.monitor(NB_MONITOR);

    // Topology and pods, as the daemon has them before the policy engine starts.
    await ensureTopology(nb, [
      { ...POD_SWITCH, routerPortMac: macForIp(POD_SWITCH.gateways[0]) },
      { ...JOIN_SWITCH, routerPortMac: macForIp(JOIN_SWITCH.gateways[0]) },
    ], { switchName: JOIN_SWITCH.name, lspName: 'node-bench', mac: macForIp(NODE_IP), ips: [NODE_IP] });
    const store = new MemoryStore();
    const { pods, docs } = podDocs();
    loadStore(store, [...docs, ...networkPolicyDocs(), ...securityGroupDocs()]);
    await createPodPorts(nb, store, pods);
    await nb.echo();
    const podLsps = [...nb.rows(NB.lsp).values()].filter((r) => asMap(r.external_ids).pod_name !== undefined).length;
    if (podLsps !== N_PODS) throw new Error(`expected ${N_PODS} pod LSPs in the NB cache, found ${podLsps}`);

    const subnets = new SubnetRegistry(POD_SWITCH.name);
    subnets.add(POD_SWITCH);
    subnets.add(JOIN_SWITCH);
    subnets.rebuildFromNb(nb);
    timeExport(subnets, 'sync', 'syncPools');
    timeExport(podsModule, 'podPorts', 'podPorts');
    timeExport(desiredModule, 'computeDesired', 'computeDesired');
    timeExport(subnetsModule, 'translateSubnets', 'translateSubnets');
    timeExport(npModule, 'translateNetworkPolicies', 'translateNetworkPolicies');
    timeExport(sgModule, 'translateSecurityGroups', 'translateSecurityGroups');
    timeExport(reconcileModule, 'planReconcile', 'planReconcile');
    const engine = new PolicyEngine({
      nb, store, subnets, log, builtin: [POD_SWITCH, JOIN_SWITCH], joinCidrs: JOIN_SWITCH.cidrs, nodeIps: [NODE_IP],
    });
    const assertHealthy = (): void => {
      const f = engineLog.failures();
      if (f.length > 0) throw new Error(`policy engine failed: ${f.map((r) => `${r.msg}: ${String(r.err)}`).join('; ')}`);
    };

    // 1. Cold apply.
    let s = nb.snapshot();
    let ph = phaseSnapshot();
    let t0 = performance.now();
    await engine.reconcileNow('bench cold');
    const coldMs = performance.now() - t0;
    assertHealthy();
    const cold = { ms: coldMs, ...nb.since(s), phases: phaseSince(ph) };
    await nb.echo();
    const rows = rowCounts(nb);

    // 2. Idempotent re-run; from here on the engine follows the store as start() wires it.
    s = nb.snapshot();
    t0 = performance.now();
    await engine.reconcileNow('bench idempotent');
    const idem = { ms: performance.now() - t0, ...nb.since(s), planned: engineLog.last()?.ops ?? NaN };
    assertHealthy();
    // The CNI ADD path: where a new pod goes, computed from the whole desired state per ADD
    // (read-only; the store is not followed yet, so the extra Pod object starts no run).
    const admission = measureAdmission(engine, store, nb);
    let unsubscribe = store.onChange(() => void engine.schedule('objects'));

    // 3. Label changes through the engine.
    const changes = planChanges(store, nb);
    const engineSamples: ChangeSample[] = [];
    for (const ch of changes) {
      const runDone = engineLog.nextRun();
      const shown = portGroupShows(nb, ch.pg, ch.lspUuid);
      s = nb.snapshot();
      ph = phaseSnapshot();
      t0 = performance.now();
      store.apply(ch.next);
      const applyMs = performance.now() - t0;
      const [r, shownAt] = await Promise.all([runDone, shown]);
      const done = r.at - t0;
      const nbMs = shownAt - t0;
      engineSamples.push({
        nbMs, doneMs: done, e2eMs: Math.max(nbMs, done), applyMs, ...nb.since(s), phases: phaseSince(ph),
        engineMs: r.ms ?? NaN, counts: r,
      });
      await settle();
    }
    assertHealthy();
    const idemAfter = await (async () => { s = nb.snapshot(); await engine.reconcileNow('bench check'); return nb.since(s).ops; })();

    // 4. Reference: the same changes, applied naively. The engine is detached from the store; each
    //    pod first goes back to its old labels (untimed, no NB write), then the timed change.
    unsubscribe();
    const naiveSamples: ChangeSample[] = [];
    for (const ch of changes) {
      store.apply(ch.pod);
      const shown = portGroupShows(nb, ch.pg, ch.lspUuid);
      s = nb.snapshot();
      ph = phaseSnapshot();
      t0 = performance.now();
      store.apply(ch.next);
      const applyMs = performance.now() - t0;
      const desired = computeDesired({ store, pods: podPorts(nb, store), builtin: [POD_SWITCH, JOIN_SWITCH], joinCidrs: JOIN_SWITCH.cidrs, nodeIps: [NODE_IP] });
      await nb.transact([...naiveOps(nb, desired), { op: 'comment', comment: 'bench-policy: naive reference' }]);
      const done = performance.now() - t0;
      const nbMs = (await shown) - t0;
      naiveSamples.push({ nbMs, doneMs: done, e2eMs: Math.max(nbMs, done), applyMs, ...nb.since(s), phases: phaseSince(ph) });
      await settle();
    }
    // The naive rows must be what the engine wants: re-attached, it should find nothing to do.
    unsubscribe = store.onChange(() => void engine.schedule('objects'));
    s = nb.snapshot();
    await engine.reconcileNow('bench after reference');
    const afterNaive = nb.since(s).ops;
    unsubscribe();
    assertHealthy();

    await settle();
    report({ cold, rows, idem, idemAfter, engineSamples, naiveSamples, afterNaive, admission, northdErrors: NORTHD ? stack.northdErrors() : undefined });
  } finally {
    await nb.close();
  }
}

/**
 * engine.admissionOps for a pod whose Pod object exists but whose port does not yet, and the
 * reference: what admission did before it was incremental (the whole desired state with the pod
 * added, filtered by the NB). Both must give the same operations.
 */
function measureAdmission(engine: PolicyEngine, store: MemoryStore, nb: OvsdbClient): AdmissionSamples {
  const n = 0;
  const ip = podIp(N_PODS + 1);
  loadStore(store, [{
    kind: 'Pod',
    body: {
      metadata: { name: 'pod-new', namespace: nsName(n), labels: { app: npApp(n, 0), tier: 'web' }, annotations: { [ANNOTATION.securityGroups]: 'sg-1' } },
      spec: { containers: [{ name: 'main', ports: [{ name: 'http', containerPort: 8080 }] }] },
    },
  }]);
  const pod = store.get('Pod', 'pod-new', nsName(n));
  const view = { lspName: `pod-new.${nsName(n)}`, name: 'pod-new', namespace: nsName(n), logicalSwitch: POD_SWITCH.name, mac: macForIp(ip), ips: [ip], labels: pod?.metadata.labels ?? {}, ...(pod ? { pod } : {}) };
  const out: AdmissionSamples = { ms: [], refMs: [], ops: 0, refOps: 0, same: true };
  for (let i = 0; i < N_CHANGES; i++) {
    let t0 = performance.now();
    const ops = engine.admissionOps(view, 'lsp');
    out.ms.push(performance.now() - t0);
    t0 = performance.now();
    const ref = fullAdmissionOps(nb, store, view, 'lsp');
    out.refMs.push(performance.now() - t0);
    out.ops = ops.length;
    out.refOps = ref.length;
    out.same &&= JSON.stringify(ops) === JSON.stringify(ref);
  }
  store.remove('Pod', 'pod-new', nsName(n));
  return out;
}

interface AdmissionSamples { ms: number[]; refMs: number[]; ops: number; refOps: number; same: boolean }

/** The reference admission: every pod and policy, the whole desired state, per ADD. */
function fullAdmissionOps(nb: OvsdbClient, store: MemoryStore, p: Omit<podsModule.PodPort, 'namespaceLabels'>, lspRef: string): Operation[] {
  const pods = [...podPorts(nb, store).filter((x) => x.lspName !== p.lspName), { ...p, namespaceLabels: podsModule.namespaceLabels(store, p.namespace) }];
  const desired = computeDesired({ store, pods, builtin: [POD_SWITCH, JOIN_SWITCH], joinCidrs: JOIN_SWITCH.cidrs, nodeIps: [NODE_IP] });
  const ops: Operation[] = [];
  const pgs = new Set([...nb.rows('Port_Group').values()].map((r) => r.name as string));
  for (const pg of desired.portGroups) {
    if (!pg.ports.includes(p.lspName) || !pgs.has(pg.name)) continue;
    ops.push({ op: 'mutate', table: 'Port_Group', where: [['name', '==', pg.name]], mutations: [['ports', 'insert', ovsSet([namedUuid(lspRef)])]] });
  }
  const sets = new Map([...nb.rows('Address_Set').values()].map((r) => [r.name as string, r]));
  for (const as of desired.addressSets) {
    const row = sets.get(as.name);
    if (!row) continue;
    const have = new Set(asArray<string>(row.addresses));
    const add = p.ips.filter((ip) => as.addresses.includes(ip) && !have.has(ip));
    if (add.length > 0) ops.push({ op: 'mutate', table: 'Address_Set', where: [['name', '==', as.name]], mutations: [['addresses', 'insert', ovsSet(add as Atom[])]] });
  }
  return ops;
}

/** Lets northd and the server catch up between samples, so each one starts from a quiet NB. */
async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 20));
}

// ---------------------------------------------------------------------------------------------

interface ReportInput {
  cold: Counters & { ms: number; phases: Record<Phase, number> };
  rows: ReturnType<typeof rowCounts>;
  idem: Counters & { ms: number; planned: number };
  idemAfter: number;
  engineSamples: ChangeSample[];
  naiveSamples: ChangeSample[];
  afterNaive: number;
  admission: AdmissionSamples;
  /** undefined when northd did not run. */
  northdErrors: string[] | undefined;
}

function report(r: ReportInput): void {
  const f = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a').padStart(8);
  const kb = (b: number): string => `${(b / 1024).toFixed(1)} KiB`;
  const trio = (xs: number[], d = 1): string => `${f(pct(xs, 50), d)} ${f(pct(xs, 90), d)} ${f(Math.max(...xs), d)}`;
  const e = r.engineSamples;
  const n = r.naiveSamples;
  const col = (xs: ChangeSample[], k: 'ops' | 'bytes' | 'txns'): number[] => xs.map((x) => x[k]);
  const phase = (xs: ChangeSample[], p: Phase): number => median(xs.map((x) => x.phases[p]));
  const ph = (p: Phase): string => f(phase(e, p), 2);

  console.log(`\novnode policy engine vs naive rebuild, real OVN NB ovsdb-server${NORTHD ? ' + ovn-northd' : ''}: `
    + `${N_PODS} pods / ${N_NAMESPACES} namespaces, ${N_NAMESPACES * NP_PER_NAMESPACE} NetworkPolicies, ${N_SGS} SecurityGroups, ${e.length} label changes\n`);
  const W1 = 50;
  const W2 = 36;
  console.log(`${'metric'.padEnd(W1)}${'engine (diff)'.padEnd(W2)}reference (naive rebuild)`);
  const c = r.cold;
  const rows: Array<[string, string, string]> = [
    ['cold apply (ms)', f(c.ms), '-'],
    ['  txns / ops / request size', `${c.txns} / ${c.ops} / ${kb(c.bytes)}`, '-'],
    ['  computeDesired / planReconcile / transact (ms)', `${f(c.phases.computeDesired)} ${f(c.phases.planReconcile)} ${f(c.transactMs)}`, '-'],
    ['NB rows: ACL / Port_Group / Address_Set', `${r.rows.ACL.ours} / ${r.rows.Port_Group.ours} / ${r.rows.Address_Set.ours} ovnode-owned`, `${r.rows.ACL.total} / ${r.rows.Port_Group.total} / ${r.rows.Address_Set.total} in the NB`],
    ['idempotent re-run: ms / planned ops / txns', `${f(r.idem.ms)} / ${r.idem.planned} / ${r.idem.txns}`, '-'],
    ['label change reflected in NB p50/p90/max (ms)', trio(e.map((x) => x.e2eMs)), trio(n.map((x) => x.e2eMs))],
    ['  Port_Group change event p50/p90/max', trio(e.map((x) => x.nbMs)), trio(n.map((x) => x.nbMs))],
    ['  engine run / naive txn done p50/p90/max', trio(e.map((x) => x.doneMs)), trio(n.map((x) => x.doneMs))],
    ['  store.apply() blocks the caller p50', f(median(e.map((x) => x.applyMs)), 2), f(median(n.map((x) => x.applyMs)), 2)],
    ['txns per change (max)', `${Math.max(...col(e, 'txns'))}`, `${Math.max(...col(n, 'txns'))}`],
    ['ops per change p50 (min-max)', `${median(col(e, 'ops'))} (${Math.min(...col(e, 'ops'))}-${Math.max(...col(e, 'ops'))})`, `${median(col(n, 'ops'))} (${Math.min(...col(n, 'ops'))}-${Math.max(...col(n, 'ops'))})`],
    ['request bytes per change p50', kb(median(col(e, 'bytes'))), kb(median(col(n, 'bytes')))],
    ['per change p50 (ms): podPorts / computeDesired', `${ph('podPorts')} ${ph('computeDesired')}`, `${f(phase(n, 'podPorts'), 2)} ${f(phase(n, 'computeDesired'), 2)}`],
    ['  inside computeDesired: subnets / NP / SG', `${ph('translateSubnets')} ${ph('translateNetworkPolicies')} ${ph('translateSecurityGroups')}`, '-'],
    ['  syncPools / planReconcile / transact', `${ph('syncPools')} ${ph('planReconcile')} ${f(median(e.map((x) => x.transactMs)), 2)}`, `${'-'.padStart(8)} ${'-'.padStart(8)} ${f(median(n.map((x) => x.transactMs)), 2)}`],
    ['  engine run as logged p50 (ms)', f(median(e.map((x) => x.engineMs ?? NaN)), 2), '-'],
    ['ops to converge: after the changes / after naive', `${r.idemAfter}`, `${r.afterNaive}`],
    ['admissionOps (CNI ADD path) p50/p90/max (ms)', `${trio(r.admission.ms, 2)}  (${r.admission.ops} ops)`, `${trio(r.admission.refMs, 2)}  (${r.admission.refOps} ops, full recompute)`],
  ];
  for (const [a, b, cc] of rows) console.log(`${a.padEnd(W1)}${b.padEnd(W2)}${cc}`);
  if (process.env.BENCH_VERBOSE) {
    const line = (x: ChangeSample): string => `e2e ${x.e2eMs.toFixed(1)} apply ${x.applyMs.toFixed(1)} transact ${x.transactMs.toFixed(1)} ops ${x.ops} `
      + PHASES.map((p) => `${p} ${x.phases[p].toFixed(2)}`).join(' ');
    console.log('\nper change (engine):');
    e.forEach((x, i) => console.log(`  ${String(i).padStart(2)} ${line(x)}`));
    console.log('per change (naive):');
    n.forEach((x, i) => console.log(`  ${String(i).padStart(2)} ${line(x)}`));
  }
  // What the label changes did, summed over the engine's plan counters (reconcile.ts's names).
  const totals: Record<string, number> = {};
  for (const x of e) {
    for (const [k, v] of Object.entries(x.counts ?? {})) {
      if (typeof v === 'number' && !['level', 'time', 'version', 'ms', 'at'].includes(k) && v > 0) totals[k] = (totals[k] ?? 0) + v;
    }
  }
  console.log(`\nplan counters summed over the ${e.length} label changes: ${Object.entries(totals).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  const p90 = pct(e.map((x) => x.e2eMs), 90);
  const savedBytes = median(col(n, 'bytes')) / Math.max(1, median(col(e, 'bytes')));
  const targets: Array<[string, boolean, string]> = [
    [`label change reflected in NB <= ${TARGET_MS} ms (p90)`, p90 <= TARGET_MS, `${p90.toFixed(1)} ms (max ${Math.max(...e.map((x) => x.e2eMs)).toFixed(1)} ms)`],
    ['idempotent re-run plans 0 ops', r.idem.planned === 0 && r.idem.txns === 0 && r.idemAfter === 0, `${r.idem.planned} ops, ${r.idem.txns} txns; ${r.idemAfter} after the changes`],
    ['naive rebuild is what the engine wants', r.afterNaive === 0, `${r.afterNaive} ops to converge after it`],
  ];
  targets.push(['admissionOps gives the full computation\'s ops', r.admission.same, r.admission.same ? 'identical' : 'DIFFERENT']);
  if (r.northdErrors) targets.push(['ovn-northd takes every change to the SB', r.northdErrors.length === 0, `${r.northdErrors.length} failed SB transactions`]);
  console.log('\ntargets:');
  for (const [name, ok, value] of targets) console.log(`  ${ok ? 'MET   ' : 'MISSED'} ${name.padEnd(44)} ${value}`);
  const first = r.northdErrors?.[0];
  if (first) console.log(`\nfirst ovn-northd error: ${first.replace(/^.*?transaction error: /, '').slice(0, 400)}`);
  console.log(`\nthe diff sends ${savedBytes.toFixed(0)}x fewer request bytes per label change than the naive rebuild; `
    + `latency p50 ${median(e.map((x) => x.e2eMs)).toFixed(1)} ms vs ${median(n.map((x) => x.e2eMs)).toFixed(1)} ms`);
}

// ---------------------------------------------------------------------------------------------

const stack = new TempStack();
let exiting = false;
const onSignal = (sig: NodeJS.Signals): void => {
  if (exiting) return;
  exiting = true;
  console.error(`\n${sig}: stopping the servers and removing ${stack.dir}`);
  stack.cleanupSync();
  process.exit(sig === 'SIGINT' ? 130 : 143);
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
// Last resort (an exception escaping everything, process.exit elsewhere): still clean up.
process.on('exit', () => stack.cleanupSync());

main(stack)
  .catch((e: unknown) => { console.error(e); process.exitCode = 1; })
  .finally(() => stack.cleanupSync());
