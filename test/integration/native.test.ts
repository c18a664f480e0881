// Integration tests of the real addon (build/native/Release/ovnode_native.node). Needs root,
// iproute2, tcpdump, ethtool and ping. Everything happens in two throwaway namespaces joined by a veth
// pair created inside them (and further pairs that deleteLink removes), so the host's links, routes
// and neighbours are never touched and no frame leaves the pair. Addresses come from the documentation ranges (RFC 5737, RFC 3849).
// watchExit watches `sleep` processes started here (each killed by pid before its test ends) and
// runs small Node.js scripts that load the addon in child processes.
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeNative, VETH_FEATURES } from '../../native/fake';
import {
  ADDON_RELATIVE_PATH,
  findRepoRoot,
  isNativeSystemError,
  loadNative,
  type Announcement,
  type NativeOps,
} from '../../native/index';

const id = randomBytes(3).toString('hex');
const NS_A = `ovt-nat-${id}-a`;
const NS_B = `ovt-nat-${id}-b`;
const PATH_A = `/var/run/netns/${NS_A}`;
const PATH_B = `/var/run/netns/${NS_B}`;
const VETH_A = `ovta${id}`;
const VETH_B = `ovtb${id}`;
/** A second veth pair, both ends in NS_A and left down: sending on it fails with ENETDOWN. */
const VETH_DOWN = `ovtc${id}`;
const VETH_DOWN_PEER = `ovtd${id}`;
const IP4_A = '192.0.2.1';
const IP4_B = '192.0.2.2';
const IP6_A = '2001:db8::1';
const IP6_B = '2001:db8::2';
/** The MAC we announce: deliberately not VETH_A's own, so the frames prove they carry ours. */
const ANNOUNCED_MAC = '02:6f:76:6e:00:01';
const STALE_MAC = '02:6f:76:6e:00:99';

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function ipIn(ns: string, args: string[]): string {
  return run('ip', ['-n', ns, ...args]);
}

function requireTools(): void {
  if (process.getuid?.() !== 0) throw new Error('native integration tests need root (netns, raw sockets)');
  for (const tool of ['ip', 'tcpdump', 'ethtool', 'ping']) {
    try {
      run('sh', ['-c', `command -v ${tool}`]);
    } catch {
      throw new Error(`native integration tests need ${tool} on PATH`);
    }
  }
}

/** ethtool -k output as name -> on, for every line "name: on|off[ [fixed]]". */
function ethtoolK(ns: string, ifName: string): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  const text = run('ip', ['netns', 'exec', ns, 'ethtool', '-k', ifName]);
  for (const m of text.matchAll(/^\s*([\w-]+): (on|off)/gm)) {
    out[m[1]!] = m[2] === 'on';
  }
  return out;
}

interface CaptureRequest {
  ns: string;
  ifName: string;
  filter: string;
  count: number;
}

/**
 * Captures `count` frames matching filter on ifName in ns while send() runs; resolves with
 * tcpdump's verbose decode. Send starts only once tcpdump reports it is listening; when it returns
 * a promise, that must settle successfully too before capture resolves.
 */
function capture(req: CaptureRequest, send: () => unknown): Promise<string> {
  const args = ['netns', 'exec', req.ns, 'tcpdump', '-i', req.ifName, '-c', String(req.count)];
  const child = spawn('ip', [...args, '-nn', '-e', '-vv', '-l', '--immediate-mode', req.filter]);
  let stdout = '';
  let stderr = '';
  let sent = false;
  let sending: Promise<unknown> = Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`tcpdump saw no ${req.filter} on ${req.ifName} in 10 s\n${stdout}\n${stderr}`));
    }, 10_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!sent && stderr.includes('listening on')) {
        sent = true;
        const fail = (e: unknown) => {
          clearTimeout(timer);
          child.kill();
          reject(e);
        };
        try {
          sending = Promise.resolve(send());
          sending.catch(fail);
        } catch (e) {
          fail(e);
        }
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) sending.then(() => resolve(stdout), reject);
      else reject(new Error(`tcpdump exited with ${code}: ${stderr}`));
    });
  });
}

/**
 * Waits until ns reaches ip. A veth's carrier is applied by the kernel's linkwatch work up to a
 * second after `link set up`; until then the peer drops IPv6 input for lack of a usable route.
 */
function waitForPath(ns: string, ip: string): void {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      run('ip', ['netns', 'exec', ns, 'ping', '-c', '1', '-W', '0.2', '-q', ip]);
      return;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`no path from ${ns} to ${ip} after 10 s`, { cause: e });
    }
  }
}

function netnsInode(): number {
  return fs.statSync('/proc/thread-self/ns/net').ino;
}

/**
 * The netns ("net:[inode]") of the libuv pool threads, as many readlink()s of
 * /proc/thread-self/ns/net see it: fs.promises runs each on some pool thread, and /proc/thread-self
 * names whichever thread does the readlink. Many at once so that every pool thread answers some.
 */
async function poolThreadNetns(): Promise<Set<string>> {
  const links = await Promise.all(
    Array.from({ length: 64 }, () => fs.promises.readlink('/proc/thread-self/ns/net')),
  );
  return new Set(links);
}

/** Names of the links in ns, as `ip -o link show` lists them (without any @peer suffix). */
function linkNames(ns: string): string[] {
  return [...ipIn(ns, ['-o', 'link', 'show']).matchAll(/^\d+: ([^:@\s]+)/gm)].map((m) => m[1]!);
}

