// Seeded random values for each field the CRD schemas constrain, run through the API-server model
// and ovnode's validators: what ovnode accepts the schema must accept, and for fields that do not
// depend on another field the two must agree exactly, except for the gaps named here (the same
// ones crd-corpus.test.ts lists). The seed is fixed so that a failure reproduces; the failing value
// is in the message.
import { describe, expect, it } from 'vitest';
import { parseIp } from '../../../daemon/ipam/cidr';
import { apiserverCreate, ovnodeVerdict, type Doc } from './manifests';

/** A small deterministic generator (LCG), so that every run draws the same values. */
function rng(seed: number) {
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const int = (n: number): number => Math.floor(next() * n);
  const pick = <T>(a: readonly T[]): T => a[int(a.length)] as T;
  return { next, int, pick };
}
type Rng = ReturnType<typeof rng>;

// Whitespace that trim() removes, some it keeps (U+0085, U+200B), and a letter.
const PAD = ['\t', '\n', '\v', '\f', '\r', ' ', '\u00a0', '\u2003', '\u2028', '\ufeff', '\u3000', '\u0085', '\u200b', 'x'];
const pad = (r: Rng): string => {
  let s = '';
  while (r.next() < 0.12) s += r.pick(PAD);
  return s;
};

function octet(r: Rng): string {
  const x = r.next();
  if (x < 0.08) return `0${r.int(10)}`;
  if (x < 0.14) return String(250 + r.int(10));
  return String(r.int(256));
}
function ipv4(r: Rng): string {
  const n = r.next() < 0.92 ? 4 : r.pick([3, 5]);
  return Array.from({ length: n }, () => octet(r)).join('.');
}
function group(r: Rng): string {
  const len = r.next() < 0.04 ? 5 : 1 + r.int(4);
  let s = '';
  for (let i = 0; i < len; i++) s += r.pick([...'0123456789abcdefABCDEF', ...(r.next() < 0.02 ? ['g'] : [])]);
  return s;
}
function ipv6(r: Rng): string {
  const withV4 = r.next() < 0.2;
  const count = Math.max(0, (withV4 ? 6 : 8) + (r.next() < 0.1 ? r.pick([-1, 1]) : 0));
  const groups = Array.from({ length: count }, () => group(r));
  let s: string;
  if (r.next() < 0.65) {
    const a = r.int(groups.length + 1);
    const b = a + r.int(groups.length - a + 1);
    s = `${groups.slice(0, a).join(':')}::${groups.slice(b).join(':')}`;
    if (r.next() < 0.04) s += '::';
  } else s = groups.join(':');
  if (withV4) s += `${s.endsWith(':') ? '' : ':'}${ipv4(r)}`;
  if (r.next() < 0.1) {
    s += '%';
    const len = r.int(5);
    for (let i = 0; i < len; i++) s += r.pick([...'ab09.:-_/ %']);
  }
  return s;
}
const ip = (r: Rng): string => (r.next() < 0.5 ? ipv4(r) : ipv6(r));
function prefix(r: Rng): string {
  const x = r.next();
  if (x < 0.02) return '';
  const p = String(r.int(140));
  return x < 0.1 ? `0${p}` : x < 0.13 ? `00${p}` : p;
}
const cidr = (r: Rng): string => `${ip(r)}/${prefix(r)}`;

function addressish(r: Rng): string {
  const x = r.next();
  if (x < 0.3) return pad(r) + ip(r) + pad(r);
  if (x < 0.6) return pad(r) + cidr(r) + pad(r);
  if (x < 0.8) return pad(r) + cidr(r) + pad(r) + r.pick([',', ',', ';']) + pad(r) + cidr(r) + pad(r);
  if (x < 0.92) return pad(r) + ip(r) + pad(r) + r.pick(['..', '..', '...', '.']) + pad(r) + ip(r) + pad(r);
  return pad(r) + ip(r) + pad(r) + ',' + pad(r) + ip(r) + pad(r);
}

