// Regression tests for the hardening issue (netconf nesting, CNI_NETNS that is not a pod netns,
// caller-supplied MACs and IPs, deadlines and rollback, oversized input, untyped echoed fields),
// on one real node (embedded OVS/OVN, userspace datapath, its own netns) driven through the real
// CNI executable dist/bin/ovnode. Every case states what the code before the fixes did (measured
// by running this file against a build of 6fe11cf, the commit before them): each test fails
// there, except the ones marked as guards, which pin behaviour the fixes had to keep (a regular
// file is still refused with 4, a valid MAC is still honoured). What an attempt left behind is
// looked up by the sandbox itself: OVS Port and Interface rows and LSPs (any switch) by name or
// external_ids:sandbox, the host veth in the node netns, and the links of the pod netns
// (harness/hardening-tools.ts).
//
// One node for the whole file. Sandboxes ADDed here are DELed in afterAll even after a failure;
// namespaces, processes (by pid) and the temporary directory are removed there too.

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, type ClusterPod } from './harness/cluster';
import { fifoHasReader, hostIfOf, leftovers, netnsSnapshot, rawPost, switchLsps, type SandboxRef } from './harness/hardening-tools';
import { requireArtefacts } from './harness/paths';
import { capture, lspOf, PodProcs, portSecurityOf, waitUntil } from './harness/pod-tools';
import { attachmentState, cniEnv, netconf, resultIps, runShimAsync, type CniCall, type ShimResult } from './harness/shim-calls';

const NODE = 'hard';
const NS = 'hard';
const MAC_ANNOTATION = 'ovn.kubernetes.io/mac_address';
const BAD_MAC = '0a:58:0a:10:00:0g';
/** The storm's own subnet: 10.77.0.2 .. 10.77.0.22 are its only addresses (21). */
const STORM_SWITCH = 'storm';
const STORM_USABLE = 21;
const STORM_SUBNET = YAML.stringify({
  apiVersion: 'kubeovn.io/v1',
  kind: 'Subnet',
  metadata: { name: STORM_SWITCH },
  spec: { cidrBlock: '10.77.0.0/27', gateway: '10.77.0.1', excludeIps: ['10.77.0.23..10.77.0.30'] },
});

let cluster: TestCluster | undefined;
let scratch = '';
let probeNs = '';
let seq = 0;
const procs = new PodProcs();
/** FIFOs made here: afterAll releases any reader stuck on them (an unfixed daemon). */
const fifos: string[] = [];
/** Sandboxes ADDed outside TestCluster.addPods: DELed in afterAll whatever happened. */
const opened = new Map<string, { call: CniCall; conf: Record<string, unknown> }>();

function theCluster(): TestCluster {
  if (!cluster) throw new Error('cluster not started');
  return cluster;
}

const uid = (tag: string): string => `${theCluster().netns.prefix}-${tag}-${++seq}`;
const nsPath = (ns: string): string => `/var/run/netns/${ns}`;
/** A new empty pod netns (removed with the cluster): one per refused ADD, so a failure stays its own. */
const freshNs = (tag: string): string => theCluster().netns.create(`${tag}${++seq}`);

interface Timed extends ShimResult { ms: number }

/** One shim invocation with a single-plugin netconf (daemonSocket = the node's unless overridden). */
async function shim(call: CniCall, conf: Record<string, unknown> = {}, timeoutMs = 90_000): Promise<Timed> {
  const t0 = Date.now();
  const r = await runShimAsync(cniEnv(call), netconf(theCluster().node.socket, conf), timeoutMs);
  return { ...r, ms: Date.now() - t0 };
}

/** Same, with the netconf text given verbatim. */
async function shimRaw(call: CniCall, stdin: string): Promise<Timed> {
  const t0 = Date.now();
  const r = await runShimAsync(cniEnv(call), stdin);
  return { ...r, ms: Date.now() - t0 };
}

/** An ADD whose sandbox is remembered for the DEL in afterAll. */
function add(call: Omit<CniCall, 'command'>, conf: Record<string, unknown> = {}, timeoutMs?: number): Promise<Timed> {
  const full = { ...call, command: 'ADD' };
  opened.set(`${call.containerId}/${call.ifName ?? 'eth0'}`, { call: full, conf });
  return shim(full, conf, timeoutMs);
}