/** A veth pair like a pod's: name in NS_A (the "node"), peer straight in NS_B (the "pod"). */
function addVethAcross(name: string, peer: string): void {
  ipIn(NS_A, ['link', 'add', 'name', name, 'type', 'veth', 'peer', 'name', peer, 'netns', NS_B]);
  expect(linkNames(NS_A)).toContain(name);
  expect(linkNames(NS_B)).toContain(peer);
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

let native: NativeOps;

beforeAll(() => {
  requireTools();
  native = loadNative();
  run('ip', ['netns', 'add', NS_A]);
  run('ip', ['netns', 'add', NS_B]);
  // Created from inside NS_A with the peer placed straight into NS_B: it never exists in the host.
  ipIn(NS_A, ['link', 'add', 'name', VETH_A, 'type', 'veth', 'peer', 'name', VETH_B, 'netns', NS_B]);
  for (const [ns, dev, ip4, ip6] of [[NS_A, VETH_A, IP4_A, IP6_A], [NS_B, VETH_B, IP4_B, IP6_B]] as const) {
    ipIn(ns, ['addr', 'add', `${ip4}/24`, 'dev', dev]);
    ipIn(ns, ['addr', 'add', `${ip6}/64`, 'dev', dev, 'nodad']);
    ipIn(ns, ['link', 'set', dev, 'up']);
    ipIn(ns, ['link', 'set', 'lo', 'up']);
  }
  ipIn(NS_A, ['link', 'add', 'name', VETH_DOWN, 'type', 'veth', 'peer', 'name', VETH_DOWN_PEER]);
  waitForPath(NS_A, IP4_B);
  waitForPath(NS_A, IP6_B);
});

afterAll(() => {
  // Deleting NS_A destroys the veth pair with it.
  for (const ns of [NS_A, NS_B]) {
    try {
      run('ip', ['netns', 'del', ns]);
    } catch {
      // not created: setup failed before it
    }
  }
});

describe('Netns', () => {
  it('runs the callback inside the netns and returns its value', () => {
    const outside = netnsInode();
    const inside = native.runIn(PATH_A, () => ({
      ino: netnsInode(),
      links: Object.keys(os.networkInterfaces()),
    }));
    expect(inside.ino).toBe(fs.statSync(PATH_A).ino);
    expect(inside.ino).not.toBe(outside);
    expect(inside.links).toContain(VETH_A);
    expect(netnsInode()).toBe(outside);
  });

  it('nests: the inner runIn returns to the outer netns', () => {
    const seen = native.runIn(PATH_A, () => {
      const inner = native.runIn(PATH_B, netnsInode);
      return { inner, back: netnsInode() };
    });
    expect(seen).toEqual({ inner: fs.statSync(PATH_B).ino, back: fs.statSync(PATH_A).ino });
  });

  it('restores the original netns when the callback throws, rethrowing the same error', () => {
    const outside = netnsInode();
    const failure = new RangeError('callback failed');
    let caught: unknown;
    try {
      native.runIn(PATH_A, () => {
        throw failure;
      });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBe(failure);
    expect(netnsInode()).toBe(outside);
  });

  it('throws a system error naming setns and the path for a missing netns', () => {
    const missing = `/var/run/netns/ovt-nat-${id}-missing`;
    let caught: unknown;
    try {
      native.runIn(missing, () => 1);
    } catch (e) {
      caught = e;
    }
    expect(isNativeSystemError(caught)).toBe(true);
    expect(caught).toMatchObject({
      message: `setns(${missing}): No such file or directory`,
      code: 'ENOENT',
      errno: 2,
      syscall: 'open',
    });
  });

  it('refuses a namespace file of another type', () => {
    expect(() => native.runIn('/proc/self/ns/uts', () => 1)).toThrow(
      'setns(/proc/self/ns/uts): Invalid argument (not a network namespace)',
    );
  });

  it.each([
    { desc: 'named netns', path: PATH_A, want: true },
    { desc: 'process netns', path: '/proc/self/ns/net', want: true },
    { desc: 'missing path', path: `/var/run/netns/ovt-nat-${id}-missing`, want: false },
    { desc: 'regular file', path: '/etc/hostname', want: false },
    { desc: 'other namespace type', path: '/proc/self/ns/uts', want: false },
  ])('exists: $desc', ({ path, want }) => {
    expect(native.exists(path)).toBe(want);
  });
});

describe('Packets', () => {
  it('sends a gratuitous ARP that the peer receives and uses to update its neighbour', async () => {
    ipIn(NS_B, ['neigh', 'replace', IP4_A, 'lladdr', STALE_MAC, 'dev', VETH_B, 'nud', 'stale']);
    const filter = `arp and ether src ${ANNOUNCED_MAC}`;
    const req = { ifName: VETH_A, mac: ANNOUNCED_MAC, ip: IP4_A, count: 2 };
    const out = await capture({ ns: NS_B, ifName: VETH_B, filter, count: 2 }, () =>
      native.runIn(PATH_A, () => native.sendGratuitousArp(req)),
    );
    expect(out).toContain(`${ANNOUNCED_MAC} > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 60`);
    expect(out).toContain(`Request who-has ${IP4_A} tell ${IP4_A}`);
    expect(ipIn(NS_B, ['neigh', 'show', IP4_A, 'dev', VETH_B])).toContain(`lladdr ${ANNOUNCED_MAC}`);
  });

  it('sends an unsolicited NA with a valid checksum that overrides the peer neighbour', async () => {
    ipIn(NS_B, ['-6', 'neigh', 'replace', IP6_A, 'lladdr', STALE_MAC, 'dev', VETH_B, 'nud', 'stale']);
    const filter = `icmp6 and ether src ${ANNOUNCED_MAC}`;
    const out = await capture({ ns: NS_B, ifName: VETH_B, filter, count: 1 }, () =>
      native.runIn(PATH_A, () => native.sendUnsolicitedNa({ ifName: VETH_A, mac: ANNOUNCED_MAC, ip: IP6_A })),
    );
    expect(out).toContain(`${ANNOUNCED_MAC} > 33:33:00:00:00:01, ethertype IPv6 (0x86dd)`);
    expect(out).toContain('hlim 255');
    expect(out).toContain(`${IP6_A} > ff02::1: [icmp6 sum ok] ICMP6, neighbor advertisement`);
    expect(out).toContain(`tgt is ${IP6_A}, Flags [override]`);
    expect(out).toContain(`destination link-address option (2), length 8 (1): ${ANNOUNCED_MAC}`);
    // The kernel accepted it (checksum, hop limit, flags) and applied the Override flag.
    expect(ipIn(NS_B, ['-6', 'neigh', 'show', IP6_A, 'dev', VETH_B])).toContain(`lladdr ${ANNOUNCED_MAC}`);
  });

  it('acts in the current netns only: the veth is unknown outside runIn', () => {
    expect(() => native.sendGratuitousArp({ ifName: VETH_A, mac: ANNOUNCED_MAC, ip: IP4_A })).toThrow(
      `if_nametoindex(${VETH_A}): No such device`,
    );
  });

  it('rejects an address of the wrong family before sending', () => {
    expect(() =>
      native.runIn(PATH_A, () => native.sendUnsolicitedNa({ ifName: VETH_A, mac: ANNOUNCED_MAC, ip: IP4_A })),
    ).toThrow(`sendUnsolicitedNa: "${IP4_A}" is not an IPv6 address`);
  });
});

describe('Packets.announce', () => {
  const garp: Announcement = { kind: 'garp', ifName: VETH_A, mac: ANNOUNCED_MAC, ip: IP4_A };
  const na: Announcement = { kind: 'na', ifName: VETH_A, mac: ANNOUNCED_MAC, ip: IP6_A };

  it('sends the GARP and the NA from the netns; the peer receives and applies both', async () => {
    ipIn(NS_B, ['neigh', 'replace', IP4_A, 'lladdr', STALE_MAC, 'dev', VETH_B, 'nud', 'stale']);
    ipIn(NS_B, ['-6', 'neigh', 'replace', IP6_A, 'lladdr', STALE_MAC, 'dev', VETH_B, 'nud', 'stale']);
    const outside = netnsInode();
    const filter = `ether src ${ANNOUNCED_MAC} and (arp or icmp6)`;
    // Called outside any runIn: VETH_A exists only in NS_A, so the frames prove the worker entered it.
    const out = await capture({ ns: NS_B, ifName: VETH_B, filter, count: 2 }, () =>
      native.announce(PATH_A, [garp, na]),
    );
    expect(out).toContain(`${ANNOUNCED_MAC} > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 60`);
    expect(out).toContain(`Request who-has ${IP4_A} tell ${IP4_A}`);
    expect(out).toContain(`${ANNOUNCED_MAC} > 33:33:00:00:00:01, ethertype IPv6 (0x86dd)`);
    expect(out).toContain(`${IP6_A} > ff02::1: [icmp6 sum ok] ICMP6, neighbor advertisement`);
    expect(out).toContain(`tgt is ${IP6_A}, Flags [override]`);
    expect(ipIn(NS_B, ['neigh', 'show', IP4_A, 'dev', VETH_B])).toContain(`lladdr ${ANNOUNCED_MAC}`);
    expect(ipIn(NS_B, ['-6', 'neigh', 'show', IP6_A, 'dev', VETH_B])).toContain(`lladdr ${ANNOUNCED_MAC}`);
    // The calling (JavaScript) thread never left its netns.
    expect(netnsInode()).toBe(outside);
  });

  it('does not block the event loop: a setImmediate scheduled before runs before it resolves', async () => {
    const order: string[] = [];
    setImmediate(() => order.push('immediate'));
    const p = native.announce(PATH_A, [
      { ...garp, count: 3 },
      { ...na, count: 3 },
    ]);
    let settled = false;
    void p.then(() => (settled = true));
    // A completion from the worker is only delivered by a later turn of the event loop.
    await Promise.resolve();
    expect(settled).toBe(false);
    await p;
    order.push('resolved');
    // A synchronous implementation behind a promise would resolve in the microtask queue, before
    // the event loop reaches setImmediate; the worker still closing its packet socket (an RCU
    // grace period, milliseconds) leaves the loop free to run the callback first.
    expect(order).toEqual(['immediate', 'resolved']);
  });

  it('rejects a missing netns path with ENOENT, like runIn', async () => {
    const missing = `/var/run/netns/ovt-nat-${id}-missing`;
    const e = await rejection(native.announce(missing, [garp]));
    expect(isNativeSystemError(e)).toBe(true);
    expect(e).toMatchObject({
      message: `setns(${missing}): No such file or directory`,
      code: 'ENOENT',
      errno: 2,
      syscall: 'open',
    });
  });

  it('rejects failures inside the netns with the synchronous calls\' errors', async () => {
    await expect(native.announce(PATH_A, [garp, { ...na, ifName: 'ovt-none' }])).rejects.toMatchObject({
      message: 'if_nametoindex(ovt-none): No such device',
      code: 'ENODEV',
    });
    await expect(native.announce(PATH_A, [{ ...garp, ifName: VETH_DOWN }])).rejects.toMatchObject({
      message: `sendto(${VETH_DOWN}): Network is down`,
      code: 'ENETDOWN',
      syscall: 'sendto',
    });
    await expect(native.announce('/proc/self/ns/uts', [garp])).rejects.toThrow(
      'setns(/proc/self/ns/uts): Invalid argument (not a network namespace)',
    );
  });

  it('rejects invalid arguments with a TypeError, without throwing', async () => {
    const p = native.announce(PATH_A, [garp, { ...na, ip: IP4_A }]);
    await expect(p).rejects.toThrow(TypeError);
    await expect(p).rejects.toThrow(`announce: announcements[1]: "${IP4_A}" is not an IPv6 address`);
  });

  it('resolves for an empty list', async () => {
    await expect(native.announce(PATH_A, [])).resolves.toBeUndefined();
  });

  it('returns every pool thread to its own netns, after success and after failure alike', async () => {
    const host = fs.readlinkSync('/proc/thread-self/ns/net');
    expect(await poolThreadNetns()).toEqual(new Set([host]));
    const outside = netnsInode();
    // More concurrent calls than pool threads (4 by default), so that every thread runs some,
    // into both namespaces, failing after setns (unknown link, down link) as well as succeeding.
    const calls: Promise<void>[] = [];
    for (let i = 0; i < 4; i++) {
      calls.push(native.announce(PATH_A, [garp, na]));
      calls.push(native.announce(PATH_B, [{ ...garp, ifName: VETH_B }]));
      calls.push(native.announce(PATH_A, [{ ...garp, ifName: 'ovt-none' }]));
      calls.push(native.announce(PATH_A, [{ ...na, ifName: VETH_DOWN }]));
    }
    const results = await Promise.allSettled(calls);
    expect(results.map((r) => r.status)).toEqual(
      Array.from({ length: 4 }, () => ['fulfilled', 'fulfilled', 'rejected', 'rejected']).flat(),
    );
    expect(netnsInode()).toBe(outside);
    expect(await poolThreadNetns()).toEqual(new Set([host]));
  });
});

describe('Links.deleteLink', () => {
  it('deletes both ends of a veth pair from the netns, then finds no such link', async () => {
    const [name, peer] = [`ovte${id}`, `ovtf${id}`];
    addVethAcross(name, peer);
    const outside = netnsInode();
    const host = fs.readlinkSync('/proc/thread-self/ns/net');
    // Called outside any runIn: the link exists only in NS_A, so true proves the worker entered it.
    await expect(native.deleteLink(PATH_A, name)).resolves.toBe(true);
    expect(linkNames(NS_A)).not.toContain(name);
    expect(linkNames(NS_B)).not.toContain(peer);
    await expect(native.deleteLink(PATH_A, name)).resolves.toBe(false);
    // The peer went with it: nothing of that name is left in NS_B either.
    await expect(native.deleteLink(PATH_B, peer)).resolves.toBe(false);
    // The JavaScript thread never left its netns, and the pool threads are back in theirs.
    expect(netnsInode()).toBe(outside);
    expect(await poolThreadNetns()).toEqual(new Set([host]));
  });

  it('does not block the event loop: a setImmediate scheduled before runs before it resolves', async () => {
    const [name, peer] = [`ovtg${id}`, `ovth${id}`];
    addVethAcross(name, peer);
    const order: string[] = [];
    setImmediate(() => order.push('immediate'));
    const p = native.deleteLink(PATH_A, name);
    let settled = false;
    void p.then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    // The worker's RTM_DELLINK waits for an RCU grace period; the loop runs the callback meanwhile.
    await expect(p).resolves.toBe(true);
    order.push('resolved');
    expect(order).toEqual(['immediate', 'resolved']);
    expect(linkNames(NS_A)).not.toContain(name);
  });

  it('works with the daemon\'s form of path: /proc/<pid>/fd/<fd> of its own /proc/thread-self/ns/net', async () => {
    const [name, peer] = [`ovti${id}`, `ovtj${id}`];
    addVethAcross(name, peer);
    // The daemon opens this at start in its node netns; here the thread is in NS_A while it opens,
    // so that the fd names NS_A and the host's links stay out of reach.
    const fd = native.runIn(PATH_A, () => fs.openSync('/proc/thread-self/ns/net', 'r'));
    try {
      const fdPath = `/proc/${process.pid}/fd/${fd}`;
      expect(fs.statSync(fdPath).ino).toBe(fs.statSync(PATH_A).ino);
      await expect(native.deleteLink(fdPath, name)).resolves.toBe(true);
      expect(linkNames(NS_A)).not.toContain(name);
      expect(linkNames(NS_B)).not.toContain(peer);
      await expect(native.deleteLink(fdPath, name)).resolves.toBe(false);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('rejects a missing netns path with ENOENT, like runIn', async () => {
    const missing = `/var/run/netns/ovt-nat-${id}-missing`;
    const e = await rejection(native.deleteLink(missing, VETH_A));
    expect(isNativeSystemError(e)).toBe(true);
    expect(e).toMatchObject({
      message: `setns(${missing}): No such file or directory`,
      code: 'ENOENT',
      errno: 2,
      syscall: 'open',
    });
    await expect(native.deleteLink('/proc/self/ns/uts', VETH_A)).rejects.toThrow(
      'setns(/proc/self/ns/uts): Invalid argument (not a network namespace)',
    );
  });

  it('rejects what the kernel refuses as RTM_DELLINK(ifName): errno text', async () => {
    // The loopback device has no dellink operation.
    const e = await rejection(native.deleteLink(PATH_A, 'lo'));
    expect(isNativeSystemError(e)).toBe(true);
    expect(e).toMatchObject({
      message: 'RTM_DELLINK(lo): Operation not supported',
      code: 'EOPNOTSUPP',
      syscall: 'RTM_DELLINK',
    });
    expect(linkNames(NS_A)).toContain('lo');
  });

  it.each([
    { desc: 'empty', name: '' },
    { desc: '16 characters', name: 'x'.repeat(16) },
    { desc: "a '/'", name: 'ovt/x' },
    { desc: 'a space', name: `${VETH_A} ` },
    { desc: 'a tab', name: 'ovt\tx' },
  ])('rejects an invalid name with a TypeError, without throwing: $desc', async ({ name }) => {
    let p: Promise<boolean> | undefined;
    expect(() => (p = native.deleteLink(PATH_A, name))).not.toThrow();
    const e = await rejection(p!);
    expect(e).toBeInstanceOf(TypeError);
    expect((e as Error).message).toBe(`deleteLink: invalid interface name "${name}"`);
    expect(linkNames(NS_A)).toContain(VETH_A);
  });
});

describe('Ethtool', () => {
  it('getFeatures agrees with ethtool -k', () => {
    const features = native.runIn(PATH_A, () => native.getFeatures(VETH_A));
    const reported = ethtoolK(NS_A, VETH_A);
    const shared = Object.keys(features).filter((name) => name in reported);
    expect(shared.length).toBeGreaterThan(20);
    for (const name of shared) expect(features[name], name).toBe(reported[name]);
  });

  it('setFeatures changes a feature and rejects unknown names', () => {
    native.runIn(PATH_A, () => native.setFeatures(VETH_A, { 'rx-gro': true }));
    expect(ethtoolK(NS_A, VETH_A)['generic-receive-offload']).toBe(true);
    native.runIn(PATH_A, () => native.setFeatures(VETH_A, { 'rx-gro': false }));
    expect(ethtoolK(NS_A, VETH_A)['generic-receive-offload']).toBe(false);
    expect(() => native.runIn(PATH_A, () => native.setFeatures(VETH_A, { 'rx-bogus': true }))).toThrow(
      `setFeatures(${VETH_A}): unknown feature "rx-bogus"`,
    );
  });

  it('disableTxChecksum does what ethtool -K tx off does', () => {
    native.runIn(PATH_A, () => native.disableTxChecksum(VETH_A));
    expect(run('ip', ['netns', 'exec', NS_A, 'ethtool', '-k', VETH_A])).toMatch(/^tx-checksumming: off$/m);
    const after = native.runIn(PATH_A, () => native.getFeatures(VETH_A));
    expect(after).toMatchObject({
      'tx-checksum-ip-generic': false,
      'tx-checksum-sctp': false,
      'tx-tcp-segmentation': false,
    });
    // TSO now needs a checksum the device no longer offers: the kernel keeps it off, we say so.
    const enableTso = () => native.setFeatures(VETH_A, { 'tx-tcp-segmentation': true });
    const refused = `setFeatures(${VETH_A}): tx-tcp-segmentation stays off`;
    expect(() => native.runIn(PATH_A, enableTso)).toThrow(refused);
  });
});

describe('Processes.watchExit', () => {
  const addonFile = path.join(findRepoRoot(), ADDON_RELATIVE_PATH);

  /** A `sleep 30` child of ours, detached (its own session) and unreferenced. */
  function startChild(): number {
    const child = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    child.unref();
    if (child.pid === undefined) throw new Error('sleep did not start');
    return child.pid;
  }

  interface Grandchild {
    /** The sleep's. */
    pid: number;
    shell: ChildProcess;
  }

  /**
   * A `sleep 30` that is not our child: a shell of ours starts it in the background, prints its
   * pid and waits for it, so that the sleep has a parent that reaps it at once (pid 1 may reap
   * orphans late, or never). End it with stopGrandchild.
   */
  async function startGrandchild(): Promise<Grandchild> {
    const shell = spawn('sh', ['-c', 'sleep 30 </dev/null >/dev/null 2>&1 & echo $!; wait'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        shell.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) resolve(out.trim());
        });
        shell.on('error', reject);
        shell.on('exit', () => reject(new Error(`sh exited before printing a pid: ${out}`)));
      });
      return { pid: Number(line), shell };
    } catch (e) {
      shell.kill('SIGKILL');
      throw e;
    }
  }

  /** Kills the sleep, then lets its (resumed) shell reap it and exit; kills the shell after 2 s. */
  async function stopGrandchild({ pid, shell }: Grandchild): Promise<void> {
    kill(pid);
    if (shell.exitCode !== null || shell.signalCode !== null) return;
    const exited = new Promise((resolve) => shell.once('exit', resolve));
    shell.kill('SIGCONT');
    if ((await within(exited, 2000)) === 'pending') shell.kill('SIGKILL');
  }

  function parentOf(pid: number): number {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may contain spaces and parentheses, so start after the last ')'.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  }

  function kill(...pids: number[]): void {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
      }
    }
  }

  /** How p stands after waiting up to ms for it. */
  async function within(p: Promise<unknown>, ms: number): Promise<'fulfilled' | 'rejected' | 'pending'> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), ms)));
    try {
      return await Promise.race([p.then(() => 'fulfilled' as const, () => 'rejected' as const), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The pidfds this process holds open ("anon_inode:[pidfd]", or "pidfd:[...]" with pidfs). */
  function openPidfds(): number {
    let count = 0;
    for (const fd of fs.readdirSync('/proc/self/fd')) {
      try {
        if (/pidfd/.test(fs.readlinkSync(`/proc/self/fd/${fd}`))) count++;
      } catch {
        // closed since readdir
      }
    }
    return count;
  }

  /** Lets libuv finish pending uv_close calls (close callbacks run at the end of a loop turn). */
  const nextTurn = () => new Promise((resolve) => setTimeout(resolve, 10));

  /** Kills pid and measures how long watch.exited then takes to resolve. */
  async function msToResolveAfterKill(pid: number, exited: Promise<void>): Promise<number> {
    expect(await within(exited, 100)).toBe('pending');
    const killedAt = performance.now();
    kill(pid);
    expect(await within(exited, 1000)).toBe('fulfilled');
    return performance.now() - killedAt;
  }

  it('resolves within a second of SIGKILL for a child of ours', async () => {
    const pid = startChild();
    try {
      const watch = native.watchExit(pid);
      expect(await msToResolveAfterKill(pid, watch.exited)).toBeLessThan(1000);
      expect(() => watch.cancel()).not.toThrow(); // after the exit: a no-op
    } finally {
      kill(pid);
    }
  });

  it('resolves within a second of SIGKILL for a process that is not our child', async () => {
    const grandchild = await startGrandchild();
    try {
      expect(parentOf(grandchild.pid)).toBe(grandchild.shell.pid);
      expect(grandchild.shell.pid).not.toBe(process.pid);
      const watch = native.watchExit(grandchild.pid);
      expect(await msToResolveAfterKill(grandchild.pid, watch.exited)).toBeLessThan(1000);
    } finally {
      await stopGrandchild(grandchild);
    }
  });

  it('resolves every watch of the process, and one set up after the exit but before the reaping', async () => {
    const grandchild = await startGrandchild();
    const { pid } = grandchild;
    try {
      // A stopped shell does not reap: the killed sleep stays a zombie, which keeps its pid.
      grandchild.shell.kill('SIGSTOP');
      const watches = [native.watchExit(pid), native.watchExit(pid), native.watchExit(pid)];
      kill(pid);
      await Promise.all(watches.map((w) => w.exited));
      expect(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')).toMatch(/\) Z /);
      const late = native.watchExit(pid);
      expect(await within(late.exited, 1000)).toBe('fulfilled');
    } finally {
      await stopGrandchild(grandchild);
    }
  });

  it('rejects with ESRCH when there is no such process', async () => {
    // Pids stay below pid_max, which is at most 2^22.
    const reaped = spawnSync('true').pid;
    for (const pid of [2 ** 22, reaped]) {
      const watch = native.watchExit(pid);
      const e = await rejection(watch.exited);
      expect(isNativeSystemError(e)).toBe(true);
      expect(e).toMatchObject({
        message: `pidfd_open(${pid}): No such process`,
        code: 'ESRCH',
        errno: 3,
        syscall: 'pidfd_open',
      });
      expect(() => watch.cancel()).not.toThrow();
    }
  });

  it.each([0, -1, 1.5, NaN, Infinity, 2 ** 31, '1', undefined, null])(
    'throws a TypeError at once for pid %s',
    (pid) => {
      expect(() => native.watchExit(pid as number)).toThrow(TypeError);
      expect(() => native.watchExit(pid as number)).toThrow('watchExit: pid must be an integer from 1 to 2147483647');
    },
  );

  it('cancel leaves the promise pending and closes the pidfd; a second cancel is a no-op', async () => {
    const pid = startChild();
    try {
      await nextTurn();
      const before = openPidfds();
      const cancelled = native.watchExit(pid);
      const kept = native.watchExit(pid);
      expect(openPidfds()).toBe(before + 2);
      cancelled.cancel();
      cancelled.cancel();
      await nextTurn();
      expect(openPidfds()).toBe(before + 1);
      kill(pid);
      await kept.exited;
      expect(await within(cancelled.exited, 300)).toBe('pending');
      kept.cancel();
      await nextTurn();
      expect(openPidfds()).toBe(before);
    } finally {
      kill(pid);
    }
  });

  it('stays pending for a process that lives on (our own) until cancelled', async () => {
    const watch = native.watchExit(process.pid);
    expect(await within(watch.exited, 100)).toBe('pending');
    watch.cancel();
  });

  /** Runs script with `node -e`, args after it; resolves with its output once it ends by itself. */
  async function runNode(script: string, args: string[] = []): Promise<{ stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      execFile(process.execPath, ['-e', script, ...args], { timeout: 10_000 }, (error, stdout, stderr) => {
        if (error) reject(new Error(`${error.message}\nstdout: ${stdout}\nstderr: ${stderr}`, { cause: error }));
        else resolve({ stdout, stderr });
      });
    });
  }

  // The watched sleep outlives each script by far: a watch that kept the loop alive would have
  // the script killed by runNode's timeout. The worker cases are where Node.js unloads the addon
  // after the teardown, which must wait for the watches' handles to close.
  const endings: { desc: string; script: (addon: string, pid: number) => string; stdout: string }[] = [
    {
      desc: 'a script that ends with watches pending and closing',
      script: (addon, pid) => `
        const native = require(${JSON.stringify(addon)});
        native.watchExit(${pid}).exited.then(() => { console.log('settled'); process.exitCode = 1; });
        native.watchExit(${pid}).cancel();
        console.log('armed');`,
      stdout: 'armed\n',
    },
    {
      desc: 'process.exit() with watches pending and closing',
      script: (addon, pid) => `
        const native = require(${JSON.stringify(addon)});
        native.watchExit(${pid});
        native.watchExit(${pid}).cancel();
        setImmediate(() => process.exit(0));`,
      stdout: '',
    },
    {
      desc: 'a worker thread that ends with watches pending and closing',
      script: (addon, pid) => `
        const { Worker } = require('node:worker_threads');
        const worker = new Worker(\`
          const native = require(${JSON.stringify(addon)});
          native.watchExit(${pid});
          native.watchExit(${pid}).cancel();\`, { eval: true });
        worker.on('exit', (code) => console.log('worker exit ' + code));`,
      stdout: 'worker exit 0\n',
    },
    {
      desc: 'a worker thread terminated with many watches pending and closing',
      script: (addon, pid) => `
        const { Worker } = require('node:worker_threads');
        const worker = new Worker(\`
          const native = require(${JSON.stringify(addon)});
          for (let i = 0; i < 100; i++) native.watchExit(${pid});
          for (let i = 0; i < 50; i++) native.watchExit(${pid}).cancel();
          setInterval(() => {}, 1000);
          require('node:worker_threads').parentPort.postMessage('armed');\`, { eval: true });
        worker.on('message', () => worker.terminate().then((code) => console.log('terminated ' + code)));`,
      stdout: 'terminated 1\n',
    },
  ];

  it.each(endings)('does not keep the process alive, nor crash its teardown: $desc', async ({ script, stdout }) => {
    const pid = startChild();
    try {
      const result = await runNode(script(addonFile, pid));
      expect(result).toEqual({ stdout, stderr: '' });
      expect(parentOf(pid)).toBe(process.pid); // still alive: the script ended by itself
    } finally {
      kill(pid);
    }
  });

  it('settles from the loop: whoever awaits exited runs at once, with nothing else to wake the loop', async () => {
    const pid = startChild();
    // Nothing but the guard timer keeps the script alive or wakes its loop: the exit alone must
    // bring the reaction about, promptly.
    const script = `
      const native = require(${JSON.stringify(addonFile)});
      const guard = setTimeout(() => { console.log('reaction did not run'); process.exit(2); }, 5000);
      native.watchExit(${pid}).exited.then(() => { clearTimeout(guard); console.log('exited'); });
      console.log('armed');`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let stdout = '';
      let stderr = '';
      let killedAt = 0;
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
          if (killedAt === 0 && stdout.includes('armed\n')) {
            killedAt = performance.now();
            kill(pid);
          }
        });
        child.on('error', reject);
        child.on('close', resolve);
      });
      expect({ code, stdout, stderr }).toEqual({ code: 0, stdout: 'armed\nexited\n', stderr: '' });
      expect(performance.now() - killedAt).toBeLessThan(2000);
    } finally {
      kill(pid, child.pid!);
    }
  });
});

