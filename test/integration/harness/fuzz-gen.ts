// Input generators for fuzz.test.ts (additive; nothing else uses them): a seeded PRNG, a JSON
// encoder that can write what JSON.stringify cannot (-0, 1E400, duplicate keys, deep nesting),
// and generators of shim invocations (netconf mutations, CNI_ARGS, environment) and of raw bytes
// for the daemon's socket. Every input is derived from (seed, index) alone through its own PRNG,
// so one input can be regenerated without the others (FUZZ_ONLY).
//
// Safety: the only network namespaces an input may name are the ones the test made (pool and
// fresh pod netns, the node's own) and /proc/self, /proc/thread-self and /proc/<daemon pid>, which
// resolve to the daemon's own netns. Never /proc/1/ns/net or the test runner's netns: the daemon
// runs in the node's netns, so to it the host's netns is just "another netns" it would plumb.

import * as net from 'node:net';
import { seededRandom } from '../../support/seeded-random';

// ------------------------------------------------------------------------------------------ PRNG

/** A 32-bit seed for input `index` of a run seeded with `seed` (murmur3 finaliser). */
export function caseSeed(seed: number, index: number): number {
  let h = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** mulberry32. */
export class Rng {
  readonly next: () => number;
  constructor(seed: number) { this.next = seededRandom(seed); }
  int(lo: number, hi: number): number { return lo + Math.floor(this.next() * (hi - lo + 1)); }
  chance(p: number): boolean { return this.next() < p; }
  pick<T>(a: readonly T[]): T { return a[this.int(0, a.length - 1)] as T; }
  weighted<T>(entries: ReadonlyArray<readonly [number, T]>): T {
    const total = entries.reduce((s, [w]) => s + w, 0);
    let x = this.next() * total;
    for (const [w, v] of entries) { if ((x -= w) < 0) return v; }
    return (entries[entries.length - 1] as readonly [number, T])[1];
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(0, 255);
    return b;
  }
  word(n: number, alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789'): string {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[this.int(0, alphabet.length - 1)];
    return s;
  }
}

// ------------------------------------------------------------------------------------------ JSON

/** Written verbatim into the JSON text (numbers JSON.stringify cannot write, nesting, junk). */
export class RawJson { constructor(readonly text: string) {} }
/** An object whose entries may repeat a key (JSON.parse keeps the last one). */
export class DupKeys { constructor(readonly entries: Array<[string, unknown]>) {} }

export function encode(v: unknown): string {
  if (v instanceof RawJson) return v.text;
  if (v instanceof DupKeys) return `{${v.entries.map(([k, x]) => `${JSON.stringify(k)}:${encode(x)}`).join(',')}}`;
  if (Array.isArray(v)) return `[${v.map(encode).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.entries(v as Record<string, unknown>).map(([k, x]) => `${JSON.stringify(k)}:${encode(x)}`).join(',')}}`;
  }
  if (v === undefined) return 'null';
  return JSON.stringify(v);
}

