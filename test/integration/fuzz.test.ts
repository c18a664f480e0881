// Fuzzing the CNI surface of one real node (embedded OVS/OVN, userspace datapath, its own netns)
// through the real CNI executable dist/bin/ovnode and straight on the daemon's unix socket.
//
// Bounded and reproducible: FUZZ_RUNS inputs (default 300, ~25-40 s on the 2-core VM) generated
// from FUZZ_SEED (default a fixed seed; FUZZ_SEED=random draws one; the seed is in the test name
// and the log). Input i depends only on (seed, i) and the version of harness/fuzz-gen.ts (names
// carry the run's random prefix); inputs run in order, one at a time, so a failure names its
// index and FUZZ_SEED=<s> FUZZ_ONLY=<i>[,<j>] runs just those (without the state earlier inputs
// left). FUZZ_VERBOSE=1 logs every input and answer.
//
// Generators (harness/fuzz-gen.ts): netconf mutations (dropped / retyped / duplicated fields,
// cniVersion, name, type, mtu, dns, runtimeConfig ips / mac, args.cni, prevResult, timeoutSeconds,
// daemonSocket (mostly the node's; else bad paths, a FIFO, a silent socket, a fake daemon sending
// malformed replies, the node's OVSDB), logicalSwitch, conflists, huge strings, unicode, deep
// nesting, -0, 1e308, 1E400, invalid UTF-8, truncated and trailing text), CNI_ARGS (known and
// random keys, separators, IgnoreUnknown, MAC= / IP= garbage, very long), the environment
// (CNI_COMMAND valid and not, missing variables, container ids, interface names, CNI_NETNS:
// relative, /proc, /dev/null, a FIFO, a file, a directory, symlinks, the node's own, very long;
// now and then the sandbox of an earlier input), raw bytes on the daemon's socket (random bytes,
// truncated HTTP, valid HTTP with mutated wire requests, wrong methods and paths, oversized /
// conflicting headers, chunked bodies, HTTP/1.0 and /2, pipelining, slowloris, aborted bodies,
// many held connections, bodies over 1 MiB), bursts of concurrent ADD / DEL / CHECK on one
// sandbox, and a small share of valid ADDs (then CHECK with their own result, and DEL for most),
// which really plumb.
//
// Oracles. A shim call: exit 0 with a valid result for ADD (cniVersion of the config, ips whose
// addresses parse, never a subnet's network, gateway or broadcast address), a version document
// for VERSION, empty stdout otherwise; or a non-zero exit with a CNI error JSON {cniVersion, code
// (integer), msg (string)} whose code is not 999; within 30 s. A raw input: the daemon answers
// with an HTTP response or closes within 5 s (a complete POST /cni on an open connection gets a
// wire reply whose error, if any, is a classified one), and a STATUS through the shim succeeds
// afterwards. After every input the daemon is alive and no thread holds the FIFO; a valid ADD
// passes CHECK with its own result and leaves nothing after its DEL; a burst leaves nothing after
// a DEL. At the end: STATUS ok; every sandbox whose ADDs all failed (or that was DELed) left
// nothing; then every sandbox the fuzzer named is DELed (plain DEL) and no OVS Port / Interface,
// LSP, host veth or pod-netns link of them remains, the LSPs and ports are back to the baseline,
// and the fuzz subnet's pool is whole (exactly its 29 addresses are allocated again, the 30th ADD
// gets 101). Error-level lines of the daemon's log are printed per input, not judged.
//
// One node for the file (TestNode, not TestCluster: see DaemonLog); every sandbox named is DELed
// and every namespace, server, FIFO and temporary file removed in afterAll, whatever happened.

import { spawn, execFileSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetnsSet } from './harness/netns';
import { TestNode } from './harness/node';
import {
  brief, DEFAULT_SUBNET, FUZZ_SUBNET, generate, JOIN_SUBNET, holdConnections, sendRaw, SUPPORTED, validKey,
  type BurstInput, type FuzzContext, type FuzzInput, type RawInput, type SandboxKey, type ShimInput, type ValidInput,
} from './harness/fuzz-gen';
import { fifoHasReader, leftovers, linkNames, ovsDb, rawPost, switchLsps } from './harness/hardening-tools';
import { requireArtefacts, SHIM } from './harness/paths';
import { waitUntil } from './harness/pod-tools';
import { attachmentState, type AttachmentCounts } from './harness/shim-calls';

const SEED = ((): number => {
  const s = process.env.FUZZ_SEED;
  if (s === undefined || s === '') return 0x0f022a11;
  if (s === 'random') return randomInt(0, 2 ** 32 - 1);
  const n = Number(s);
  if (!Number.isInteger(n)) throw new Error(`FUZZ_SEED must be an integer or "random", got ${s}`);
  return n >>> 0;
})();
const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const ONLY = process.env.FUZZ_ONLY ? process.env.FUZZ_ONLY.split(',').map((x) => Number(x.trim())) : undefined;
const VERBOSE = process.env.FUZZ_VERBOSE === '1';
const SHIM_TIMEOUT_MS = 30_000;
const RAW_TIMEOUT_MS = 5_000;
const FUZZ_USABLE = 29; // 10.78.0.0/27: .2 .. .30 (network, gateway .1 and broadcast excluded)
const FUZZ_SUBNET_YAML = YAML.stringify({
  apiVersion: 'kubeovn.io/v1',
  kind: 'Subnet',
  metadata: { name: FUZZ_SUBNET.name },
  spec: { cidrBlock: FUZZ_SUBNET.cidr, gateway: FUZZ_SUBNET.gateway },
});

let netnsSet: NetnsSet | undefined;
let node: TestNode | undefined;
let manifestsDir = '';
let daemonLog: DaemonLog | undefined;
let scratch = '';
let ctx: FuzzContext | undefined;
let baseline: { state: AttachmentCounts; lsps: Record<string, string[]> } | undefined;
const servers: net.Server[] = [];
let garbageReply: Buffer = Buffer.alloc(0);
/** Pod netns made here (names); removed in afterAll. */
const podNamespaces: string[] = [];
const failures: string[] = [];
const notes: string[] = [];
const daemonErrors: string[] = [];
let finalDelDone = false;