describe('FakeNative parity', () => {
  // Unit tests elsewhere trust the fake's errors; pin them to the addon's for the same mistakes.
  const good = { ifName: VETH_A, mac: ANNOUNCED_MAC, ip: IP4_A };
  // Each call runs inside NS_A unless outside is set.
  const cases: { desc: string; call: (ops: NativeOps) => unknown; outside?: boolean }[] = [
    {
      desc: 'missing netns',
      call: (ops) => ops.runIn(`/var/run/netns/ovt-nat-${id}-missing`, () => 1),
      outside: true,
    },
    { desc: 'unknown link', call: (ops) => ops.getFeatures('ovt-none') },
    { desc: 'link outside runIn', call: (ops) => ops.sendGratuitousArp(good), outside: true },
    { desc: 'too long a name', call: (ops) => ops.disableTxChecksum('x'.repeat(16)) },
    { desc: 'unknown feature', call: (ops) => ops.setFeatures(VETH_A, { nope: true }) },
    { desc: 'bad MAC', call: (ops) => ops.sendGratuitousArp({ ...good, mac: '02:00' }) },
    { desc: 'multicast MAC', call: (ops) => ops.sendGratuitousArp({ ...good, mac: '33:33:00:00:00:01' }) },
    { desc: 'wrong family', call: (ops) => ops.sendUnsolicitedNa(good) },
    { desc: 'count too big', call: (ops) => ops.sendGratuitousArp({ ...good, count: 101 }) },
  ];

  it.each(cases)('same error: $desc', ({ call: op, outside }) => {
    const call = (ops: NativeOps) => (outside ? op(ops) : ops.runIn(PATH_A, () => op(ops)));
    const fake = new FakeNative().addNetns(PATH_A).addLink(VETH_A, { netns: PATH_A });
    const errorOf = (ops: NativeOps) => {
      try {
        call(ops);
      } catch (e) {
        const { name, message, code, errno, syscall } = e as Error & Record<string, unknown>;
        return { name, message, code, errno, syscall };
      }
      throw new Error('expected a throw');
    };
    expect(errorOf(fake)).toEqual(errorOf(native));
  });

  const missingNs = `/var/run/netns/ovt-nat-${id}-missing`;
  const announcement: Announcement = { kind: 'garp', ...good };
  const announceCases: { desc: string; args: unknown[] }[] = [
    { desc: 'missing netns', args: [missingNs, [announcement]] },
    { desc: 'missing netns, empty list', args: [missingNs, []] },
    { desc: 'unknown link', args: [PATH_A, [announcement, { ...announcement, ifName: 'ovt-none' }]] },
    { desc: 'netns path not a string', args: [undefined, [announcement]] },
    { desc: 'list not an array', args: [PATH_A, announcement] },
    { desc: 'entry not an object', args: [PATH_A, [null]] },
    { desc: 'unknown kind', args: [PATH_A, [{ ...announcement, kind: 'ndp' }]] },
    { desc: 'wrong family for the kind', args: [PATH_A, [{ ...announcement, kind: 'na' }]] },
    { desc: 'ifName missing', args: [PATH_A, [{ ...announcement, ifName: undefined }]] },
    { desc: 'MAC missing', args: [PATH_A, [{ ...announcement, mac: '' }]] },
    { desc: 'ip not a string', args: [PATH_A, [{ ...announcement, ip: 7 }]] },
    { desc: 'bad MAC', args: [PATH_A, [{ ...announcement, mac: 'zz:00:00:00:00:01' }]] },
    { desc: 'count too big', args: [PATH_A, [announcement, { ...announcement, count: 101 }]] },
  ];

  it.each(announceCases)('same rejection from announce: $desc', async ({ args }) => {
    const fake = new FakeNative().addNetns(PATH_A).addLink(VETH_A, { netns: PATH_A });
    const errorOf = async (ops: NativeOps) => {
      const announce = ops.announce.bind(ops) as (...a: unknown[]) => Promise<void>;
      const { name, message, code, errno, syscall } = (await rejection(announce(...args))) as Error &
        Record<string, unknown>;
      return { name, message, code, errno, syscall };
    };
    expect(await errorOf(fake)).toEqual(await errorOf(native));
  });

  const deleteLinkCases: { desc: string; args: unknown[] }[] = [
    { desc: 'missing netns', args: [missingNs, VETH_A] },
    { desc: 'netns path not a string', args: [null, VETH_A] },
    { desc: 'name not a string', args: [PATH_A, 7] },
    { desc: 'empty name', args: [PATH_A, ''] },
    { desc: '16 characters', args: [PATH_A, 'x'.repeat(16)] },
    { desc: '16 bytes in 15 characters', args: [PATH_A, `${'x'.repeat(14)}é`] },
    { desc: "a '/'", args: [PATH_A, 'a/b'] },
    { desc: 'whitespace', args: [PATH_A, 'a\nb'] },
  ];

  it.each(deleteLinkCases)('same rejection from deleteLink: $desc', async ({ args }) => {
    const fake = new FakeNative().addNetns(PATH_A).addLink(VETH_A, { netns: PATH_A });
    const errorOf = async (ops: NativeOps) => {
      const deleteLink = ops.deleteLink.bind(ops) as (...a: unknown[]) => Promise<boolean>;
      const { name, message, code, errno, syscall } = (await rejection(deleteLink(...args))) as Error &
        Record<string, unknown>;
      return { name, message, code, errno, syscall };
    };
    expect(await errorOf(fake)).toEqual(await errorOf(native));
  });

  it('same answer from deleteLink for a link that is not there', async () => {
    const fake = new FakeNative().addNetns(PATH_A);
    await expect(fake.deleteLink(PATH_A, 'ovt-none')).resolves.toBe(false);
    await expect(native.deleteLink(PATH_A, 'ovt-none')).resolves.toBe(false);
  });

  it('same error for the synchronous calls given a non-object or missing fields', () => {
    const fake = new FakeNative().addNetns(PATH_A).addLink(VETH_A, { netns: PATH_A });
    const calls: ((ops: NativeOps) => unknown)[] = [
      (ops) => ops.sendGratuitousArp(null as never),
      (ops) => ops.sendUnsolicitedNa({ ...good, ip: undefined } as never),
      (ops) => ops.sendGratuitousArp({ ...good, mac: undefined } as never),
    ];
    for (const call of calls) {
      const messageOf = (ops: NativeOps) => {
        try {
          ops.runIn(PATH_A, () => call(ops));
        } catch (e) {
          return `${(e as Error).name}: ${(e as Error).message}`;
        }
        throw new Error('expected a throw');
      };
      expect(messageOf(fake)).toBe(messageOf(native));
    }
  });

  it('models a fresh veth and what the kernel drops with its TX checksum', () => {
    // Only the features the fake models; a newer kernel may report more.
    const realFeatures = () => {
      const all = native.runIn(PATH_B, () => native.getFeatures(VETH_B));
      return Object.fromEntries(Object.keys(VETH_FEATURES).map((name) => [name, all[name]]));
    };
    const fake = new FakeNative().addLink('eth0');
    expect(realFeatures()).toEqual(VETH_FEATURES);
    fake.disableTxChecksum('eth0');
    native.runIn(PATH_B, () => native.disableTxChecksum(VETH_B));
    expect(realFeatures()).toEqual(fake.featuresOf(null, 'eth0'));
  });
});

describe('FakeNative parity: watchExit', () => {
  /** What a call does: its synchronous throw, or how exited settles (a rejection, or 'resolved'). */
  async function outcome(ops: NativeOps, pid: unknown): Promise<unknown> {
    let watch;
    try {
      watch = ops.watchExit(pid as number);
    } catch (e) {
      const { name, message } = e as Error;
      return { thrown: { name, message } };
    }
    try {
      await watch.exited;
      return 'resolved';
    } catch (e) {
      const { name, message, code, errno, syscall } = e as Error & Record<string, unknown>;
      return { rejected: { name, message, code, errno, syscall } };
    }
  }

  it.each([0, -7, 2.5, NaN, 2 ** 31, '42', undefined, 2 ** 22])('same outcome for pid %s', async (pid) => {
    expect(await outcome(new FakeNative(), pid)).toEqual(await outcome(native, pid));
  });

  it('same outcome for a process that exits', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    const pid = child.pid!;
    try {
      const fake = new FakeNative().addProcess(pid);
      const real = outcome(native, pid);
      const faked = outcome(fake, pid);
      process.kill(pid, 'SIGKILL');
      fake.exitProcess(pid);
      expect(await faked).toEqual(await real);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