async function del(call: Omit<CniCall, 'command'>, conf: Record<string, unknown> = {}): Promise<Timed> {
  const r = await shim({ ...call, command: 'DEL' }, conf, 60_000);
  if (r.status === 0) opened.delete(`${call.containerId}/${call.ifName ?? 'eth0'}`);
  return r;
}

const show = (r: ShimResult): string => `exit ${r.status} stdout=${r.stdout.trim().slice(0, 600)} stderr=${r.stderr.trim().slice(0, 300)}`;

/** A CNI error: non-zero exit and an error JSON with one of `codes`, whose msg matches `msg`. */
function expectError(r: ShimResult, codes: number | number[], msg?: RegExp): void {
  const want = Array.isArray(codes) ? codes : [codes];
  expect(r.status, show(r)).not.toBe(0);
  expect(r.json, show(r)).toBeDefined();
  expect(want, `code ${String(r.json?.code)}: ${show(r)}`).toContain(r.json?.code);
  if (msg) expect(String(r.json?.msg ?? ''), show(r)).toMatch(msg);
}

/** The daemon process is alive and a STATUS through the shim is answered "ready". */
async function expectServing(): Promise<void> {
  const c = theCluster();
  const pid = c.node.pid as number;
  expect(() => process.kill(pid, 0), `daemon pid ${pid} is gone:\n${c.log.tail(20)}`).not.toThrow();
  const s = await shim({ command: 'STATUS' }, { cniVersion: '1.1.0' }, 15_000);
  expect(s.status, `STATUS: ${show(s)}`).toBe(0);
  expect(s.stdout).toBe('');
}

function expectNothingLeft(refs: SandboxRef[]): void {
  expect(leftovers(theCluster().node, refs), 'left behind by the refused requests').toEqual([]);
}

/**
 * What is left of `refs` once a DEL's background work is done: DEL answers before the host veth
 * is gone (it removes it in the background), so this polls until nothing is left or `ms` passed.
 */
async function leftAfterDel(refs: SandboxRef[], ms = 5_000): Promise<string[]> {
  await waitUntil(() => leftovers(theCluster().node, refs).length === 0, ms, 50);
  return leftovers(theCluster().node, refs);
}

beforeAll(async () => {
  requireArtefacts();
  cluster = await TestCluster.start({ name: NODE });
  scratch = mkdtempSync(join(tmpdir(), `${cluster.netns.prefix}-hard-`));
  probeNs = cluster.netns.create('probe');
  cluster.writeNamespace(NS);
  cluster.writeManifest('subnet-storm.yaml', STORM_SUBNET);
  await cluster.waitApplied();
});