// ------------------------------------------------------------------------------------------ sandboxes

type KeyState = 'ok' | 'failed' | 'deleted' | 'unknown';
interface Tracked { key: SandboxKey; state: KeyState; everOk: boolean; firstInput: number }
const sandboxes = new Map<string, Tracked>();
const keyOf = (k: SandboxKey): string => `${k.containerId}\u0000${k.ifName}`;

/** What an answered request did to the sandbox it named, as far as the test can tell. */
function record(key: SandboxKey | undefined, command: string | undefined, outcome: 'ok' | 'error' | 'shim-timeout', index: number): void {
  if (command === 'GC' && outcome === 'ok') {
    for (const t of sandboxes.values()) if (t.state === 'ok') t.state = 'unknown';
    return;
  }
  if (!key) return;
  let t = sandboxes.get(keyOf(key));
  if (!t) { t = { key, state: 'failed', everOk: false, firstInput: index }; sandboxes.set(keyOf(key), t); }
  if (command === 'ADD') {
    if (outcome === 'ok') { t.state = 'ok'; t.everOk = true; }
    // A failed ADD of a live sandbox may have replaced parts of it; a shim that gave up
    // (its own deadline) does not know whether the daemon finished.
    else if (t.state === 'ok' || t.state === 'unknown' || outcome === 'shim-timeout') t.state = 'unknown';
    else t.state = 'failed';
  } else if (command === 'DEL' && outcome === 'ok') {
    t.state = 'deleted';
  }
}

// ------------------------------------------------------------------------------------------ helpers

function theNode(): TestNode {
  if (!node) throw new Error('node not started');
  return node;
}

/**
 * The daemon's error-level log lines, as they arrive, without keeping the log's lines: a tap on
 * TestNode's public `logs` string (as harness/log-tap.ts does) that copies only what it keeps.
 * (LogTap is not used here: each LogLine.raw it stores is a slice that pins the whole log as it
 * was when the line arrived, so its memory grows with lines x log size, ~1.5 GB for a 3 MB log.)
 */
class DaemonLog {
  private partial = '';
  private lastLines: string[] = [];
  readonly errors: Array<{ at: number; msg: string; code: string; err: string }> = [];
  seen = 0;

  constructor(n: TestNode) {
    let text = n.logs;
    Object.defineProperty(n, 'logs', {
      configurable: true,
      enumerable: true,
      get: () => text,
      set: (next: string) => {
        const appended = next.startsWith(text) ? next.slice(text.length) : next;
        text = next;
        this.feed(appended);
      },
    });
  }

  private feed(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = Buffer.from(parts.pop() ?? '').toString();
    for (const raw of parts) {
      if (raw.trim() === '') continue;
      this.seen++;
      this.lastLines.push(Buffer.from(raw.slice(0, 600)).toString());
      if (this.lastLines.length > 20) this.lastLines.shift();
      let j: Record<string, unknown> | undefined;
      try { j = JSON.parse(raw) as Record<string, unknown>; } catch { j = undefined; }
      if (Number(j?.level ?? 0) < 50) continue;
      const err = j?.err as { message?: unknown } | string | undefined;
      // Copies (JSON.parse may hand out slices of `raw`, which is a slice of the whole log).
      const copy = (x: string): string => Buffer.from(x).toString();
      this.errors.push({ at: this.seen, msg: copy(String(j?.msg).slice(0, 200)), code: copy(String(j?.code ?? '-').slice(0, 20)),
        err: copy(brief(typeof err === 'object' && err !== null ? String(err.message ?? JSON.stringify(err)) : String(err ?? ''), 160)) });
    }
  }

  tail(): string { return this.lastLines.join('\n'); }
}
function theCtx(): FuzzContext {
  if (!ctx) throw new Error('context not ready');
  return ctx;
}

interface ShimRun { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number; killed: boolean; spawnError?: string }

/** The shim with exactly `env` (plus PATH) and `stdin`; never rejects. */
function runShim(env: Record<string, string>, stdin: string | Buffer, timeoutMs = SHIM_TIMEOUT_MS): Promise<ShimRun> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    let child: ChildProcessWithoutNullStreams;
    try {
      child = spawn(SHIM, [], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (e) {
      resolve({ status: null, signal: null, stdout: '', stderr: '', ms: 0, killed: false, spawnError: String(e) });
      return;
    }
    let stdout = '';
    let stderr = '';
    let killed = false;
    let spawnError: string | undefined;
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    const timer = setTimeout(() => { killed = true; child.kill('SIGKILL'); }, timeoutMs);
    child.on('error', (e) => { spawnError = String(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ status: code, signal, stdout, stderr, ms: Date.now() - t0, killed, ...(spawnError ? { spawnError } : {}) });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin);
  });
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function ipv4(s: string): number | undefined {
  if (net.isIP(s) !== 4) return undefined;
  return s.split('.').reduce((a, o) => a * 256 + Number(o), 0);
}

/** Network / gateway / broadcast of the node's subnets: never a pod's address. */
function reservedAddress(ip: string): string | undefined {
  const v = ipv4(ip);
  if (v === undefined) return undefined;
  for (const s of [FUZZ_SUBNET, DEFAULT_SUBNET, JOIN_SUBNET]) {
    const [base, len] = s.cidr.split('/') as [string, string];
    const size = 2 ** (32 - Number(len));
    const net0 = ipv4(base) as number;
    if (v < net0 || v >= net0 + size) continue;
    if (v === net0) return `the network address of ${s.name}`;
    if (v === net0 + size - 1) return `the broadcast address of ${s.name}`;
    if (ip === s.gateway) return `the gateway of ${s.name}`;
  }
  return undefined;
}