/** Short readable form of a value for reports (long strings and deep nesting shortened). */
export function brief(v: unknown, max = 400): string {
  const s = typeof v === 'string' ? v : Buffer.isBuffer(v) ? `<${v.length} bytes> ${JSON.stringify(v.subarray(0, 64).toString('latin1'))}` : encode(v);
  const squeezed = s.replace(/(.)\1{40,}/gs, (m, c: string) => `${c}{${m.length}x}`).replace(/((\{"a":)|(\[)){20,}/g, (m) => `<nest ${m.length}>`);
  return squeezed.length > max ? `${squeezed.slice(0, max)}...(${s.length} chars)` : squeezed;
}

// ------------------------------------------------------------------------------------------ values

export const SUPPORTED = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
const HUGE = (rng: Rng): string => 'x'.repeat(rng.pick([1024, 65_536, 200_000]));

/** Strings that break naive code; none contains NUL (see `nastyWithNul`). */
const NASTY = [
  '', ' ', '\t', '\n', '\r\n', '0', '-1', '-0', 'NaN', 'Infinity', '1e308', 'null', 'true', 'undefined',
  '__proto__', 'constructor', 'toString', 'hasOwnProperty', '%s%s%n', '${HOME}', '$(id)', '`id`', '../../../etc/passwd',
  '/', '.', '..', 'é', '\u202e', '\u200b', '\ufeff', '😀', 'ｏｖｎｏｄｅ', 'оvnode', '\ud800', '\udfff', 'a'.repeat(256),
  '"', '\\', "'", ';', '=', ',', '{', '[', '<script>', 'ovnode', 'ADD', 'eth0', '10.16.0.1', '0a:58:0a:10:00:05',
];
export const nasty = (rng: Rng): string => rng.pick(NASTY);
const nastyWithNul = (rng: Rng): string => rng.pick([...NASTY, '\u0000', 'a\u0000b']);

/** JSON number literals, as text: -0 and overflowing ones only survive this way. */
const NUM_TOKENS = ['0', '-0', '1', '-1', '0.5', '1e308', '-1e308', '1E400', '-1e400', '5e-324', '1e-400', '9007199254740993',
  '4294967296', '1.0', '576', '575', '9000', '9001', '1500', '65536', '1400.5', '-0.0', '0e0', '123456789012345678901234567890'];
export const numToken = (rng: Rng): RawJson => new RawJson(rng.pick(NUM_TOKENS));

/** `{"a":{"a":...1}}` or `[[[...]]]`, `n` levels. */
export function deep(rng: Rng, n = rng.pick([63, 64, 65, 200, 10_000, 100_000])): RawJson {
  return rng.chance(0.5) ? new RawJson(`${'{"a":'.repeat(n)}1${'}'.repeat(n)}`) : new RawJson(`${'['.repeat(n)}${']'.repeat(n)}`);
}

export function randomJson(rng: Rng, depth = 0): unknown {
  switch (rng.int(0, depth > 2 ? 5 : 9)) {
    case 0: return null;
    case 1: return rng.chance(0.5);
    case 2: return numToken(rng);
    case 3: return nastyWithNul(rng);
    case 4: return rng.word(rng.int(0, 12));
    case 5: return rng.chance(0.1) ? HUGE(rng) : rng.int(-5, 70_000);
    case 6: return Array.from({ length: rng.int(0, 4) }, () => randomJson(rng, depth + 1));
    case 7: case 8: return Object.fromEntries(Array.from({ length: rng.int(0, 4) }, () => [rng.chance(0.5) ? nasty(rng) : rng.word(5), randomJson(rng, depth + 1)]));
    default: return rng.chance(0.3) ? deep(rng) : [randomJson(rng, depth + 1)];
  }
}

/** A random value of a JSON type other than `like`'s. */
function retype(rng: Rng, like: unknown): unknown {
  for (;;) {
    const v = randomJson(rng, 2);
    const t = (x: unknown): string => (x instanceof RawJson ? 'number' : Array.isArray(x) ? 'array' : x === null ? 'null' : typeof x);
    if (t(v) !== t(like)) return v;
  }
}

export function validMac(rng: Rng): string {
  const b = [(rng.int(0, 63) << 2) | 2, ...Array.from({ length: 5 }, () => rng.int(0, 255))];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

function macValue(rng: Rng): unknown {
  return rng.weighted<() => unknown>([
    [3, () => validMac(rng)],
    [1, () => validMac(rng).toUpperCase()],
    [1, () => validMac(rng).replace(/:/g, '-')],
    [6, () => rng.pick(['01:00:5e:00:00:01', 'ff:ff:ff:ff:ff:ff', '00:00:00:00:00:00', '0a:58:0a:10:00:0g', '0a580a100005', '0a:58:0a:10:00',
      '0a:58:0a:10:00:05:06', '0a:58:0a:10:00:05 ', ' 0a:58:0a:10:00:05', '0a:58-0a:10:00:05', '0a:58:0a:10:0:5', '０a:58:0a:10:00:05',
      'garbage', '', '0a:58:0a:10:00:05\n'])],
    [2, () => retype(rng, 'x')],
  ])();
}

export interface SubnetInfo { name: string; cidr: string; gateway: string }
export const FUZZ_SUBNET: SubnetInfo = { name: 'fuzz', cidr: '10.78.0.0/27', gateway: '10.78.0.1' };
export const DEFAULT_SUBNET: SubnetInfo = { name: 'ovn-default', cidr: '10.16.0.0/16', gateway: '10.16.0.1' };
export const JOIN_SUBNET: SubnetInfo = { name: 'join', cidr: '100.64.0.0/16', gateway: '100.64.0.1' };

function ipText(rng: Rng): string {
  return rng.weighted<() => string>([
    [3, () => `10.78.0.${rng.int(2, 30)}`],
    [1, () => `10.78.0.${rng.int(2, 30)}/27`],
    [2, () => `10.16.${rng.int(100, 250)}.${rng.int(2, 254)}`],
    [6, () => rng.pick(['10.78.0.0', '10.78.0.1', '10.78.0.31', '10.78.0.32', '10.16.0.0', '10.16.0.1', '10.16.255.255', '100.64.0.1',
      '100.64.0.2', '127.0.0.1', '0.0.0.0', '255.255.255.255', '224.0.0.1', 'fd00::5', '::', '::1', '::ffff:10.78.0.5', '10.78.0.5/33',
      '10.78.0.5/-1', '10.78.0.5/', '10.78.0.5/ 27', ' 10.78.0.5', '10.78.0.5 ', '10.078.0.5', '10.78.0.5.6', '10.78.5', '0x0a.78.0.5',
      '999.1.1.1', 'garbage', '', 'fe80::1%eth0', '10.78.0.5/027', '10.78.0.5/32/32'])],
  ])();
}

function ipsValue(rng: Rng): unknown {
  return rng.weighted<() => unknown>([
    [4, () => [ipText(rng)]],
    [2, () => [ipText(rng), ipText(rng)]],
    [1, () => []],
    [1, () => ipText(rng)],
    [2, () => [retype(rng, 'x')]],
    [1, () => retype(rng, [])],
  ])();
}

function validDns(rng: Rng): Record<string, unknown> {
  const d: Record<string, unknown> = {};
  if (rng.chance(0.8)) d.nameservers = Array.from({ length: rng.int(0, 3) }, () => `10.96.0.${rng.int(1, 254)}`);
  if (rng.chance(0.4)) d.domain = 'cluster.local';
  if (rng.chance(0.4)) d.search = ['svc.cluster.local', 'cluster.local'];
  if (rng.chance(0.3)) d.options = ['ndots:5'];
  return d;
}

function dnsValue(rng: Rng): unknown {
  return rng.weighted<() => unknown>([
    [2, () => validDns(rng)],
    [8, () => rng.pick<unknown>([null, 'x', [], {}, { nameservers: '1.1.1.1' }, { nameservers: [1] }, { nameservers: ['1.1.1.1', null] },
      { domain: 5 }, { search: [{}] }, { options: 'x' }, { extra: 1 }, new RawJson('{"__proto__":{"nameservers":["1.1.1.1"]}}'),
      { nameservers: ['x'.repeat(100_000)] }, new DupKeys([['domain', 'a'], ['domain', 7]])])],
    [2, () => ({ nameservers: [deep(rng)] })],
    [1, () => deep(rng)],
  ])();
}

function prevResultValue(rng: Rng): unknown {
  const ok = { cniVersion: rng.pick(SUPPORTED), interfaces: [{ name: 'eth0', mac: validMac(rng), sandbox: '/x' }],
    ips: [{ address: '10.78.0.9/27', gateway: '10.78.0.1', interface: 0 }], routes: [{ dst: '0.0.0.0/0', gw: '10.78.0.1' }], dns: {} };
  return rng.pick<unknown>([
    ok, { ...ok, ips: 'x' }, { ...ok, routes: [null] }, { ...ok, interfaces: [{ name: 5 }] }, { ...ok, ips: [{ address: 5 }] },
    { ...ok, ips: [{ address: '10.0.0.1/24', interface: -1 }] }, { ...ok, ips: [{ address: '10.0.0.1/24', interface: 1.5 }] },
    { ...ok, dns: { x: 1 } }, { ...ok, dns: null }, { ...ok, cniVersion: 7 }, { ...ok, interfaces: [null] }, { ...ok, routes: [{ dst: null }] },
    [], 'x', 5, null, {}, { ips: [] }, { ips: [{ address: 'garbage' }] }, { ips: [{}] }, deep(rng), { ...ok, ips: [{ address: deep(rng) }] },
  ]);
}

function timeoutValue(rng: Rng): unknown {
  return rng.pick<unknown>([0, new RawJson('-0'), -1, new RawJson('1e308'), new RawJson('1E400'), 3600, 3600.0001, new RawJson('5e-324'),
    0.001, 0.02, 0.2, '10', null, [], {}, true, 1e-9, 2.5, 86_400]);
}

// ------------------------------------------------------------------------------------------ context

/** What the generators may name: everything here belongs to the test. */
export interface FuzzContext {
  prefix: string;
  socket: string;
  shimDir: string;
  /** Shared pod netns paths (attachments accumulate there; collisions are part of the game). */
  pool: string[];
  /** Creates a new empty pod netns and returns its path (called while generating). */
  fresh: (tag: string) => string;
  nodeNetnsPath: string;
  daemonPid: number;
  fifo: string;
  file: string;
  dir: string;
  linkToPool: string;
  linkToNode: string;
  dangling: string;
  loop: string;
  /** A unix socket that accepts and never answers. */
  silentSocket: string;
  /** A unix socket that answers with `garbageReply` (set per input by the runner). */
  garbageSocket: string;
  /** Another daemon's socket, the node's OVSDB (answers HTTP with JSON-RPC garbage or closes). */
  ovsdbSocket: string;
}

/** A sandbox an input may leave something for: what the final DEL of the test covers. */
export interface SandboxKey { containerId: string; ifName: string; netns?: string }

const CONTAINER_ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** The daemon would act on this sandbox (its own checks in daemon/server/request.ts). */
export function validKey(containerId: unknown, ifName: unknown): boolean {
  return typeof containerId === 'string' && CONTAINER_ID_RE.test(containerId)
    && typeof ifName === 'string' && ifName.length > 0 && ifName.length <= 15 && ifName !== '.' && ifName !== '..' && !/[/:\s]/.test(ifName);
}

export interface ShimInput {
  kind: 'shim';
  gen: string;
  env: Record<string, string>;
  stdin: string | Buffer;
  /** Human-readable summary of what was mutated. */
  note: string;
  /** Reply the garbage server sends, when the netconf points the shim at it. */
  garbageReply?: Buffer;
  /** Paths that must not be held open by the daemon afterwards (FIFOs). */
  fifo?: boolean;
}

export interface ValidInput {
  kind: 'valid';
  gen: 'valid';
  env: Record<string, string>;
  conf: Record<string, unknown>;
  staticIp: boolean;
  del: boolean;
  note: string;
}

export type RawMode = 'halfclose' | 'keepopen' | 'slowloris' | 'abort' | 'many';
export interface RawInput {
  kind: 'raw';
  gen: string;
  note: string;
  mode: RawMode;
  bytes: Buffer;
  /** Connections opened at once (mode many). */
  connections?: number;
  /** The request is POST /cni with a complete body: the reply must be a wire reply. */
  cniPost: boolean;
  /** The sandbox the wire request names, when the daemon may act on it. */
  key?: SandboxKey;
  fifo?: boolean;
}

/** Shim calls on one sandbox started together (the daemon's per-sandbox lock serialises them). */
export interface BurstInput {
  kind: 'burst';
  gen: 'burst';
  calls: Array<{ env: Record<string, string>; stdin: string }>;
  key: SandboxKey;
  note: string;
}

export type FuzzInput = ShimInput | ValidInput | RawInput | BurstInput;

// ------------------------------------------------------------------------------------------ env

const COMMANDS = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'];

function commandFor(rng: Rng): string {
  return rng.weighted([[70, 'ADD'], [10, 'CHECK'], [10, 'DEL'], [3, 'GC'], [4, 'STATUS'], [3, 'VERSION']] as const);
}

/** A pod netns: fresh (an ADD that passes validation really plumbs) or one of the shared pool. */
function podNetns(rng: Rng, ctx: FuzzContext, i: number, freshP = 0.35): string {
  return rng.chance(freshP) ? ctx.fresh(`f${i}`) : rng.pick(ctx.pool);
}

function baseEnv(rng: Rng, ctx: FuzzContext, i: number, tag: string, command = commandFor(rng)): Record<string, string> {
  const env: Record<string, string> = {
    CNI_COMMAND: command,
    // Now and then the sandbox of an earlier input (live or not): a second ADD, a CHECK or a DEL of it.
    CNI_CONTAINERID: i > 0 && rng.chance(0.06) ? `${ctx.prefix}-${rng.pick(['n', 'a', 'v'])}${rng.int(Math.max(0, i - 30), i - 1)}` : `${ctx.prefix}-${tag}${i}`,
    CNI_IFNAME: rng.chance(0.85) ? 'eth0' : `n${rng.word(rng.int(1, 6))}`,
    CNI_PATH: ctx.shimDir,
  };
  if (command === 'ADD' || command === 'CHECK' || rng.chance(0.5)) env.CNI_NETNS = podNetns(rng, ctx, i);
  return env;
}

function netnsGarbage(rng: Rng, ctx: FuzzContext): { path: string; fifo?: boolean } {
  const p = rng.pick([
    '', 'relative/netns', 'netns', './x', '../../proc/self/ns/net', '/proc/self/ns/net', '/proc/thread-self/ns/net',
    `/proc/${ctx.daemonPid}/ns/net`, `/proc/${ctx.daemonPid}/ns/pid`, '/proc/self/ns/mnt', '/proc/self/ns/uts', '/proc/1/ns/mnt',
    '/proc/self/fd/0', '/proc/self', '/proc', '/dev/null', '/dev/zero', '/dev/urandom', '/dev/fd/0', 'FIFO', 'FILE', 'DIR', 'LINKPOOL',
    'LINKNODE', 'DANGLING', 'LOOP', 'NODE', '/var/run/netns/', '/var/run/netns', '/nonexistent/netns', `/${'a'.repeat(5000)}`,
    `/${'a/'.repeat(2100)}`, '/tmp/\u00e9', '/tmp/a b', 'POOLDOT', 'POOLSLASH',
  ]);
  switch (p) {
    case 'FIFO': return { path: ctx.fifo, fifo: true };
    case 'FILE': return { path: ctx.file };
    case 'DIR': return { path: ctx.dir };
    case 'LINKPOOL': return { path: ctx.linkToPool };
    case 'LINKNODE': return { path: ctx.linkToNode };
    case 'DANGLING': return { path: ctx.dangling };
    case 'LOOP': return { path: ctx.loop };
    case 'NODE': return { path: ctx.nodeNetnsPath };
    case 'POOLDOT': { const x = rng.pick(ctx.pool); return { path: `${x}/../${x.split('/').pop() as string}` }; }
    case 'POOLSLASH': return { path: `/${rng.pick(ctx.pool)}/` };
    default: return { path: p };
  }
}

const IFNAMES = ['', 'x'.repeat(15), 'x'.repeat(16), '.', '..', 'eth0/', 'eth0:1', 'eth 0', 'eth\t0', 'ééééééééé', 'ééééééé', 'lo', 'eth0',
  'net1', '-', '0', 'eth%d', '*', 'bond0', 'br-int', 'ovn0', 'ℯth0', '😀', 'a\nb', 'default', 'all'];
const CONTAINER_IDS = (ctx: FuzzContext, i: number): string[] => ['', '-abc', '.', '_x', 'a/b', 'a b', 'a\nb', 'ü', '../../x', 'x;y', 'x=y',
  `${ctx.prefix}-e${i}..b`, `${ctx.prefix}-e${i}.`, `${ctx.prefix}e${i}${'a'.repeat(5000)}`, `${ctx.prefix}e${i}${'b'.repeat(100_000)}`, ' x', 'x ',
  `${ctx.prefix}-e${i}\u00e9`, `${ctx.prefix}-e${i}`];

// ------------------------------------------------------------------------------------------ netconf

function baseConf(rng: Rng, ctx: FuzzContext): Record<string, unknown> {
  const conf: Record<string, unknown> = { cniVersion: rng.pick(SUPPORTED), name: 'fuzznet', type: 'ovnode', daemonSocket: ctx.socket };
  if (rng.chance(0.4)) conf.logicalSwitch = FUZZ_SUBNET.name;
  if (rng.chance(0.3)) conf.capabilities = { ips: true, mac: true };
  if (rng.chance(0.3)) conf.mtu = rng.pick([1400, 1500, 576, 9000, 1280]);
  if (rng.chance(0.3)) conf.dns = validDns(rng);
  if (rng.chance(0.3)) conf.timeoutSeconds = rng.pick([10, 30, 60]);
  return conf;
}

const GARBAGE_REPLIES: Array<string | ((rng: Rng) => Buffer)> = [
  '', 'garbage', 'HTTP/1.1 200 OK\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}', 'HTTP/1.1 200 OK\r\n\r\nnot json',
  'HTTP/1.1 200 OK\r\n\r\n[]', 'HTTP/1.1 200 OK\r\n\r\nnull', 'HTTP/1.1 500 Internal\r\n\r\n{}', 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}', 'HTTP/1.1 200 OK\r\n\r\n{"result":"x"}', 'HTTP/1.1 200 OK\r\n\r\n{"result":{"cniVersion":1}}',
  'HTTP/1.1 200 OK\r\n\r\n{"result":[]}', 'HTTP/1.1 400 Bad\r\n\r\n{"error":{"code":7,"msg":"from a fake daemon"}}', 'HTTP/9.9 200 OK\r\n\r\n{}',
  'HTTP/1.1 2000 OK\r\n\r\n{}', 'SSH-2.0-OpenSSH\r\n', (rng) => rng.bytes(rng.int(1, 2000)),
  (rng) => Buffer.from(`HTTP/1.1 200 OK\r\n\r\n${'{"a":'.repeat(rng.pick([100, 10_000]))}1${'}'.repeat(1)}`),
  (rng) => Buffer.from(`HTTP/1.1 200 OK\r\n\r\n${'['.repeat(rng.pick([100, 100_000]))}${']'.repeat(100_000)}`),
  (rng) => Buffer.from(`HTTP/1.1 200 OK\r\n\r\n{"x":"${'y'.repeat(rng.pick([10_000, 3_000_000]))}"}`),
];

/** One field-level mutation of a netconf object; returns what it did. */
function mutateConf(rng: Rng, ctx: FuzzContext, conf: Record<string, unknown>, side: { garbageReply?: Buffer; fifo?: boolean }): string {
  const keys = Object.keys(conf);
  const field = rng.weighted<string>([
    [4, 'drop'], [4, 'retype'], [5, 'cniVersion'], [3, 'name'], [3, 'type'], [5, 'mtu'], [5, 'dns'], [6, 'runtimeConfig'], [4, 'args'],
    [4, 'prevResult'], [4, 'timeoutSeconds'], [5, 'daemonSocket'], [4, 'logicalSwitch'], [2, 'capabilities'], [2, 'valid-attachments'],
    [2, 'plugins'], [3, 'extra'],
  ]);
  const set = (k: string, v: unknown): string => { conf[k] = v; return `${k}=${brief(v, 120)}`; };
  switch (field) {
    case 'drop': { const k = rng.pick(keys); delete conf[k]; return `drop ${k}`; }
    case 'retype': { const k = rng.pick(keys); return set(k, retype(rng, conf[k])); }
    case 'cniVersion': return set('cniVersion', rng.pick<unknown>(['', '1.0', '1.0.0 ', ' 1.0.0', '01.0.0', '1.0.0\n', '2.0.0', '0.1.0', '0.2.0',
      '0.3.2', 'v1.0.0', '1.0.0-rc1', '１.０.０', 'x'.repeat(10_000), 1, 1.0, 100, null, true, ['1.0.0'], { v: '1.0.0' }, new RawJson('-0')]));
    case 'name': return set('name', rng.pick<unknown>(['', ' ', 'x'.repeat(100_000), '\u0000', 'é😀', 42, null, [], {}, '../x', 'fuzz net', 'a\nb']));
    case 'type': return set('type', rng.pick<unknown>(['', 'bridge', 'OVNODE', 'ovnode ', 42, null, ['ovnode'], 'ovnode\u0000']));
    case 'mtu': return set('mtu', rng.chance(0.6) ? numToken(rng) : rng.pick<unknown>(['1500', 'NaN', null, true, [], {}, 1400.5, 0, -1, 68, 65_535]));
    case 'dns': return set('dns', dnsValue(rng));
    case 'runtimeConfig': {
      if (rng.chance(0.15)) return set('runtimeConfig', retype(rng, {}));
      const rc: Record<string, unknown> = {};
      if (rng.chance(0.7)) rc.ips = ipsValue(rng);
      if (rng.chance(0.5)) rc.mac = macValue(rng);
      if (rng.chance(0.1)) rc.portMappings = randomJson(rng);
      return set('runtimeConfig', rc);
    }
    case 'args': {
      if (rng.chance(0.25)) return set('args', rng.pick<unknown>(['x', [], { cni: 'x' }, { cni: [] }, { cni: null }, { cni: { ips: 'x' } }, deep(rng)]));
      const cni: Record<string, unknown> = {};
      if (rng.chance(0.7)) cni.ips = ipsValue(rng);
      if (rng.chance(0.5)) cni.mac = macValue(rng);
      return set('args', { cni });
    }
    case 'prevResult': return set('prevResult', prevResultValue(rng));
    case 'timeoutSeconds': return set('timeoutSeconds', timeoutValue(rng));
    case 'daemonSocket': {
      const choice = rng.pick(['', 'relative.sock', './x', 42, null, [], {}, '/nonexistent/ovnoded.sock', '/dev/null', 'FIFO', 'DIR', 'FILE',
        `/${'a'.repeat(200)}`, '/tmp/x\u0000y', 'NUL', 'SLASH', 'DOUBLE', 'SILENT', 'GARBAGE', 'GARBAGE', 'GARBAGE', 'OVSDB'] as unknown[]);
      switch (choice) {
        case 'FIFO': side.fifo = true; return set('daemonSocket', ctx.fifo);
        case 'DIR': return set('daemonSocket', ctx.dir);
        case 'FILE': return set('daemonSocket', ctx.file);
        case 'NUL': return set('daemonSocket', `${ctx.socket}\u0000`);
        case 'SLASH': return set('daemonSocket', `${ctx.socket}/`);
        case 'DOUBLE': return set('daemonSocket', `/${ctx.socket}`);
        case 'SILENT': conf.timeoutSeconds = rng.pick([0.3, 1]); return `${set('daemonSocket', ctx.silentSocket)} (never answers), timeoutSeconds ${String(conf.timeoutSeconds)}`;
        case 'OVSDB': conf.timeoutSeconds = 2; return `${set('daemonSocket', ctx.ovsdbSocket)} (OVSDB), timeoutSeconds 2`;
        case 'GARBAGE': {
          const r = rng.pick(GARBAGE_REPLIES);
          side.garbageReply = typeof r === 'string' ? Buffer.from(r, 'latin1') : r(rng);
          conf.timeoutSeconds = 5;
          return `${set('daemonSocket', ctx.garbageSocket)} replying ${brief(side.garbageReply, 100)}`;
        }
        default: return set('daemonSocket', choice);
      }
    }
    case 'logicalSwitch': {
      const k = rng.chance(0.8) ? 'logicalSwitch' : 'logical_switch';
      return set(k, rng.pick<unknown>(['', 'nonexistent', 'join', 'ovn-default', 'fuzz', 'ovn-cluster', 'FUZZ', 'fuzz ', 42, null, 'x'.repeat(70_000), 'é']));
    }
    case 'capabilities': return set('capabilities', retype(rng, {}));
    case 'valid-attachments': return set(rng.chance(0.8) ? 'cni.dev/valid-attachments' : 'cni.dev/attachments', rng.pick<unknown>([
      'x', [{}], [{ containerID: 1, ifname: 'eth0' }], [null], [{ containerID: 'x', ifname: 'eth0' }], deep(rng), {}]));
    case 'plugins': {
      // A conflist where a single plugin config is expected.
      const inner = { ...conf };
      for (const k of Object.keys(conf)) delete conf[k];
      Object.assign(conf, { cniVersion: inner.cniVersion, name: inner.name, plugins: [inner] });
      return 'conflist instead of a plugin config';
    }
    default: {
      const k = rng.chance(0.5) ? nastyWithNul(rng) : rng.word(6);
      return set(k, rng.chance(0.3) ? deep(rng) : rng.chance(0.2) ? 'x'.repeat(rng.pick([100_000, 600_000])) : randomJson(rng));
    }
  }
}

/** Whole-text mutations: what no object can express. */
function textMutation(rng: Rng, text: string): { stdin: string | Buffer; note: string } {
  const k = rng.int(0, 9);
  switch (k) {
    case 0: return { stdin: `\ufeff${text}`, note: 'BOM' };
    case 1: { const junk = rng.pick(['x', text, '\u0000', ',', '}', '\n\n', ' // c']); return { stdin: `${text}${junk}`, note: `trailing ${brief(junk, 30)}` }; }
    case 2: { const n = rng.int(0, text.length); return { stdin: text.slice(0, n), note: `truncated at ${n}` }; }
    case 3: { const s = rng.pick(['', ' ', 'null', '[]', '1', '"x"', 'true', '{', '}', '{}', '{"cniVersion":"1.0.0"}', "{'cniVersion':'1.0.0'}",
      '{"cniVersion":NaN}', '{"a":1,}', '\u0000']); return { stdin: s, note: `stdin ${JSON.stringify(s)}` }; }
    case 4: {
      const b = Buffer.from(text);
      const at = rng.int(0, b.length);
      const bad = rng.pick([[0xff], [0xfe, 0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x80]]);
      return { stdin: Buffer.concat([b.subarray(0, at), Buffer.from(bad), b.subarray(at)]), note: `invalid UTF-8 at ${at}` };
    }
    case 5: { const b = rng.bytes(rng.int(1, 3000)); return { stdin: b, note: 'random bytes' }; }
    case 6: return { stdin: JSON.stringify(JSON.parse(text), null, rng.pick([2, '\t', '\r\n'])), note: 'pretty-printed' };
    case 7: { const v = rng.pick(['"x"', '"1.0.0"', '7', 'null', '{}']); return { stdin: `{"cniVersion":${v},${text.slice(1)}`, note: `duplicate cniVersion ${v} first` }; }
    case 8: { const v = rng.pick(['"0.1.0"', '7', 'null', '"fuzznet"']); return { stdin: `${text.slice(0, -1)},"cniVersion":${v},"name":${v}}`, note: `duplicate cniVersion/name ${v} last` }; }
    default: return { stdin: `${' '.repeat(rng.int(0, 5))}\r\n${text}\t`, note: 'surrounding whitespace' };
  }
}

// ------------------------------------------------------------------------------------------ CNI_ARGS

function argsValue(rng: Rng, ctx: FuzzContext, i: number): { args: string; note: string } {
  if (rng.chance(0.06)) {
    const s = `IgnoreUnknown=1;K8S_POD_NAME=${'p'.repeat(rng.pick([20_000, 100_000]))}`;
    return { args: s, note: `very long (${s.length})` };
  }
  const parts: string[] = [];
  const n = rng.int(0, 7);
  for (let k = 0; k < n; k++) {
    parts.push(rng.weighted<() => string>([
      [3, () => `IgnoreUnknown=${rng.pick(['1', 'true', 'TRUE', 'True', '0', 'false', 'yes', '', ' 1', '1 '])}`],
      [3, () => `K8S_POD_NAMESPACE=${rng.chance(0.6) ? 'fz' : nasty(rng)}`],
      [3, () => `K8S_POD_NAME=${rng.chance(0.6) ? `${ctx.prefix}-a${i}` : nasty(rng)}`],
      [1, () => `K8S_POD_UID=${rng.chance(0.5) ? '1b4e28ba-2fa1-11d2-883f-0016d3cca427' : nasty(rng)}`],
      [1, () => `K8S_POD_INFRA_CONTAINER_ID=${nasty(rng)}`],
      [4, () => `IP=${rng.chance(0.7) ? ipText(rng) : `${ipText(rng)},${ipText(rng)}`}`],
      [4, () => `MAC=${String(macValue(rng))}`],
      [2, () => `${rng.chance(0.5) ? nasty(rng) : rng.word(5).toUpperCase()}=${nasty(rng)}`],
      [2, () => rng.pick(['novalue', '=x', '', 'A==B', 'K8S_POD_NAME', 'IP', 'MAC=', 'IP=', '==', '=', 'k8s_pod_name=x', 'IgnoreUnknown'])],
    ])());
  }
  const sep = rng.weighted([[10, ';'], [1, ','], [1, ' ; '], [1, '\n'], [1, ';;']] as const);
  const args = parts.join(sep);
  return { args, note: `CNI_ARGS=${brief(args, 200)}` };
}

// ------------------------------------------------------------------------------------------ generators

function genNetconf(rng: Rng, ctx: FuzzContext, i: number): ShimInput {
  const env = baseEnv(rng, ctx, i, 'n');
  const conf = baseConf(rng, ctx);
  const side: { garbageReply?: Buffer; fifo?: boolean } = {};
  const notes = Array.from({ length: rng.int(1, 3) }, () => mutateConf(rng, ctx, conf, side));
  let stdin: string | Buffer = encode(conf);
  if (rng.chance(0.15)) {
    const t = textMutation(rng, stdin);
    stdin = t.stdin;
    notes.push(t.note);
  }
  return { kind: 'shim', gen: 'netconf', env, stdin, note: `${env.CNI_COMMAND}: ${notes.join('; ')}`, ...side };
}

function genArgs(rng: Rng, ctx: FuzzContext, i: number): ShimInput {
  const env = baseEnv(rng, ctx, i, 'a', rng.weighted([[80, 'ADD'], [10, 'DEL'], [10, 'CHECK']] as const));
  const a = argsValue(rng, ctx, i);
  env.CNI_ARGS = a.args;
  const conf = baseConf(rng, ctx);
  if (env.CNI_COMMAND === 'CHECK') conf.prevResult = prevResultValue(rng);
  return { kind: 'shim', gen: 'cni-args', env, stdin: encode(conf), note: `${env.CNI_COMMAND}: ${a.note}` };
}

function genEnv(rng: Rng, ctx: FuzzContext, i: number): ShimInput {
  const env = baseEnv(rng, ctx, i, 'e', rng.weighted([[70, 'ADD'], [15, 'DEL'], [10, 'CHECK'], [5, 'GC']] as const));
  const notes: string[] = [];
  let fifo = false;
  for (let k = rng.int(1, 3); k > 0; k--) {
    const what = rng.weighted([[3, 'command'], [2, 'unset'], [4, 'containerId'], [4, 'ifName'], [6, 'netns'], [1, 'path'], [1, 'junk']] as const);
    switch (what) {
      case 'command': env.CNI_COMMAND = rng.chance(0.3) ? rng.pick(COMMANDS)
        : rng.pick(['add', 'ADD ', ' ADD', '', 'UPDATE', 'VERSION\n', 'ＡＤＤ', 'A'.repeat(10_000), 'DEL;ADD', 'del', 'Check', 'GC\t']);
        notes.push(`CNI_COMMAND=${JSON.stringify(env.CNI_COMMAND).slice(0, 40)}`); break;
      case 'unset': { const k2 = rng.pick(['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH']); delete env[k2]; notes.push(`unset ${k2}`); break; }
      case 'containerId': env.CNI_CONTAINERID = rng.pick(CONTAINER_IDS(ctx, i)); notes.push(`CNI_CONTAINERID=${brief(env.CNI_CONTAINERID, 60)}`); break;
      case 'ifName': env.CNI_IFNAME = rng.pick(IFNAMES); notes.push(`CNI_IFNAME=${JSON.stringify(env.CNI_IFNAME)}`); break;
      case 'netns': { const g = netnsGarbage(rng, ctx); env.CNI_NETNS = g.path; fifo ||= g.fifo === true; notes.push(`CNI_NETNS=${brief(g.path, 80)}`); break; }
      case 'path': env.CNI_PATH = rng.pick(['', 'relative', '/nonexistent', 'x'.repeat(50_000), ':::']); notes.push(`CNI_PATH=${brief(env.CNI_PATH, 40)}`); break;
      default: env[rng.pick(['CNI_FOO', 'K8S_POD_NAME', 'CNI_ARGS_X', 'NODE_OPTIONS_X'])] = nasty(rng); notes.push('junk variable'); break;
    }
  }
  const conf = baseConf(rng, ctx);
  if (env.CNI_COMMAND === 'CHECK') conf.prevResult = prevResultValue(rng);
  if (env.CNI_COMMAND === 'GC') conf['cni.dev/valid-attachments'] = [];
  return { kind: 'shim', gen: 'env', env, stdin: encode(conf), note: notes.join('; '), fifo };
}

function genValid(rng: Rng, ctx: FuzzContext, i: number): ValidInput {
  const conf: Record<string, unknown> = { cniVersion: rng.pick(SUPPORTED), name: 'fuzznet', type: 'ovnode', daemonSocket: ctx.socket };
  const inFuzz = rng.chance(0.6);
  if (inFuzz) conf.logicalSwitch = FUZZ_SUBNET.name;
  const notes: string[] = [`cniVersion ${String(conf.cniVersion)}`, inFuzz ? 'switch fuzz' : 'default switch'];
  if (rng.chance(0.4)) { conf.mtu = rng.int(576, 9000); notes.push(`mtu ${String(conf.mtu)}`); }
  if (rng.chance(0.4)) { conf.dns = validDns(rng); notes.push('dns'); }
  if (rng.chance(0.3)) { conf.timeoutSeconds = rng.int(10, 60); }
  let staticIp = false;
  const argsParts = ['IgnoreUnknown=1'];
  if (rng.chance(0.5)) argsParts.push('K8S_POD_NAMESPACE=fz', `K8S_POD_NAME=${ctx.prefix}-v${i}`);
  const mac = rng.chance(0.3) ? validMac(rng) : undefined;
  const ip = rng.chance(0.3) ? (inFuzz ? `10.78.0.${rng.int(2, 30)}` : `10.16.${rng.int(200, 250)}.${rng.int(2, 254)}`) : undefined;
  const by = rng.pick(['runtimeConfig', 'args.cni', 'CNI_ARGS']);
  if (mac || ip) {
    staticIp = ip !== undefined;
    notes.push(`static ${[mac, ip].filter(Boolean).join(' ')} by ${by}`);
    if (by === 'runtimeConfig') conf.runtimeConfig = { ...(mac ? { mac } : {}), ...(ip ? { ips: [`${ip}/${inFuzz ? 27 : 16}`] } : {}) };
    else if (by === 'args.cni') conf.args = { cni: { ...(mac ? { mac } : {}), ...(ip ? { ips: [ip] } : {}) } };
    else argsParts.push(...(mac ? [`MAC=${mac}`] : []), ...(ip ? [`IP=${ip}`] : []));
  }
  const env: Record<string, string> = {
    CNI_COMMAND: 'ADD', CNI_CONTAINERID: `${ctx.prefix}-v${i}`, CNI_NETNS: ctx.fresh(`v${i}`),
    CNI_IFNAME: rng.chance(0.8) ? 'eth0' : `v${rng.word(rng.int(1, 8))}`, CNI_PATH: ctx.shimDir, CNI_ARGS: argsParts.join(';'),
  };
  const del = rng.chance(0.6);
  return { kind: 'valid', gen: 'valid', env, conf, staticIp, del, note: `${notes.join(', ')}, ifname ${env.CNI_IFNAME}${del ? ', then DEL' : ''}` };
}

function genBurst(rng: Rng, ctx: FuzzContext, i: number): BurstInput {
  const netns = rng.chance(0.8) ? ctx.fresh(`b${i}`) : rng.pick(ctx.pool);
  const key = { containerId: `${ctx.prefix}-b${i}`, ifName: rng.chance(0.8) ? 'eth0' : 'net1', netns };
  const conf = baseConf(rng, ctx);
  delete conf.timeoutSeconds;
  if (rng.chance(0.3)) conf.timeoutSeconds = rng.pick([0.05, 0.2, 1]);
  const cmds = Array.from({ length: rng.int(2, 6) }, () => rng.weighted([[5, 'ADD'], [4, 'DEL'], [2, 'CHECK'], [1, 'STATUS']] as const));
  const calls = cmds.map((cmd) => {
    const env: Record<string, string> = { CNI_COMMAND: cmd, CNI_CONTAINERID: key.containerId, CNI_IFNAME: key.ifName, CNI_NETNS: netns, CNI_PATH: ctx.shimDir };
    const c = cmd === 'CHECK' ? { ...conf, prevResult: { cniVersion: conf.cniVersion, ips: [{ address: '10.16.0.9/16' }] } } : conf;
    return { env, stdin: encode(c) };
  });
  return { kind: 'burst', gen: 'burst', calls, key, note: `${cmds.join(' + ')} at once${conf.timeoutSeconds !== undefined ? `, timeoutSeconds ${String(conf.timeoutSeconds)}` : ''}, ifname ${key.ifName}` };
}

// ------------------------------------------------------------------------------------------ raw

function httpRequest(body: Buffer | string, opts: { method?: string; path?: string; headers?: string[]; version?: string; length?: number | string } = {}): Buffer {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const head = [`${opts.method ?? 'POST'} ${opts.path ?? '/cni'} ${opts.version ?? 'HTTP/1.1'}`, 'Host: ovnoded', 'Content-Type: application/json',
    ...(opts.length === undefined ? [`Content-Length: ${b.length}`] : opts.length === '' ? [] : [`Content-Length: ${opts.length}`]),
    'Connection: close', ...(opts.headers ?? [])];
  return Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), b]);
}