afterAll(async () => {
  await procs.killAll();
  for (const f of fifos) { try { fifoHasReader(f); } catch { /* gone */ } }
  if (cluster) {
    // A plain DEL (no CNI_ARGS, nothing but the switch): the refused ADDs' own values would be refused again.
    const left = [...opened.values()];
    const dels = await Promise.all(left.map(({ call, conf }) => shim({ command: 'DEL', containerId: call.containerId, ifName: call.ifName },
      conf.logicalSwitch ? { logicalSwitch: conf.logicalSwitch } : {}, 60_000)));
    dels.forEach((r, i) => { if (r.status !== 0) console.error(`cleanup DEL ${left[i]?.call.containerId}: ${show(r)}`); });
  }
  await cluster?.destroy();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

// ------------------------------------------------------------------------------------------------
describe('1. netconf nested 10000 deep', () => {
  // Before: JSON.parse took it, and a recursive walk over the value afterwards overflowed the
  // stack ("RangeError: Maximum call stack size exceeded"): the daemon died, the shim answered 11
  // ("ovnoded sent an unreadable reply"), and every later request of every pod got 11 too.
  it('ADD with "dns":{"a":{"a":...}} 10000 deep -> code 6/7, the daemon still answers STATUS, nothing is left', async () => {
    const c = theCluster();
    const id = uid('deep');
    const before = netnsSnapshot(c.node.ns);
    const base = netconf(c.node.socket);
    const deep = `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`;
    const stdin = `${base.slice(0, -1)},"dns":${deep}}`;
    const r = await shimRaw({ command: 'ADD', containerId: id, netns: nsPath(probeNs) }, stdin);
    console.log(`deep dns ADD: ${show(r)} in ${r.ms} ms`);
    expectError(r, [6, 7]);
    await expectServing();
    // A DEL with a deep array under an unknown key (runtimes retry DEL until it succeeds).
    const d = await shimRaw({ command: 'DEL', containerId: id, netns: nsPath(probeNs) },
      `${base.slice(0, -1)},"x":${'['.repeat(10_000)}${']'.repeat(10_000)}}`);
    expectError(d, [6, 7]);
    await expectServing();
    expectNothingLeft([{ containerId: id, podNs: probeNs }]);
    expect(netnsSnapshot(c.node.ns), 'node netns links/addresses/routes').toEqual(before);
  });
});

// ------------------------------------------------------------------------------------------------
describe('2. CNI_NETNS that is not a network namespace', () => {
  // Before: the daemon opened CNI_NETNS on its JavaScript thread to setns() into it. open() of a
  // FIFO blocks until a writer comes, so the whole daemon froze: this ADD and every other request
  // (the STATUS here) went unanswered until the shims gave up with 11 ("did not answer within").
  it('a FIFO -> code 4 at once, and a STATUS sent meanwhile by another shim is answered', async () => {
    const c = theCluster();
    const fifo = join(scratch, 'netns-fifo');
    execFileSync('mkfifo', [fifo]);
    fifos.push(fifo);
    const id = uid('fifo');
    try {
      // Both in flight together; the shims' own deadlines (10 s, 5 s) only bound a regression.
      const [a, s] = await Promise.all([
        shim({ command: 'ADD', containerId: id, netns: fifo }, { timeoutSeconds: 10 }),
        shim({ command: 'STATUS' }, { cniVersion: '1.1.0', timeoutSeconds: 5 }),
      ]);
      console.log(`FIFO ADD: ${show(a)} in ${a.ms} ms; concurrent STATUS: exit ${s.status} in ${s.ms} ms`);
      expectError(a, 4, /not a network namespace/);
      expect(a.ms, 'FIFO ADD answered promptly').toBeLessThan(5_000);
      expect(s.status, `STATUS during the FIFO ADD: ${show(s)}`).toBe(0);
      // Nobody holds (or waits to open) the FIFO for reading now.
      expect(fifoHasReader(fifo), 'a thread of the daemon is stuck opening the FIFO').toBe(false);
    } finally {
      fifoHasReader(fifo); // releases a stuck reader, if any, so later tests get a live daemon
    }
    expectNothingLeft([{ containerId: id }]);
    await expectServing();
  });

  // Before: these were already refused with 4 (the old check opened the path and setns() said
  // EINVAL). Kept as a guard: the new inspection (O_PATH on a worker thread, nsfs magic, namespace
  // type) must still refuse each of them, /proc/self/ns/mnt being a namespace of another type.
  it('a regular file, a directory and /proc/self/ns/mnt -> code 4 each, nothing left', async () => {
    const file = join(scratch, 'netns-file');
    const dir = join(scratch, 'netns-dir');
    writeFileSync(file, '');
    mkdirSync(dir);
    const cases = [file, dir, '/proc/self/ns/mnt'].map((p) => ({ path: p, id: uid('notns') }));
    const rs = await Promise.all(cases.map((k) => shim({ command: 'ADD', containerId: k.id, netns: k.path }, { timeoutSeconds: 15 })));
    rs.forEach((r, i) => {
      console.log(`CNI_NETNS=${cases[i]?.path}: ${show(r)}`);
      expectError(r, 4, /not a network namespace/);
    });
    expectNothingLeft(cases.map((k) => ({ containerId: k.id })));
    await expectServing();
  });
});

// ------------------------------------------------------------------------------------------------
/** An `ip -o addr` line without the flags that change by themselves (DAD, lifetimes). */
function stripFlags(line: string): string {
  return line.replace(/\s+(tentative|dadfailed|optimistic|deprecated|noprefixroute)\b/g, '');
}

describe('3. CNI_NETNS naming the daemon\'s own network namespace', () => {
  // Before: nothing told the node's netns from a pod's: the ADD succeeded (exit 0) and created the
  // pod end of the veth as eth0 in the NODE's netns, with the pod address and a default route via
  // the subnet gateway (hijacking the node's own routing).
  it('/var/run/netns/<node>, /proc/<daemon pid>/ns/net and /proc/self/ns/net -> code 4, no eth0/address/route in the node netns', async () => {
    const c = theCluster();
    const named = nsPath(c.node.ns);
    const byPid = `/proc/${c.node.pid}/ns/net`;
    // The premise: both paths are the daemon's netns (and /proc/self, resolved by the daemon, too).
    expect(statSync(byPid).ino, `${byPid} is the node netns`).toBe(statSync(named).ino);
    const before = netnsSnapshot(c.node.ns);
    const ids: string[] = [];
    for (const p of [named, byPid, '/proc/self/ns/net']) {
      const id = uid('own');
      ids.push(id);
      const r = await shim({ command: 'ADD', containerId: id, netns: p }, { timeoutSeconds: 15 });
      console.log(`CNI_NETNS=${p}: ${show(r)}`);
      expectError(r, 4, /own network namespace/);
    }
    const after = netnsSnapshot(c.node.ns);
    expect(after.links, 'links of the node netns').not.toContain('eth0');
    // Nothing added by these ADDs. Only additions count, and IPv6 link-local lines are left out:
    // the node's own interfaces finish duplicate address detection on their own schedule.
    const added = (b: string[], a: string[]): string[] => a.filter((l) => !b.includes(l) && !l.includes('fe80:'));
    expect(added(before.links, after.links), 'links added to the node netns').toEqual([]);
    expect(added(before.addrs.map(stripFlags), after.addrs.map(stripFlags)), 'addresses added to the node netns').toEqual([]);
    expect(added(before.routes, after.routes), 'routes added to the node netns').toEqual([]);
    expectNothingLeft(ids.map((id) => ({ containerId: id })));
  });
});

// ------------------------------------------------------------------------------------------------
describe('4. caller-supplied MACs', () => {
  // Before: only runtimeConfig/args.cni "mac" was checked (those two cases are guards: they were
  // 7 already). CNI_ARGS MAC= and the mac_address annotation were used as given: the ADD of
  // 0a:58:0a:10:00:0g SUCCEEDED (exit 0, the malformed MAC echoed in the result and written into
  // the LSP's addresses and port_security, a line OVN refuses as a whole, i.e. no port security).
  // The valid-MAC test is a guard too: validation must not refuse or mangle a good MAC (upper
  // case is canonicalised) and port security must hold the pod to that MAC and its IP.
  const BAD = [BAD_MAC, '03:00:5e:00:00:01'];
  type Path = 'CNI_ARGS' | 'runtimeConfig' | 'args.cni' | 'annotation';
  const PATHS: Path[] = ['CNI_ARGS', 'runtimeConfig', 'args.cni', 'annotation'];

  /** The pieces of an ADD that asks for `mac` by `path`, for the pod `name` of namespace NS. */
  function ask(path: Path, name: string, mac: string): { args: string; conf: Record<string, unknown>; annotations: Record<string, string> } {
    const args = `IgnoreUnknown=1;K8S_POD_NAMESPACE=${NS};K8S_POD_NAME=${name}`;
    switch (path) {
      case 'CNI_ARGS': return { args: `${args};MAC=${mac}`, conf: {}, annotations: {} };
      case 'runtimeConfig': return { args, conf: { capabilities: { mac: true }, runtimeConfig: { mac } }, annotations: {} };
      case 'args.cni': return { args, conf: { args: { cni: { mac } } }, annotations: {} };
      case 'annotation': return { args, conf: {}, annotations: { [MAC_ANNOTATION]: mac } };
    }
  }

  function writePodManifest(name: string, annotations: Record<string, string>): string {
    const file = `pod-${NS}-${name}.yaml`;
    theCluster().writeManifest(file, YAML.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: NS, ...(Object.keys(annotations).length > 0 ? { annotations } : {}) },
      spec: { containers: [{ name: 'main', image: 'pause:3.9' }] },
    }));
    return file;
  }

  it.each(PATHS)('a malformed or multicast MAC by %s -> code 7, nothing left', async (path) => {
    const c = theCluster();
    const cases = BAD.map((mac, i) => ({ mac, name: `bad-${path.replace(/[^a-z]/gi, '').toLowerCase()}-${i}`, id: uid('badmac'), ns: freshNs('bm') }));
    const files = cases.map((k) => writePodManifest(k.name, ask(path, k.name, k.mac).annotations));
    await c.waitApplied();
    try {
      for (const k of cases) {
        const a = ask(path, k.name, k.mac);
        const r = await add({ containerId: k.id, netns: nsPath(k.ns), args: a.args }, a.conf);
        console.log(`MAC ${k.mac} by ${path}: ${show(r)}`);
        expectError(r, 7, new RegExp(k.mac));
      }
      expectNothingLeft(cases.map((k) => ({ containerId: k.id, lsp: `${k.name}.${NS}`, podNs: k.ns })));
    } finally {
      for (const f of files) c.removeManifest(f);
    }
  });

  it('a valid MAC asked for by each path is the pod\'s, and the pod is held to MAC+IP by port security', async () => {
    const c = theCluster();
    const rnd = (): string => Math.floor(Math.random() * 256).toString(16).padStart(2, '0');
    // Locally administered unicast, random per run; CNI_ARGS and the annotation ask in upper case.
    const macs = Object.fromEntries(PATHS.map((p) => [p, `02:${rnd()}:${rnd()}:${rnd()}:${rnd()}:${rnd()}`])) as Record<Path, string>;
    const asked = (p: Path): string => (p === 'CNI_ARGS' || p === 'annotation' ? macs[p].toUpperCase() : macs[p]);
    const specs = [
      ...PATHS.map((p) => ({ path: p as Path | undefined, name: `mac-${p.replace(/[^a-z]/gi, '').toLowerCase()}` })),
      { path: undefined, name: 'mac-target' },
    ];
    const pods: Array<ClusterPod & { path?: Path; conf: Record<string, unknown> }> = specs.map((s, i) => {
      const a = s.path ? ask(s.path, s.name, asked(s.path)) : { args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${NS};K8S_POD_NAME=${s.name}`, conf: {}, annotations: {} };
      const file = writePodManifest(s.name, a.annotations);
      const ns = c.netns.create(`m${i}`);
      return {
        name: s.name, namespace: NS, alias: s.name, ns, netnsPath: nsPath(ns), ip: '', ips: [], containerId: uid('mac'),
        args: a.args, file, result: undefined, path: s.path, conf: a.conf,
      };
    });
    await c.waitApplied();
    const rs = await Promise.all(pods.map((p) => add({ containerId: p.containerId, netns: p.netnsPath, args: p.args }, p.conf)));
    rs.forEach((r, i) => {
      const p = pods[i] as (typeof pods)[number];
      expect(r.status, `ADD ${p.name}: ${show(r)}`).toBe(0);
      p.result = r.json;
      p.ips = resultIps(r.json);
      p.ip = p.ips[0] ?? '';
    });
    const target = pods[pods.length - 1] as ClusterPod;
    const SPOOF = (i: number): string => `10.16.255.${10 + i}`;
    const report = await Promise.all(pods.slice(0, -1).map(async (p, i) => {
      const mac = macs[p.path as Path];
      const ifaces = (p.result?.interfaces ?? []) as Array<{ name: string; mac?: string; sandbox?: string }>;
      const eth0 = (await c.exec(p.ns, ['cat', '/sys/class/net/eth0/address'])).stdout.trim();
      const ps = portSecurityOf(c.node, lspOf(p));
      const ownPing = await c.ping(p, target.ip, 3);
      const ownSeen = await arrivals(c, p, target, p.ip);
      await c.exec(p.ns, ['ip', 'addr', 'add', `${SPOOF(i)}/32`, 'dev', 'eth0']);
      const spoofSeen = await arrivals(c, p, target, SPOOF(i));
      return { p, mac, resultMac: ifaces.find((f) => f.sandbox === p.netnsPath)?.mac, eth0, ps, ownPing, ownSeen, spoofSeen, spoof: SPOOF(i) };
    }));
    for (const x of report) {
      console.log(`${x.p.path} asked ${asked(x.p.path as Path)}: eth0 ${x.eth0}, result ${x.resultMac}, port_security ${JSON.stringify(x.ps)}; `
        + `own-IP pings seen by the target ${x.ownSeen} (ping ${x.ownPing}); from ${x.spoof}: ${x.spoofSeen}`);
    }
    for (const x of report) {
      const what = `pod asking by ${x.p.path}`;
      expect(x.eth0, `${what}: eth0 MAC`).toBe(x.mac);
      expect(x.resultMac, `${what}: MAC in the ADD result`).toBe(x.mac);
      expect(x.ps, `${what}: LSP port_security`).toEqual([`${x.mac} ${x.p.ip}`]);
      expect(x.ownPing, `${what}: pings the target from its own address`).toBe(true);
      expect(x.ownSeen, `${what}: own-address pings seen by the target`).toBeGreaterThan(0);
      expect(x.spoofSeen, `${what}: pings from another address (${x.spoof}) must be dropped`).toBe(0);
    }
  });

  /** Pings (3) from `from` with source `src` to `to`; how many `to` saw (tcpdump on its eth0). */
  async function arrivals(c: TestCluster, from: ClusterPod, to: ClusterPod, src: string): Promise<number> {
    const cap = await capture(procs, to, `icmp[icmptype] == icmp-echo and (src host ${src} or src host ${from.ip})`);
    await c.exec(from.ns, ['ping', '-n', '-c', '3', '-i', '0.2', '-W', '1', '-I', src, to.ip], 5_000);
    // A marker echo from the pod's own address, same path: once seen, any spoofed echo has arrived.
    await c.exec(from.ns, ['ping', '-n', '-c', '1', '-W', '1', '-I', from.ip, to.ip], 5_000);
    const seen = await cap.stop(new RegExp(`IP ${from.ip.replace(/\./g, '\\.')} > `));
    return seen.filter((l) => l.includes(`IP ${src} > `)).length;
  }
});

// ------------------------------------------------------------------------------------------------
describe('5. ADDs that run out of time', () => {
  // Before: the request deadline aborted the OVSDB transactions themselves, so a rollback could
  // not know whether its write had landed: measured on the old code, 9 of 20 such ADDs left their
  // LSP in the NB after their 11 (a port nobody will DEL, holding an address the rollback freed).
  it('20 ADDs with timeoutSeconds 0.02: each fails with 11 or succeeds; once settled, failures left nothing and no address leaked', async () => {
    const c = theCluster();
    const conf = { logicalSwitch: STORM_SWITCH };
    const baseline = attachmentState(c.node);
    // The switch's own router port stays; pod ports are counted on top of it.
    const baseStorm = switchLsps(c.node, STORM_SWITCH);
    const stormPods = (): string[] => switchLsps(c.node, STORM_SWITCH).filter((l) => !baseStorm.includes(l));
    expect(stormPods(), 'storm switch without pod ports at the start').toEqual([]);
    const storm = Array.from({ length: 20 }, (_, i) => ({ id: uid('storm'), ns: c.netns.create(`s${i}`) }));
    const t0 = Date.now();
    const rs = await Promise.all(storm.map((s) => add({ containerId: s.id, netns: nsPath(s.ns) }, { ...conf, timeoutSeconds: 0.02 })));
    const answered = Date.now() - t0;
    const ok = storm.filter((_, i) => rs[i]?.status === 0);
    const failed = storm.filter((_, i) => rs[i]?.status !== 0);
    rs.forEach((r, i) => {
      if (r.status === 0) expect(resultIps(r.json)[0], `storm ${i}: ${show(r)}`).toMatch(/^10\.77\.0\./);
      else expectError(r, 11);
    });
    // Settled: a CHECK takes the sandbox lock, which the daemon holds until the ADD, rollback
    // included, is over; it is read-only, so what it finds is what the ADD left.
    const empty = { cniVersion: '1.0.0', interfaces: [], ips: [], routes: [] };
    const checks = await Promise.all(storm.map((s, i) => shim({ command: 'CHECK', containerId: s.id, netns: nsPath(s.ns) },
      { ...conf, prevResult: rs[i]?.status === 0 ? rs[i]?.json : empty }, 60_000)));
    checks.forEach((r, i) => {
      if (rs[i]?.status === 0) expect(r.status, `CHECK of successful storm ADD ${i}: ${show(r)}`).toBe(0);
      else expectError(r, 104, /no attachment/);
    });
    // The storm must have made the daemon undo real writes, or it proves nothing; and each undo
    // finished before the CHECK of that sandbox was answered (the lock was held until then).
    const rolledBack = failed.filter((s) => c.log.find((l) => l.json?.sandbox === s.id && l.json?.msg === 'rolled back'
      && (l.json?.undone === 'logical switch port' || l.json?.undone === 'ovs port')).length > 0);
    for (const s of failed) {
      const lastUndo = c.log.find((l) => l.json?.sandbox === s.id && l.json?.msg === 'rolled back').at(-1);
      const checked = c.log.find((l) => l.json?.cmd === 'CHECK' && String(l.json?.err ?? '').includes(`container ${s.id} `)).at(0);
      if (lastUndo && checked) expect(lastUndo.seq, `rollback of ${s.id} finished before its CHECK was answered`).toBeLessThan(checked.seq);
    }
    console.log(`storm: ${ok.length} succeeded, ${failed.length} failed with 11 (answers within ${answered} ms), ${rolledBack.length} of them `
      + `rolled back an LSP / OVS port write; settled after ${Date.now() - t0} ms`);
    expect(rolledBack.length, 'failed storm ADDs that rolled back an OVSDB write').toBeGreaterThan(0);
    expect(leftovers(c.node, failed.map((s) => ({ containerId: s.id, podNs: s.ns }))), 'left by the failed ADDs').toEqual([]);
    expect(stormPods(), 'pod LSPs on the storm switch = the successful ADDs')
      .toEqual(ok.map((s) => `${s.id}.eth0`).sort());
    expect(attachmentState(c.node).veths.filter((v) => !baseline.veths.includes(v)).sort(), 'new host veths = the successful ADDs')
      .toEqual(ok.map((s) => hostIfOf(s.id)).sort());

    // No address leaked: exactly the addresses the successful ADDs do not hold are still free.
    const free = STORM_USABLE - ok.length;
    const fill = Array.from({ length: free + 1 }, (_, i) => ({ id: uid('fill'), ns: c.netns.create(`f${i}`) }));
    const fr = await Promise.all(fill.map((f) => add({ containerId: f.id, netns: nsPath(f.ns) }, conf)));
    const filled = fr.filter((r) => r.status === 0);
    const refused = fr.filter((r) => r.status !== 0);
    console.log(`storm subnet: ${free} addresses should be free; ${filled.length} of ${fill.length} ADDs got one; refused: ${refused.map((r) => String(r.json?.code)).join(',')}`);
    expect(filled.length, `ADDs that got an address (${free} should be free): ${refused.map(show).join('\n')}`).toBe(free);
    expect(refused, 'the one ADD beyond the free addresses').toHaveLength(1);
    expectError(refused[0] as ShimResult, 101, /no free/);
    const all = new Set([...filled.flatMap((r) => resultIps(r.json)), ...ok.map((s) => resultIps(rs[storm.indexOf(s)]?.json)[0])]);
    expect(all.size, 'distinct addresses in the storm subnet').toBe(STORM_USABLE);

    // DEL everything: the node is back to where it was.
    const dels = await Promise.all([...storm, ...fill].map((s) => del({ containerId: s.id, netns: nsPath(s.ns) }, conf)));
    dels.forEach((r) => expect(r.status, show(r)).toBe(0));
    expect(await leftAfterDel([...storm, ...fill].map((s) => ({ containerId: s.id, podNs: s.ns }))), 'after DEL of all').toEqual([]);
    expect(stormPods()).toEqual([]);
    expect(attachmentState(c.node)).toEqual(baseline);
    await expectServing();
    for (const s of [...storm, ...fill]) c.netns.remove(s.ns);
  });
});

// ------------------------------------------------------------------------------------------------
describe('6. a netconf over 1 MiB', () => {
  // Before: the shim sent it and the daemon cut the connection at 1 MiB: the shim saw a reset
  // (ECONNRESET) and answered 11 "not reachable", which a runtime retries forever for an input
  // that can never succeed; a raw request got no HTTP answer at all.
  it('-> code 6 from the shim, not 11', async () => {
    const id = uid('big');
    const ns = freshNs('big');
    const r = await add({ containerId: id, netns: nsPath(ns) }, { padding: 'x'.repeat((1 << 20) + 4096) });
    console.log(`1 MiB netconf: ${show(r)} in ${r.ms} ms`);
    expectError(r, 6, /too large/);
    expectNothingLeft([{ containerId: id, podNs: ns }]);
    await expectServing();
  });

  it('the daemon itself answers an oversized request body with an error (code 6), not a reset', async () => {
    const c = theCluster();
    const id = uid('bigraw');
    const ns = freshNs('big');
    const body = Buffer.from(JSON.stringify({
      protocol: 1,
      env: cniEnv({ command: 'ADD', containerId: id, netns: nsPath(ns) }),
      config: netconf(c.node.socket, { padding: 'x'.repeat((1 << 20) + 4096) }),
      deadlineMs: 20_000,
    }));
    const r = await rawPost(c.node.socket, body);
    console.log(`raw POST of ${body.length} bytes: HTTP ${r.status} ${r.body.slice(0, 300)} ${r.error ?? ''} in ${r.ms} ms`);
    expect(r.error, 'transport error instead of an answer').toBeUndefined();
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect((JSON.parse(r.body) as { error?: { code?: number } }).error?.code).toBe(6);
    expectNothingLeft([{ containerId: id, podNs: ns }]);
    await expectServing();
  });
});

// ------------------------------------------------------------------------------------------------
describe('7. untyped or impossible values', () => {
  // Before: static IPs were handed to IPAM unchecked and failed in its address parser as 999
  // "internal error"; a prevResult route null crashed CHECK's decoder ("Cannot read properties of
  // null (reading 'dst')", 999); a numeric daemonSocket was ignored for the default socket and
  // answered 11 "not reachable".
  it.each([
    { name: 'runtimeConfig ips ["garbage"]', args: undefined, conf: { runtimeConfig: { ips: ['garbage'] } }, msg: /garbage/ },
    { name: 'runtimeConfig ips ["999.1.1.1"]', args: undefined, conf: { runtimeConfig: { ips: ['999.1.1.1'] } }, msg: /999\.1\.1\.1/ },
    { name: 'CNI_ARGS IP=garbage', args: 'IgnoreUnknown=1;IP=garbage', conf: {}, msg: /garbage/ },
    { name: 'daemonSocket 42', args: undefined, conf: { daemonSocket: 42 }, msg: /daemonSocket/ },
  ])('ADD with $name -> code 7, nothing left', async ({ args, conf, msg }) => {
    const id = uid('bad7');
    const ns = freshNs('b7');
    const r = await add({ containerId: id, netns: nsPath(ns), ...(args ? { args } : {}) }, conf);
    console.log(`${JSON.stringify(conf)} ${args ?? ''}: ${show(r)}`);
    expectError(r, 7, msg);
    expectNothingLeft([{ containerId: id, podNs: ns }]);
  });

  it('CHECK with prevResult routes [null] -> code 7 (the same CHECK with the real routes passes)', async () => {
    const c = theCluster();
    const ns = c.netns.create('chk');
    const id = uid('chk');
    const a = await add({ containerId: id, netns: nsPath(ns) });
    expect(a.status, show(a)).toBe(0);
    const good = await shim({ command: 'CHECK', containerId: id, netns: nsPath(ns) }, { prevResult: a.json });
    expect(good.status, `CHECK with the ADD's own result: ${show(good)}`).toBe(0);
    const bad = await shim({ command: 'CHECK', containerId: id, netns: nsPath(ns) }, { prevResult: { ...a.json, routes: [null] } });
    console.log(`CHECK routes [null]: ${show(bad)}`);
    expectError(bad, 7, /routes/);
    await expectServing();
    const d = await del({ containerId: id, netns: nsPath(ns) });
    expect(d.status, show(d)).toBe(0);
    expect(await leftAfterDel([{ containerId: id, podNs: ns }]), 'after DEL').toEqual([]);
    c.netns.remove(ns);
  });
});