function mac(r: Rng): string {
  if (r.next() < 0.05) return Array(6).fill('00').join(r.pick([':', '-']));
  const sep = r.pick([':', ':', '-', '.', '']);
  const n = r.next() < 0.9 ? 6 : r.pick([5, 7]);
  const oct = (): string => {
    let s = '';
    const len = r.next() < 0.05 ? 1 + r.int(3) : 2;
    for (let i = 0; i < len; i++) s += r.pick([...'0123456789abcdefABCDEF', ...(r.next() < 0.02 ? ['z'] : [])]);
    return s;
  };
  const mixed = r.next() < 0.05;
  return Array.from({ length: n }, (_, i) => oct() + (i < n - 1 ? (mixed && i === 2 ? '-' : sep) : '')).join('');
}

function name(r: Rng, alphabet: string, max: number): string {
  const len = r.next() < 0.05 ? max - 2 + r.int(5) : r.int(12);
  let s = '';
  for (let i = 0; i < len; i++) s += r.pick([...alphabet]);
  return s;
}

interface Outcome { api: boolean; ovnode: boolean; value: unknown }

function run(obj: Doc, value: unknown): Outcome {
  const api = apiserverCreate(obj);
  const original = ovnodeVerdict(obj);
  if (original.ok && !api.ok) throw new Error(`ovnode accepts ${JSON.stringify(value)} but the API server refuses it: ${api.errors.join('; ')}`);
  return { api: api.ok, ovnode: api.ok && ovnodeVerdict(api.stored as Doc).ok, value };
}

/**
 * Draws `n` values; every one ovnode accepts must pass the API server (checked in run()); where
 * `exact`, the API server must also refuse every one ovnode refuses unless `gap(value)` says why
 * not. Returns the outcomes so callers can check the draw was not one-sided.
 */
function fuzz<T>(seed: number, n: number, draw: (r: Rng) => T, build: (v: T) => Doc, gap?: (v: T) => boolean): Outcome[] {
  const r = rng(seed);
  const out: Outcome[] = [];
  for (let i = 0; i < n; i++) {
    const v = draw(r);
    const o = run(build(v), v);
    if (o.api && !o.ovnode && !(gap?.(v) ?? false)) {
      throw new Error(`the API server accepts ${JSON.stringify(v)} but ovnode refuses it, and it is not a known gap`);
    }
    out.push(o);
  }
  return out;
}

/** Both verdicts occur often enough for the comparison to mean something. */
function balanced(outcomes: Outcome[], min = 0.02): void {
  const yes = outcomes.filter((o) => o.ovnode).length / outcomes.length;
  expect(yes, 'share accepted by ovnode').toBeGreaterThan(min);
  expect(yes, 'share accepted by ovnode').toBeLessThan(1 - min);
}

const zone = (v: unknown): boolean => JSON.stringify(v).includes('%');
const subnet = (spec: Doc): Doc => ({ apiVersion: 'kubeovn.io/v1', kind: 'Subnet', metadata: { name: 'n' }, spec });
const vip = (spec: Doc): Doc => ({ apiVersion: 'kubeovn.io/v1', kind: 'Vip', metadata: { name: 'v' }, spec: { subnet: 's', ...spec } });
const sgRule = (rule: Doc): Doc => ({
  apiVersion: 'kubeovn.io/v1', kind: 'SecurityGroup', metadata: { name: 'g' },
  spec: { egressRules: [{ protocol: 'icmp', priority: 1, remoteType: 'address', remoteAddress: '0.0.0.0/0', policy: 'allow', ...rule }] },
});
/** Contains every address of both families: no containment question arises. */
const EVERYTHING = '0.0.0.0/0,::/0';

function reversedRange(v: string): boolean {
  const ends = v.trim().split('..').map((e) => e.trim());
  if (ends.length !== 2) return false;
  try {
    const [a, b] = ends.map((e) => parseIp(e));
    return a !== undefined && b !== undefined && a.family === b.family && a.value > b.value;
  } catch {
    return false;
  }
}