/** A wire request body (common/protocol.ts), mutated; the sandbox it names when the daemon may act on it. */
function wireBody(rng: Rng, ctx: FuzzContext, i: number): { body: Buffer; note: string; key?: SandboxKey; fifo?: boolean } {
  const env = baseEnv(rng, ctx, i, 'r', rng.weighted([[60, 'ADD'], [10, 'DEL'], [10, 'CHECK'], [5, 'GC'], [10, 'STATUS'], [5, 'VERSION']] as const));
  const conf = baseConf(rng, ctx);
  const side: { garbageReply?: Buffer; fifo?: boolean } = {};
  const notes: string[] = [];
  if (rng.chance(0.5)) notes.push(mutateConf(rng, ctx, conf, side));
  const wire: Record<string, unknown> = { protocol: 1, env, config: encode(conf), deadlineMs: 20_000 };
  for (let k = rng.int(0, 2); k > 0; k--) {
    const what = rng.pick(['protocol', 'env', 'envvar', 'config', 'deadlineMs', 'drop', 'extra']);
    switch (what) {
      case 'protocol': wire.protocol = rng.pick<unknown>([0, 2, '1', new RawJson('1.0'), new RawJson('1e0'), null, -1, new RawJson('1E400'), [1], 1.5]); notes.push(`protocol ${brief(wire.protocol, 20)}`); break;
      case 'env': wire.env = rng.pick<unknown>([null, [], 'x', {}, { CNI_COMMAND: 1 }, { ...env, CNI_COMMAND: 'VERSION' }, new RawJson(`{"__proto__":${JSON.stringify(env)}}`)]); notes.push(`env ${brief(wire.env, 60)}`); break;
      case 'envvar': {
        const k2 = rng.pick(['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_NETNS', 'CNI_ARGS', 'CNI_COMMAND']);
        const v = k2 === 'CNI_NETNS' ? (() => { const g = netnsGarbage(rng, ctx); side.fifo ||= g.fifo === true; return g.path; })()
          : k2 === 'CNI_IFNAME' ? rng.pick(IFNAMES) : k2 === 'CNI_CONTAINERID' ? rng.pick(CONTAINER_IDS(ctx, i)) : k2 === 'CNI_ARGS' ? argsValue(rng, ctx, i).args
            : rng.pick(['add', '', 'VERSION', 'x']);
        env[k2] = v;
        notes.push(`${k2}=${brief(v, 60)}`);
        break;
      }
      case 'config': wire.config = rng.pick<unknown>([5, {}, null, '', 'x', deep(rng), new RawJson(JSON.stringify(encode(deep(rng))))]); notes.push(`config ${brief(wire.config, 60)}`); break;
      case 'deadlineMs': wire.deadlineMs = rng.pick<unknown>([0, -1, 1, 20, new RawJson('1e308'), '100', null, 3_600_001, new RawJson('5e-324'), new RawJson('-0')]); notes.push(`deadlineMs ${brief(wire.deadlineMs, 20)}`); break;
      case 'drop': { const k2 = rng.pick(Object.keys(wire)); delete wire[k2]; notes.push(`drop ${k2}`); break; }
      default: wire[nasty(rng)] = randomJson(rng); notes.push('extra field'); break;
    }
  }
  let text = encode(wire);
  if (rng.chance(0.1)) { text = encode(rng.chance(0.5) ? randomJson(rng) : deep(rng)); notes.splice(0, notes.length, `body ${brief(text, 80)}`); }
  const key = validKey(env.CNI_CONTAINERID, env.CNI_IFNAME) ? { containerId: env.CNI_CONTAINERID as string, ifName: env.CNI_IFNAME as string, netns: env.CNI_NETNS } : undefined;
  return { body: Buffer.from(text), note: `${String(env.CNI_COMMAND)}: ${notes.join('; ') || 'valid wire request'}`, key, fifo: side.fifo };
}