/** The config's cniVersion as the shim reads it (JSON.parse: the last duplicate wins). */
function confVersion(stdin: string | Buffer): string | undefined {
  try {
    const v = JSON.parse(Buffer.isBuffer(stdin) ? stdin.toString('utf8') : stdin) as unknown;
    return isObj(v) && typeof v.cniVersion === 'string' && (SUPPORTED as readonly string[]).includes(v.cniVersion) ? v.cniVersion : undefined;
  } catch { return undefined; }
}

/** Why an ADD result is not a valid CNI result, or undefined. */
function badResult(j: unknown, wantVersion: string | undefined): string | undefined {
  if (!isObj(j)) return 'ADD result is not a JSON object';
  if (typeof j.cniVersion !== 'string') return 'ADD result without a string cniVersion';
  if (wantVersion && j.cniVersion !== wantVersion) return `ADD result in version ${j.cniVersion}, the config asked for ${wantVersion}`;
  if (!Array.isArray(j.ips) || j.ips.length === 0) return 'ADD result without ips';
  const ifaces = Array.isArray(j.interfaces) ? j.interfaces : [];
  for (const [n, ip] of (j.ips as unknown[]).entries()) {
    if (!isObj(ip) || typeof ip.address !== 'string') return `ips[${n}] has no string address`;
    const [addr, prefix, extra] = ip.address.split('/');
    const fam = net.isIP(addr ?? '');
    if (fam === 0 || extra !== undefined || !/^\d{1,3}$/.test(prefix ?? '') || Number(prefix) > (fam === 4 ? 32 : 128)) return `ips[${n}].address ${ip.address} does not parse`;
    const reserved = reservedAddress(addr as string);
    if (reserved) return `ips[${n}].address ${ip.address} is ${reserved}`;
    if (ip.gateway !== undefined && (typeof ip.gateway !== 'string' || net.isIP(ip.gateway) === 0)) return `ips[${n}].gateway ${String(ip.gateway)} does not parse`;
    if (ip.interface !== undefined && (!Number.isInteger(ip.interface) || (ip.interface as number) >= ifaces.length)) return `ips[${n}].interface ${String(ip.interface)} names no interface`;
    if (j.cniVersion.startsWith('0.') && ip.version !== (fam === 4 ? '4' : '6')) return `ips[${n}] of a ${j.cniVersion} result without version "${fam}"`;
  }
  for (const [n, itf] of ifaces.entries()) {
    if (!isObj(itf) || typeof itf.name !== 'string') return `interfaces[${n}] has no name`;
    if (itf.mac !== undefined && !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(String(itf.mac))) return `interfaces[${n}].mac ${String(itf.mac)} is not a canonical MAC`;
  }
  return undefined;
}

/** The oracle for one shim call: why it failed, or undefined. */
function judgeShim(env: Record<string, string>, stdin: string | Buffer, r: ShimRun): string | undefined {
  if (r.killed) return `the shim did not exit within ${SHIM_TIMEOUT_MS} ms`;
  if (r.status === null) return `the shim died (signal ${String(r.signal)})`;
  const cmd = env.CNI_COMMAND;
  const out = r.stdout.trim();
  let j: unknown;
  try { j = out === '' ? undefined : JSON.parse(out); } catch { return `stdout is not JSON: ${brief(out, 200)}`; }
  if (r.status === 0) {
    if (cmd === 'VERSION') return isObj(j) && Array.isArray(j.supportedVersions) && typeof j.cniVersion === 'string' ? undefined : 'VERSION answer is not a version document';
    if (cmd === 'ADD') return badResult(j, confVersion(stdin));
    if (!['DEL', 'CHECK', 'GC', 'STATUS'].includes(cmd ?? '')) return `exit 0 for CNI_COMMAND ${JSON.stringify(cmd)}`;
    return out === '' ? undefined : `exit 0 for ${cmd ?? ''} with output ${brief(out, 200)}`;
  }
  if (!isObj(j) || typeof j.cniVersion !== 'string' || !Number.isInteger(j.code) || typeof j.msg !== 'string') return `exit ${r.status} without a CNI error JSON: ${brief(out, 200)}`;
  if (j.code === 999) return `unclassified error 999: ${brief(out, 400)}`;
  return undefined;
}

function describeInput(i: number, input: FuzzInput): string {
  const head = `[seed ${SEED} input ${i} ${input.gen}] ${input.note}`;
  if (input.kind === 'raw') return `${head}\n    bytes: ${brief(input.bytes, 300)}`;
  if (input.kind === 'burst') return `${head}\n    sandbox ${input.key.containerId}/${input.key.ifName} in ${input.key.netns ?? '-'}; stdin: ${brief(input.calls[0]?.stdin ?? '', 300)}`;
  const env = Object.entries(input.env).filter(([k]) => k !== 'CNI_PATH').map(([k, v]) => `${k}=${brief(v, 80)}`).join(' ');
  const stdin = input.kind === 'valid' ? JSON.stringify(input.conf) : input.stdin;
  return `${head}\n    env: ${env}\n    stdin: ${brief(stdin, 400)}`;
}

function fail(i: number, input: FuzzInput, why: string, extra = ''): void {
  failures.push(`${describeInput(i, input)}\n    -> ${why}${extra ? `\n    ${extra}` : ''}`);
}

function daemonAlive(): boolean {
  try { process.kill(theNode().pid as number, 0); return true; } catch { return false; }
}

async function status(timeoutSeconds = 10): Promise<ShimRun> {
  const c = theCtx();
  return runShim({ CNI_COMMAND: 'STATUS', CNI_PATH: c.shimDir },
    JSON.stringify({ cniVersion: '1.1.0', name: 'fuzznet', type: 'ovnode', daemonSocket: c.socket, timeoutSeconds }), timeoutSeconds * 1000 + 5_000);
}

const plainDelConf = (): string => JSON.stringify({ cniVersion: '1.0.0', name: 'fuzznet', type: 'ovnode', daemonSocket: theCtx().socket });