describe('seeded fuzz: schema patterns against ovnode\'s validators', () => {
  const N = 1500;

  it('Subnet cidrBlock (exact, but for IPv6 zones)', () => {
    balanced(fuzz(1, N, addressish, (v) => subnet({ cidrBlock: v }), zone));
  });
  it('Subnet allowSubnets[] (exact, but for IPv6 zones)', () => {
    balanced(fuzz(2, N, addressish, (v) => subnet({ cidrBlock: '10.0.0.0/8', allowSubnets: [v] }), zone));
  });
  it('Subnet excludeIps[] in a subnet of every address (exact, but for reversed ranges and zones)', () => {
    balanced(fuzz(3, N, addressish, (v) => subnet({ cidrBlock: EVERYTHING, excludeIps: [v] }), (v) => zone(v) || reversedRange(v)));
  });
  it('Subnet gateway (what ovnode accepts passes; the rest depends on cidrBlock)', () => {
    // A whole-family cidrBlock of the gateway's (apparent) family, so that many gateways fit.
    const build = (v: string): Doc => subnet({ cidrBlock: v.includes(':') ? '::/0' : '0.0.0.0/0', gateway: v });
    balanced(fuzz(4, N, addressish, build, () => true));
  });
  it('Subnet acls[].match (exact)', () => {
    const draw = (r: Rng): string => (r.next() < 0.5 ? pad(r) + pad(r) : pad(r) + name(r, 'ip4.dst=1 ', 20) + pad(r));
    balanced(fuzz(5, N, draw, (v) => subnet({ cidrBlock: '10.0.0.0/8', acls: [{ action: 'drop', direction: 'to-lport', match: v, priority: 1 }] })));
  });
  it('Subnet acls[].priority (exact)', () => {
    const draw = (r: Rng): unknown => r.pick([r.int(40000) - 100, 32767, 32768, 0, -1, 1.5, '7', null]);
    balanced(fuzz(6, 400, draw, (v) => subnet({ cidrBlock: '10.0.0.0/8', acls: [{ action: 'drop', direction: 'to-lport', match: 'ip4', priority: v }] })));
  });
  it('Subnet namespaces[] (exact)', () => {
    balanced(fuzz(7, N, (r) => name(r, 'abz09--_.A', 64), (v) => subnet({ cidrBlock: '10.0.0.0/8', namespaces: [v] })));
  });
  it('Vip v4ip (exact)', () => {
    balanced(fuzz(8, N, (r) => (r.next() < 0.8 ? ipv4(r) : ip(r)), (v) => vip({ v4ip: v })));
  });
  it('Vip v6ip (exact, but for zones)', () => {
    balanced(fuzz(9, N, (r) => (r.next() < 0.8 ? ipv6(r) : ip(r)), (v) => vip({ v6ip: v }), zone));
  });
  it('Vip macAddress (exact)', () => {
    balanced(fuzz(10, N, mac, (v) => vip({ macAddress: v })));
  });
  it('SecurityGroup remoteAddress by ipVersion (exact, but for zones)', () => {
    const draw = (r: Rng) => ({ ipVersion: r.pick([undefined, 'ipv4', 'ipv6']), remoteAddress: r.next() < 0.5 ? ip(r) : pad(r) + cidr(r) + pad(r) });
    balanced(fuzz(11, N, draw, (v) => sgRule(v), zone));
  });
  it('SecurityGroup remoteSecurityGroup (exact)', () => {
    const draw = (r: Rng) => ({ remoteSecurityGroup: name(r, 'abz09-.-.A_', 254), addr: r.next() < 0.1 });
    balanced(fuzz(12, N, draw, (v) => sgRule({ remoteType: 'securityGroup', remoteSecurityGroup: v.remoteSecurityGroup, remoteAddress: v.addr ? '10.0.0.1' : undefined })));
  });
  it('SecurityGroup protocol and ports (exact, but for upside-down ranges)', () => {
    const port = (r: Rng): unknown => r.pick([undefined, null, 0, 1, 22, 80, 65535, 65536, -1, 1.5, '22']);
    const draw = (r: Rng) => ({ protocol: r.pick(['all', 'icmp', 'tcp', 'udp', 'TCP']), portRangeMin: port(r), portRangeMax: port(r), priority: r.pick([0, 1, 100, 200, 201]) });
    const upsideDown = (v: { portRangeMin: unknown; portRangeMax: unknown }): boolean =>
      typeof v.portRangeMin === 'number' && typeof v.portRangeMax === 'number' && v.portRangeMin > v.portRangeMax;
    balanced(fuzz(13, N, draw, (v) => sgRule(v), upsideDown));
  });
});