function genRaw(rng: Rng, ctx: FuzzContext, i: number): RawInput {
  const kind = rng.weighted([[5, 'bytes'], [4, 'truncated'], [10, 'json'], [4, 'method'], [5, 'headers'], [3, 'slowloris'], [2, 'abort'], [1, 'many'], [2, 'pipeline'], [1, 'oversize']] as const);
  const gen = `raw-${kind}`;
  switch (kind) {
    case 'bytes': {
      const b = rng.chance(0.5) ? rng.bytes(rng.int(0, 4096)) : Buffer.from(rng.word(rng.int(1, 300), 'GETPOSHT/ 1.\r\n:abcxyz{}"'), 'latin1');
      return { kind: 'raw', gen, note: `${b.length} random bytes`, mode: 'halfclose', bytes: b, cniPost: false };
    }
    case 'truncated': {
      const w = wireBody(rng, ctx, i);
      const full = httpRequest(w.body);
      const n = rng.int(0, full.length - 1);
      return { kind: 'raw', gen, note: `first ${n} of ${full.length} bytes of ${w.note}`, mode: 'halfclose', bytes: full.subarray(0, n), cniPost: false, key: w.key, fifo: w.fifo };
    }
    case 'json': {
      const w = wireBody(rng, ctx, i);
      const mode = rng.chance(0.5) ? 'halfclose' : 'keepopen';
      return { kind: 'raw', gen, note: w.note, mode, bytes: httpRequest(w.body), cniPost: true, key: w.key, fifo: w.fifo };
    }
    case 'method': {
      const method = rng.pick(['GET', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE', 'post', 'POSTX', 'P\u00d6ST', 'PRI', 'M-SEARCH']);
      const path = rng.pick(['/cni', '/', '/cni/', '/CNI', '/cni?x=1', '/cni#x', '//cni', '/cni/../cni', '/metrics', '*', 'http://ovnoded/cni', '/%00', '/' + 'a'.repeat(9000), 'cni']);
      const w = wireBody(rng, ctx, i);
      const withBody = rng.chance(0.6);
      const bytes = httpRequest(withBody ? w.body : '', { method, path, length: withBody ? undefined : '' });
      // POST /cni with a body is the one combination that really is a CNI request.
      const cni = method === 'POST' && path === '/cni' && withBody;
      return { kind: 'raw', gen, note: `${method} ${brief(path, 40)}${withBody ? ` with ${w.note}` : ''}`, mode: 'halfclose', bytes, cniPost: cni, key: cni ? w.key : undefined, fifo: w.fifo };
    }
    case 'headers': {
      const w = wireBody(rng, ctx, i);
      const variant = rng.int(0, 12);
      const v: Array<[string, () => Buffer]> = [
        ['oversized header', () => httpRequest(w.body, { headers: [`X-Big: ${'b'.repeat(rng.pick([17_000, 100_000, 1_000_000]))}`] })],
        ['3000 headers', () => httpRequest(w.body, { headers: Array.from({ length: 3000 }, (_, k) => `X-H${k}: v`) })],
        ['two Content-Length', () => httpRequest(w.body, { headers: [`Content-Length: ${w.body.length + 5}`] })],
        ['Content-Length and chunked', () => httpRequest(w.body, { headers: ['Transfer-Encoding: chunked'] })],
        ['bad chunked body', () => httpRequest(`zz\r\n${w.body.toString()}\r\n0\r\n\r\n`, { length: '', headers: ['Transfer-Encoding: chunked'] })],
        ['chunked body', () => httpRequest(`${w.body.length.toString(16)}\r\n${w.body.toString()}\r\n0\r\n\r\n`, { length: '', headers: ['Transfer-Encoding: chunked'] })],
        ['Expect: 100-continue', () => httpRequest(w.body, { headers: ['Expect: 100-continue'] })],
        ['HTTP/1.0', () => httpRequest(w.body, { version: 'HTTP/1.0' })],
        ['HTTP/2 preface', () => Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00', 'latin1')],
        ['negative Content-Length', () => httpRequest(w.body, { length: -5 })],
        ['Content-Length 1e12', () => httpRequest(w.body, { length: '1000000000000' })],
        ['header without colon / with NUL', () => httpRequest(w.body, { headers: ['NoColon', 'X-Nul: a\u0000b', 'X-Uni: \u00e9\u00ff'] })],
        ['no Host, LF line ends', () => Buffer.from(`POST /cni HTTP/1.1\nContent-Length: ${w.body.length}\n\n${w.body.toString()}`)],
      ];
      const [name, make] = v[variant] as [string, () => Buffer];
      return { kind: 'raw', gen, note: `${name}: ${w.note}`, mode: 'halfclose', bytes: make(), cniPost: false, key: w.key, fifo: w.fifo };
    }
    case 'slowloris': {
      const w = wireBody(rng, ctx, i);
      const full = httpRequest(w.body);
      const n = rng.int(1, Math.min(full.length - 1, 400));
      return { kind: 'raw', gen, note: `${n} bytes trickled then closed`, mode: 'slowloris', bytes: full.subarray(0, n), cniPost: false };
    }
    case 'abort': {
      const w = wireBody(rng, ctx, i);
      const full = httpRequest(w.body);
      const head = full.indexOf('\r\n\r\n') + 4;
      const n = rng.int(head, full.length - 1);
      return { kind: 'raw', gen, note: `headers + ${n - head} of ${full.length - head} body bytes, then reset: ${w.note}`, mode: 'abort', bytes: full.subarray(0, n), cniPost: false };
    }
    case 'many': {
      const n = rng.int(10, 60);
      const b = Buffer.from(`POST /cni HTTP/1.1\r\nHost: ovnoded\r\nContent-Length: 100\r\n`.slice(0, rng.int(1, 50)), 'latin1');
      return { kind: 'raw', gen, note: `${n} connections each holding ${b.length} bytes of a request; STATUS meanwhile`, mode: 'many', bytes: b, connections: n, cniPost: false };
    }
    case 'pipeline': {
      const a = wireBody(rng, ctx, i);
      const second = rng.chance(0.5) ? rng.bytes(rng.int(1, 200)) : httpRequest(a.body, { method: 'GET', path: '/' });
      const status = Buffer.from(JSON.stringify({ protocol: 1, env: { CNI_COMMAND: 'STATUS' }, config: JSON.stringify({ cniVersion: '1.1.0', name: 'fuzznet', type: 'ovnode' }), deadlineMs: 5_000 }));
      const first = httpRequest(status).toString('latin1').replace('Connection: close\r\n', '');
      return { kind: 'raw', gen, note: 'STATUS request followed by another request / junk on one connection', mode: 'halfclose', bytes: Buffer.concat([Buffer.from(first, 'latin1'), second]), cniPost: false };
    }
    default: {
      const size = rng.pick([(1 << 20) + 1, (1 << 20) + 4096, 2 << 20]);
      const body = Buffer.alloc(size, 0x20);
      Buffer.from('{"protocol":1,"x":"').copy(body);
      body[size - 2] = 0x22; body[size - 1] = 0x7d;
      return { kind: 'raw', gen, note: `body of ${size} bytes`, mode: 'keepopen', bytes: httpRequest(body), cniPost: true };
    }
  }
}

// ------------------------------------------------------------------------------------------ entry

/** The generator mix: mostly cheap refusals, ~1 in 12 a deliberately valid ADD, ~1 in 25 a burst on one sandbox. */
export function generate(seed: number, index: number, ctx: FuzzContext): FuzzInput {
  const rng = new Rng(caseSeed(seed, index));
  const which = rng.weighted([[32, 'netconf'], [14, 'args'], [20, 'env'], [22, 'raw'], [8, 'valid'], [4, 'burst']] as const);
  switch (which) {
    case 'netconf': return genNetconf(rng, ctx, index);
    case 'args': return genArgs(rng, ctx, index);
    case 'env': return genEnv(rng, ctx, index);
    case 'raw': return genRaw(rng, ctx, index);
    case 'burst': return genBurst(rng, ctx, index);
    default: return genValid(rng, ctx, index);
  }
}

// ------------------------------------------------------------------------------------------ raw I/O

export interface RawOutcome {
  /** HTTP status of the first reply, when one came. */
  status?: number;
  headers?: string;
  body?: Buffer;
  closed: boolean;
  error?: string;
  timedOut: boolean;
  ms: number;
}

/**
 * Sends `bytes` on a new connection to `socket` and reads the reply: resolves once a complete
 * first response arrived (status line, headers, Content-Length body) or the peer closed, or with
 * timedOut after `timeoutMs`. `halfclose` ends the write side after sending (EOF to the server),
 * `keepopen` does not.
 */
export function sendRaw(socket: string, bytes: Buffer, mode: 'halfclose' | 'keepopen', timeoutMs: number): Promise<RawOutcome> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let done = false;
    const sock = net.createConnection(socket);
    const finish = (o: Omit<RawOutcome, 'ms'>): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ ...o, ms: Date.now() - t0 });
    };
    const parsed = (closed: boolean): Omit<RawOutcome, 'ms'> | undefined => {
      let raw = Buffer.concat(chunks);
      // Interim 1xx responses (100 Continue) come before the real one.
      while (/^HTTP\/1\.[01] 1\d\d/.test(raw.subarray(0, 12).toString('latin1')) && raw.indexOf('\r\n\r\n') >= 0) raw = raw.subarray(raw.indexOf('\r\n\r\n') + 4);
      const split = raw.indexOf('\r\n\r\n');
      if (split < 0) return closed ? { closed, timedOut: false, body: raw } : undefined;
      const headers = raw.subarray(0, split).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(headers);
      const len = /\r\ncontent-length:\s*(\d+)/i.exec(headers);
      const body = raw.subarray(split + 4);
      if (!closed && len && body.length < Number(len[1])) return undefined;
      if (!closed && !len && !/\r\ntransfer-encoding/i.test(headers) && m && Number(m[1]) >= 200 && m[1] !== '204' && m[1] !== '304') return undefined;
      return { status: m ? Number(m[1]) : undefined, headers, body: len ? body.subarray(0, Number(len[1])) : body, closed, timedOut: false };
    };
    const timer = setTimeout(() => finish({ ...(parsed(true) ?? { closed: false }), closed: false, timedOut: true }), timeoutMs);
    sock.once('connect', () => {
      sock.write(bytes, () => undefined);
      if (mode === 'halfclose') sock.end();
    });
    sock.on('data', (c: Buffer) => {
      chunks.push(c);
      const p = parsed(false);
      if (p) finish(p);
    });
    sock.on('error', (e) => { if (chunks.length === 0) finish({ closed: true, timedOut: false, error: e.message }); else finish(parsed(true) as Omit<RawOutcome, 'ms'>); });
    sock.on('close', () => finish(parsed(true) as Omit<RawOutcome, 'ms'>));
  });
}

/** Opens `n` connections, writes `bytes` on each, slowly when `trickle`; returns a closer that resets them all. */
export async function holdConnections(socket: string, bytes: Buffer, n: number, trickleMs = 0): Promise<{ closed: () => number; close: () => void }> {
  const socks = await Promise.all(Array.from({ length: n }, () => new Promise<net.Socket>((resolve) => {
    const s = net.createConnection(socket);
    s.on('error', () => undefined);
    s.once('connect', () => resolve(s));
    s.once('close', () => resolve(s));
  })));
  let closedByPeer = 0;
  for (const s of socks) s.once('close', () => { closedByPeer++; });
  if (trickleMs > 0) {
    const step = Math.max(1, Math.ceil(bytes.length / 8));
    for (let at = 0; at < bytes.length; at += step) {
      for (const s of socks) if (!s.destroyed) s.write(bytes.subarray(at, at + step));
      await new Promise((r) => setTimeout(r, trickleMs));
    }
  } else {
    for (const s of socks) if (!s.destroyed) s.write(bytes);
  }
  return { closed: () => closedByPeer, close: () => { for (const s of socks) s.destroy(); } };
}