function plainDel(k: SandboxKey): Promise<ShimRun> {
  return runShim({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: k.containerId, CNI_IFNAME: k.ifName, CNI_PATH: theCtx().shimDir }, plainDelConf(), 60_000);
}

/** The wire request a shim sends for a plain DEL, posted directly; shaped like a shim run (exit 0 = HTTP 200). */
async function wireDel(k: SandboxKey): Promise<ShimRun> {
  const c = theCtx();
  const body = Buffer.from(JSON.stringify({
    protocol: 1, env: { CNI_COMMAND: 'DEL', CNI_CONTAINERID: k.containerId, CNI_IFNAME: k.ifName, CNI_PATH: c.shimDir }, config: plainDelConf(), deadlineMs: 60_000,
  }));
  const r = await rawPost(c.socket, body, 60_000);
  return { status: r.status === 200 ? 0 : 1, signal: null, stdout: r.error ?? r.body, stderr: '', ms: r.ms, killed: false };
}

async function inBatches<T, R>(items: T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) { const k = next++; out[k] = await fn(items[k] as T); }
  }));
  return out;
}

/** LSPs of every switch a fuzzed ADD may have reached. */
function switchesLsps(): Record<string, string[]> {
  return Object.fromEntries([FUZZ_SUBNET, DEFAULT_SUBNET, JOIN_SUBNET].map((s) => [s.name, switchLsps(theNode(), s.name)]));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------------------------------ runners

const stats = { byGen: new Map<string, number>(), byCode: new Map<string, number>(), addsOk: 0, validAdds: 0, spawnErrors: 0, rawReplies: new Map<string, number>() };
const bump = (m: Map<string, number>, k: string): void => { m.set(k, (m.get(k) ?? 0) + 1); };

async function runShimInput(i: number, input: ShimInput): Promise<void> {
  garbageReply = input.garbageReply ?? Buffer.alloc(0);
  const r = await runShim(input.env, input.stdin);
  if (r.spawnError) { stats.spawnErrors++; notes.push(`input ${i}: could not be run (${r.spawnError.slice(0, 120)})`); return; }
  const why = judgeShim(input.env, input.stdin, r);
  let code = 'exit0';
  try { const j = JSON.parse(r.stdout) as Record<string, unknown>; if (r.status !== 0) code = String(j.code); } catch { /* judged above */ }
  bump(stats.byCode, code);
  if (code === 'exit0' && input.env.CNI_COMMAND === 'ADD') stats.addsOk++;
  if (VERBOSE) console.log(`${describeInput(i, input)}\n    => exit ${String(r.status)} in ${r.ms} ms: ${brief(r.stdout.trim(), 200)}`);
  if (why) fail(i, input, why, `shim exit ${String(r.status)} in ${r.ms} ms, stdout ${brief(r.stdout.trim(), 300)} stderr ${brief(r.stderr.trim(), 200)}`);
  // Only requests that reached the daemon's checks name a sandbox; what the shim refused names one harmlessly.
  const key = validKey(input.env.CNI_CONTAINERID, input.env.CNI_IFNAME)
    ? { containerId: input.env.CNI_CONTAINERID as string, ifName: input.env.CNI_IFNAME as string, netns: input.env.CNI_NETNS } : undefined;
  const shimGaveUp = /did not answer within/.test(r.stdout);
  record(key, input.env.CNI_COMMAND, r.status === 0 ? 'ok' : shimGaveUp ? 'shim-timeout' : 'error', i);
}

async function runValid(i: number, input: ValidInput): Promise<void> {
  const stdin = JSON.stringify(input.conf);
  const key = { containerId: input.env.CNI_CONTAINERID as string, ifName: input.env.CNI_IFNAME as string, netns: input.env.CNI_NETNS };
  const a = await runShim(input.env, stdin);
  const why = judgeShim(input.env, stdin, a);
  const show = (r: ShimRun): string => `exit ${String(r.status)} in ${r.ms} ms: ${brief(r.stdout.trim(), 400)}`;
  bump(stats.byCode, a.status === 0 ? 'exit0' : (() => { try { return String((JSON.parse(a.stdout) as Record<string, unknown>).code); } catch { return 'no-json'; } })());
  record(key, 'ADD', a.status === 0 ? 'ok' : 'error', i);
  if (VERBOSE) console.log(`${describeInput(i, input)}\n    => ADD ${show(a)}`);
  if (why) { fail(i, input, `ADD: ${why}`, show(a)); return; }
  if (a.status !== 0) {
    const code = (JSON.parse(a.stdout) as { code: number }).code;
    // The only refusals a valid ADD may meet come from the state earlier inputs left: its static
    // address taken, or the subnet full.
    const msg = String((JSON.parse(a.stdout) as { msg?: string }).msg);
    if (!(code === 101 && (/no free/.test(msg) || (input.staticIp && /already in use/.test(msg))))) fail(i, input, `a valid ADD was refused with ${code}`, show(a));
    return;
  }
  stats.addsOk++;
  stats.validAdds++;
  const result = JSON.parse(a.stdout) as Record<string, unknown>;
  const check = await runShim({ ...input.env, CNI_COMMAND: 'CHECK' }, JSON.stringify({ ...input.conf, prevResult: result }));
  const checkWhy = judgeShim({ ...input.env, CNI_COMMAND: 'CHECK' }, '', check);
  if (checkWhy) fail(i, input, `CHECK: ${checkWhy}`, show(check));
  // CHECK exists from 0.4.0 on; with 0.3.x any well-formed answer will do.
  else if (check.status !== 0 && !String(input.conf.cniVersion).startsWith('0.3.')) fail(i, input, 'CHECK with the ADD\'s own result failed', show(check));
  if (!input.del) return;
  const d = await runShim({ ...input.env, CNI_COMMAND: 'DEL' }, stdin);
  record(key, 'DEL', d.status === 0 ? 'ok' : 'error', i);
  if (d.status !== 0) { fail(i, input, 'DEL of a successful ADD failed', show(d)); return; }
  const nsName = basename(input.env.CNI_NETNS as string);
  const left = (): string[] => [...leftovers(theNode(), [key]), ...linkNames(nsName).filter((l) => l !== 'lo').map((l) => `link ${l} in ${nsName}`)];
  await waitUntil(() => left().length === 0, 5_000, 50);
  const l = left();
  if (l.length > 0) fail(i, input, `left after its DEL: ${l.join(', ')}`);
}

async function runBurst(i: number, input: BurstInput): Promise<void> {
  const rs = await Promise.all(input.calls.map((c) => runShim(c.env, c.stdin)));
  rs.forEach((r, k) => {
    const call = input.calls[k] as BurstInput['calls'][number];
    const why = judgeShim(call.env, call.stdin, r);
    bump(stats.byCode, r.status === 0 ? 'exit0' : (() => { try { return String((JSON.parse(r.stdout) as Record<string, unknown>).code); } catch { return 'no-json'; } })());
    if (r.status === 0 && call.env.CNI_COMMAND === 'ADD') stats.addsOk++;
    if (VERBOSE) console.log(`${describeInput(i, input)}\n    => ${call.env.CNI_COMMAND ?? ''} exit ${String(r.status)} in ${r.ms} ms: ${brief(r.stdout.trim(), 200)}`);
    if (why) fail(i, input, `${call.env.CNI_COMMAND ?? ''} (call ${k}): ${why}`, `exit ${String(r.status)} in ${r.ms} ms: ${brief(r.stdout.trim(), 300)}`);
  });
  // Whatever order the lock gave them, a DEL afterwards leaves nothing.
  const d = await plainDel(input.key);
  if (d.status !== 0) { record(input.key, 'ADD', 'shim-timeout', i); fail(i, input, 'DEL after the burst failed', brief(d.stdout, 300)); return; }
  record(input.key, 'DEL', 'ok', i);
  const nsName = basename(input.key.netns ?? '');
  const own = input.key.netns && podNamespaces.includes(nsName) && !theCtx().pool.includes(input.key.netns);
  const left = (): string[] => [...leftovers(theNode(), [input.key]), ...(own ? linkNames(nsName).filter((l) => l !== 'lo').map((l) => `link ${l} in ${nsName}`) : [])];
  await waitUntil(() => left().length === 0, 5_000, 50);
  const l = left();
  if (l.length > 0) fail(i, input, `left after the burst and a DEL: ${l.join(', ')}`);
}

async function runRaw(i: number, input: RawInput): Promise<void> {
  const c = theCtx();
  if (input.mode === 'slowloris' || input.mode === 'many') {
    const held = await holdConnections(c.socket, input.bytes, input.connections ?? 1, input.mode === 'slowloris' ? 30 : 0);
    if (input.mode === 'many') {
      const s = await status();
      if (s.status !== 0) fail(i, input, `STATUS while ${input.connections ?? 0} connections were held failed`, `exit ${String(s.status)}: ${brief(s.stdout, 300)}`);
    }
    held.close();
    bump(stats.rawReplies, `${input.mode}`);
  } else if (input.mode === 'abort') {
    const s = net.createConnection(c.socket);
    s.on('error', () => undefined);
    await new Promise<void>((resolve) => { s.once('connect', () => resolve()); s.once('close', () => resolve()); });
    s.write(input.bytes);
    await sleep(20);
    s.destroy();
    bump(stats.rawReplies, 'abort');
  } else {
    const o = await sendRaw(c.socket, input.bytes, input.mode, RAW_TIMEOUT_MS);
    bump(stats.rawReplies, o.status !== undefined ? `HTTP ${o.status}` : o.timedOut ? 'timeout' : 'closed');
    if (VERBOSE) console.log(`${describeInput(i, input)}\n    => ${o.status ?? '-'} ${o.closed ? 'closed' : ''} ${o.timedOut ? 'TIMEOUT' : ''} in ${o.ms} ms ${brief(o.body?.toString() ?? '', 200)}`);
    if (o.timedOut) fail(i, input, `no HTTP answer and no close within ${RAW_TIMEOUT_MS} ms`, `got ${brief(o.body ?? Buffer.alloc(0), 200)}`);
    else if (input.cniPost) {
      if (o.status === undefined) {
        // Closing is an allowed answer to a half-closed request (Node's HTTP server aborts a
        // request whose client sent FIN: a slow ADD goes on without anyone to tell); a request
        // on a connection kept open must get its answer.
        if (input.mode === 'keepopen') fail(i, input, `a complete POST /cni on an open connection got no HTTP answer (${o.error ?? 'closed'})`);
        else bump(stats.rawReplies, 'POST /cni half-closed: closed without an answer');
        record(input.key, 'ADD', 'shim-timeout', i);
      } else {
        let body: unknown;
        try { body = JSON.parse(o.body?.toString('utf8') ?? ''); } catch { body = undefined; }
        const err = isObj(body) ? body.error : undefined;
        if (!isObj(body)) fail(i, input, `HTTP ${o.status} with a body that is not a wire reply: ${brief(o.body?.toString() ?? '', 200)}`);
        else if (o.status === 200 && err !== undefined) fail(i, input, 'HTTP 200 with an error');
        else if (o.status !== 200 && (!isObj(err) || !Number.isInteger(err.code) || typeof err.msg !== 'string')) fail(i, input, `HTTP ${o.status} without a CNI error: ${brief(o.body?.toString() ?? '', 200)}`);
        else if (isObj(err) && err.code === 999) fail(i, input, `unclassified error 999: ${brief(o.body?.toString() ?? '', 300)}`);
        else {
          const cmd = (() => { try { return String(((JSON.parse(input.bytes.subarray(input.bytes.indexOf('\r\n\r\n') + 4).toString()) as { env?: Record<string, unknown> }).env ?? {}).CNI_COMMAND); } catch { return undefined; } })();
          if (cmd === 'ADD' && o.status === 200) {
            const res = (body as { result?: unknown }).result;
            const bad = badResult(res, undefined);
            if (bad) fail(i, input, `ADD over the wire: ${bad}`);
          }
          record(input.key, cmd, o.status === 200 ? 'ok' : 'error', i);
          if (isObj(err)) bump(stats.byCode, `wire ${String(err.code)}`);
        }
      }
    }
    // A request that was cut or refused may still have reached the daemon (pipelining, conflicting headers).
    if (input.key && !input.cniPost) record(input.key, 'ADD', 'shim-timeout', i);
  }
  if (input.key && input.cniPost && !sandboxes.has(keyOf(input.key))) record(input.key, undefined, 'error', i);
  const s = await status();
  if (s.status !== 0) fail(i, input, 'STATUS through the shim failed afterwards', `exit ${String(s.status)} in ${s.ms} ms: ${brief(s.stdout, 300)}`);
}

// ------------------------------------------------------------------------------------------ setup

beforeAll(async () => {
  requireArtefacts();
  const nss = new NetnsSet();
  netnsSet = nss;
  // The fuzz subnet is in the manifests directory before the daemon starts: its first
  // reconcile creates it.
  manifestsDir = mkdtempSync(join(tmpdir(), `${nss.prefix}-fuzz-manifests-`));
  writeFileSync(join(manifestsDir, 'subnet-fuzz.yaml'), FUZZ_SUBNET_YAML);
  const n = new TestNode({ netns: nss, name: 'fuzz', extraArgs: ['--manifests', manifestsDir] });
  node = n;
  daemonLog = new DaemonLog(n);
  await n.start();
  scratch = mkdtempSync(join(tmpdir(), `${nss.prefix}-fuzz-`));
  const fifo = join(scratch, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const file = join(scratch, 'file');
  writeFileSync(file, 'not a netns\n');
  const dir = join(scratch, 'dir');
  mkdirSync(dir);
  const pool = Array.from({ length: 4 }, (_, k) => nss.create(`p${k}`));
  podNamespaces.push(...pool);
  const link = (name: string, target: string): string => { const p = join(scratch, name); symlinkSync(target, p); return p; };
  const silentSocket = join(scratch, 'silent.sock');
  const garbageSocket = join(scratch, 'garbage.sock');
  const held: net.Socket[] = [];
  const silent = net.createServer((s) => { held.push(s); s.on('error', () => undefined); s.resume(); });
  silent.on('close', () => { for (const s of held) s.destroy(); });
  const garbage = net.createServer((s) => {
    s.on('error', () => undefined);
    let got = Buffer.alloc(0);
    let answered = false;
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (answered || got.indexOf('\r\n\r\n') < 0) return;
      answered = true;
      s.end(garbageReply);
    });
  });
  for (const [srv, p] of [[silent, silentSocket], [garbage, garbageSocket]] as const) {
    await new Promise<void>((resolve, reject) => { srv.once('error', reject); srv.listen(p, () => resolve()); });
    servers.push(srv);
  }
  let fresh = 0;
  ctx = {
    prefix: nss.prefix,
    socket: n.socket,
    shimDir: dirname(SHIM),
    pool: pool.map((n) => `/var/run/netns/${n}`),
    fresh: (tag) => { const name = nss.create(`${tag}`.slice(0, 7) + (fresh++).toString(36)); podNamespaces.push(name); return `/var/run/netns/${name}`; },
    nodeNetnsPath: `/var/run/netns/${n.ns}`,
    daemonPid: n.pid as number,
    fifo, file, dir,
    linkToPool: link('link-pool', `/var/run/netns/${pool[0] as string}`),
    linkToNode: link('link-node', `/var/run/netns/${n.ns}`),
    dangling: link('dangling', join(scratch, 'nothing-here')),
    loop: (() => { const a = join(scratch, 'loop-a'); symlinkSync(join(scratch, 'loop-b'), a); symlinkSync(a, join(scratch, 'loop-b')); return a; })(),
    silentSocket, garbageSocket,
    ovsdbSocket: ovsDb(n),
  };
  // The subnet is usable once an ADD on it succeeds (the daemon's pools follow its reconcile).
  const probeNs = nss.create('probe');
  const probe = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: `${nss.prefix}-probe`, CNI_NETNS: `/var/run/netns/${probeNs}`, CNI_IFNAME: 'eth0', CNI_PATH: dirname(SHIM) };
  const probeConf = JSON.stringify({ cniVersion: '1.0.0', name: 'fuzznet', type: 'ovnode', daemonSocket: n.socket, logicalSwitch: FUZZ_SUBNET.name });
  let added: ShimRun | undefined;
  await waitUntil(async () => (added = await runShim(probe, probeConf)).status === 0, 20_000, 200);
  if (added?.status !== 0) throw new Error(`switch ${FUZZ_SUBNET.name} never became usable: ${added?.stdout ?? ''}\n${daemonLog.tail()}`);
  const removed = await runShim({ ...probe, CNI_COMMAND: 'DEL' }, probeConf);
  if (removed.status !== 0) throw new Error(`DEL of the probe: ${removed.stdout}`);
  await waitUntil(() => leftovers(n, [{ containerId: probe.CNI_CONTAINERID }]).length === 0, 5_000, 50);
  nss.remove(probeNs);
  baseline = { state: attachmentState(n), lsps: switchesLsps() };
});

afterAll(async () => {
  if (ctx) { try { fifoHasReader(ctx.fifo); } catch { /* gone */ } }
  if (node && ctx && !finalDelDone) {
    const dels = await inBatches([...sandboxes.values()], 6, (t) => (t.everOk || t.state === 'unknown' ? plainDel(t.key) : wireDel(t.key)));
    dels.forEach((r, k) => { if (r.status !== 0) console.error(`cleanup DEL ${brief([...sandboxes.values()][k]?.key.containerId ?? '', 60)}: ${brief(r.stdout, 200)}`); });
  }
  for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
  await node?.destroy().catch((e: unknown) => console.error(`node cleanup: ${String(e)}`));
  netnsSet?.removeAll();
  if (manifestsDir) rmSync(manifestsDir, { recursive: true, force: true });
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

// ------------------------------------------------------------------------------------------ tests

describe(`fuzz: seed ${SEED} (FUZZ_SEED), ${ONLY ? `inputs ${ONLY.join(',')}` : `${RUNS} inputs`} (FUZZ_RUNS)`, () => {
  it('the oracle itself flags 999, non-JSON, malformed errors, hangs and bad results', () => {
    const add = { CNI_COMMAND: 'ADD' };
    const run = (status: number | null, stdout: string, killed = false): ShimRun => ({ status, signal: null, stdout, stderr: '', ms: 1, killed });
    const good = JSON.stringify({ cniVersion: '1.0.0', interfaces: [{ name: 'h' }, { name: 'eth0', mac: '0a:58:0a:10:00:05' }],
      ips: [{ address: '10.16.0.5/16', gateway: '10.16.0.1', interface: 1 }] });
    expect(judgeShim(add, '{}', run(1, '{"cniVersion":"1.0.0","code":999,"msg":"internal error"}'))).toMatch(/999/);
    expect(judgeShim(add, '{}', run(1, 'garbage'))).toMatch(/not JSON/);
    expect(judgeShim(add, '{}', run(1, '{"cniVersion":"1.0.0","code":"7","msg":"x"}'))).toMatch(/CNI error JSON/);
    expect(judgeShim(add, '{}', run(1, ''))).toMatch(/CNI error JSON/);
    expect(judgeShim(add, '{}', run(null, '', true))).toMatch(/did not exit/);
    expect(judgeShim(add, '{"cniVersion":"1.0.0"}', run(0, good.replace('10.16.0.5/16', '10.16.0.1/16')))).toMatch(/gateway/);
    expect(judgeShim(add, '{"cniVersion":"1.0.0"}', run(0, good.replace('10.16.0.5/16', '10.16.0.5/99')))).toMatch(/does not parse/);
    expect(judgeShim(add, '{"cniVersion":"0.4.0"}', run(0, good))).toMatch(/version/);
    expect(judgeShim(add, '{"cniVersion":"1.0.0"}', run(0, '{"cniVersion":"1.0.0","ips":[]}'))).toMatch(/without ips/);
    expect(judgeShim({ CNI_COMMAND: 'DEL' }, '', run(0, '{"x":1}'))).toMatch(/output/);
    expect(judgeShim({ CNI_COMMAND: 'add' }, '', run(0, ''))).toMatch(/exit 0/);
    expect(judgeShim(add, '{"cniVersion":"1.0.0"}', run(0, good))).toBeUndefined();
    expect(judgeShim(add, '{}', run(1, '{"cniVersion":"1.1.0","code":7,"msg":"x"}'))).toBeUndefined();
  });

  it('every answer is a valid result or a classified CNI error, the daemon never hangs or dies', async () => {
    const c = theNode();
    const dlog = daemonLog as DaemonLog;
    const t0 = Date.now();
    const indices = ONLY ?? Array.from({ length: RUNS }, (_, k) => k);
    console.log(`fuzz: seed ${SEED} (reproduce with FUZZ_SEED=${SEED}${ONLY ? ` FUZZ_ONLY=${ONLY.join(',')}` : ` FUZZ_RUNS=${RUNS}`}), run prefix ${theCtx().prefix}`);
    let stoppedAt: number | undefined;
    for (const i of indices) {
      const input = generate(SEED, i, theCtx());
      bump(stats.byGen, input.gen);
      const mark = dlog.errors.length;
      try {
        if (input.kind === 'shim') await runShimInput(i, input);
        else if (input.kind === 'valid') await runValid(i, input);
        else if (input.kind === 'burst') await runBurst(i, input);
        else await runRaw(i, input);
      } catch (e) {
        fail(i, input, `the test itself failed on this input: ${String(e)}`);
      }
      if ((input.kind === 'shim' || input.kind === 'raw') && input.fifo && fifoHasReader(theCtx().fifo)) fail(i, input, 'a thread of the daemon holds (or waits to open) the FIFO');
      // Lines the daemon logs at error level (its own bugs carry a stack there): reported, not judged.
      for (const l of dlog.errors.slice(mark)) daemonErrors.push(`input ${i} (${input.gen}: ${brief(input.note, 120)}): ${l.msg} code ${l.code} ${l.err}`);
      if (!daemonAlive()) {
        fail(i, input, `the daemon (pid ${String(c.pid)}) is gone`, dlog.tail());
        stoppedAt = i;
        break;
      }
    }
    const s = await status();
    const took = Date.now() - t0;
    console.log(`fuzz: ${indices.length} inputs in ${(took / 1000).toFixed(1)} s; generators ${JSON.stringify(Object.fromEntries(stats.byGen))}; `
      + `answers ${JSON.stringify(Object.fromEntries(stats.byCode))}; raw ${JSON.stringify(Object.fromEntries(stats.rawReplies))}; `
      + `${stats.addsOk} ADDs succeeded (${stats.validAdds} from the valid generator); ${sandboxes.size} sandboxes named; `
      + `${stats.spawnErrors} inputs the OS refused to run; daemon log ${(c.logs.length / 1e6).toFixed(1)} MB in ${dlog.seen} lines`
      + `${stoppedAt !== undefined ? `; STOPPED at input ${stoppedAt}` : ''}`);
    if (notes.length > 0) console.log(`fuzz notes:\n  ${notes.join('\n  ')}`);
    if (daemonErrors.length > 0) console.log(`daemon error-level log lines during the fuzz (${daemonErrors.length}):\n  ${daemonErrors.slice(0, 40).join('\n  ')}`);
    if (failures.length > 0) console.log(`fuzz failures (${failures.length}):\n${failures.join('\n')}`);
    expect(s.status, `STATUS after the fuzz: ${brief(s.stdout, 300)}`).toBe(0);
    expect(daemonAlive(), 'daemon alive after the fuzz').toBe(true);
    expect(failures, `fuzz failures (seed ${SEED}); each names its input index: rerun with FUZZ_SEED=${SEED} FUZZ_ONLY=<index>`).toEqual([]);
  }, Math.max(240_000, (ONLY?.length ?? RUNS) * 400));

  it('nothing leaks: failed ADDs left nothing; after a plain DEL of every sandbox named, the node is back to its baseline and the pool is whole', async () => {
    const c = theNode();
    const base = baseline as NonNullable<typeof baseline>;
    expect(daemonAlive(), 'daemon alive').toBe(true);
    // Sandboxes that never had a successful ADD (or were DELed since) must have nothing.
    const live = new Set([...sandboxes.values()].filter((t) => t.state === 'ok' || t.state === 'unknown').map((t) => t.key.containerId));
    const strict = [...sandboxes.values()].filter((t) => (t.state === 'failed' || t.state === 'deleted') && !live.has(t.key.containerId));
    const refs = strict.map((t) => ({ containerId: t.key.containerId, ifName: t.key.ifName }));
    await waitUntil(() => leftovers(c, refs).length === 0, 5_000, 100);
    const early = leftovers(c, refs);
    const who = (l: string): string => {
      const t = strict.find((x) => l.includes(x.key.containerId.slice(0, 60)));
      return t ? ` <- input ${t.firstInput} (${t.state})` : '';
    };
    console.log(`before DEL: ${strict.length} sandboxes checked (their ADDs failed or they were DELed), ${sandboxes.size - strict.length} live or unknown`);

    // Plain DEL of every sandbox named (valid id and interface name): through the shim for those
    // that may hold something, and as the same wire request straight on the socket for those that
    // cannot (it is the daemon's DEL either way; a shim process per sandbox would double the runtime).
    const all = [...sandboxes.values()];
    const t0 = Date.now();
    const dels = await inBatches(all, 6, (t) => (t.everOk || t.state === 'unknown' ? plainDel(t.key) : wireDel(t.key)));
    finalDelDone = true;
    const delFailures = dels.map((r, k) => (r.status === 0 ? undefined : `DEL ${brief(all[k]?.key.containerId ?? '', 60)}/${all[k]?.key.ifName ?? ''}: exit ${String(r.status)} ${brief(r.stdout, 200)}`)).filter(Boolean);
    console.log(`DEL of ${all.length} sandboxes (${all.filter((t) => t.everOk || t.state === 'unknown').length} through the shim) in ${Date.now() - t0} ms`);
    const refsAll = all.map((t) => ({ containerId: t.key.containerId, ifName: t.key.ifName }));
    const podLinks = (): string[] => podNamespaces.flatMap((n) => linkNames(n).filter((l) => l !== 'lo').map((l) => `link ${l} in pod netns ${n}`));
    await waitUntil(() => leftovers(c, refsAll).length === 0 && podLinks().length === 0, 10_000, 100);
    const after = [...leftovers(c, refsAll), ...podLinks()];
    const state = attachmentState(c);
    const lspsNow = switchesLsps();

    // The pool is whole: exactly its usable addresses can be allocated again.
    const fill = Array.from({ length: FUZZ_USABLE + 1 }, (_, k) => ({ id: `${theCtx().prefix}-fill${k}`, ns: theCtx().fresh(`fl${k}`) }));
    const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'fuzznet', type: 'ovnode', daemonSocket: theCtx().socket, logicalSwitch: FUZZ_SUBNET.name });
    const fr = await inBatches(fill, 6, (f) => runShim({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: f.id, CNI_NETNS: f.ns, CNI_IFNAME: 'eth0', CNI_PATH: theCtx().shimDir }, conf, 60_000));
    for (const f of fill) sandboxes.set(keyOf({ containerId: f.id, ifName: 'eth0' }), { key: { containerId: f.id, ifName: 'eth0' }, state: 'ok', everOk: true, firstInput: -1 });
    const filled = fr.filter((r) => r.status === 0);
    const refused = fr.filter((r) => r.status !== 0).map((r) => brief(r.stdout.trim(), 200));
    const fillDels = await inBatches(fill, 6, (f) => plainDel({ containerId: f.id, ifName: 'eth0' }));
    console.log(`pool: ${filled.length} of ${fill.length} ADDs got an address in ${FUZZ_SUBNET.cidr} (want ${FUZZ_USABLE}); refused: ${refused.join(' | ')}`);
    await waitUntil(() => leftovers(c, fill.map((f) => ({ containerId: f.id }))).length === 0, 10_000, 100);
    const s = await status();

    expect(early.map((l) => `${l}${who(l)}`), 'left behind by sandboxes whose ADDs all failed (or that were DELed), before the final DEL').toEqual([]);
    expect(delFailures, 'plain DEL of every sandbox').toEqual([]);
    expect(after, 'left after the DEL of every sandbox').toEqual([]);
    expect(state, 'veths, pod ports and ovn-default LSPs back to the baseline').toEqual(base.state);
    expect(lspsNow, 'LSPs of the fuzz, ovn-default and join switches back to the baseline').toEqual(base.lsps);
    expect(filled.length, `addresses of ${FUZZ_SUBNET.cidr} still allocatable after the fuzz`).toBe(FUZZ_USABLE);
    expect(refused.length === 1 && /"code":101/.test(refused[0] ?? ''), `the ADD beyond the pool gets 101: ${refused.join(' | ')}`).toBe(true);
    expect(fillDels.every((r) => r.status === 0), 'DEL of the fill ADDs').toBe(true);
    expect(leftovers(c, fill.map((f) => ({ containerId: f.id }))), 'left by the fill ADDs').toEqual([]);
    expect(attachmentState(c), 'back to the baseline after the fill').toEqual(base.state);
    expect(s.status, `STATUS at the end: ${brief(s.stdout, 200)}`).toBe(0);
    expect(daemonAlive(), 'daemon alive at the end').toBe(true);
  }, Math.max(180_000, (ONLY?.length ?? RUNS) * 200));
});
