// Integration tests of moveLink in the real addon (build/native/Release/ovnode_native.node). Needs
// root and iproute2. Veth pairs stand in for SR-IOV VFs: both are netdevs the kernel moves between
// netns the same way (dev_change_net_namespace). Everything happens in two throwaway netns, A and
// B; nothing is ever moved into or out of the host's netns, and deleting A and B at the end
// destroys every link the tests made, wherever it ended up. Checks what the kernel ended up with
// through `ip -n -j`, and that FakeNative answers the same calls with the same errors and state.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeNative } from '../../native/fake';
import { isNativeSystemError, loadNative, type LinkMove, type NativeOps } from '../../native/index';

const id = randomBytes(3).toString('hex');
const NS_A = `ovt-mvl-${id}-a`;
const NS_B = `ovt-mvl-${id}-b`;
const PATH_A = `/var/run/netns/${NS_A}`;
const PATH_B = `/var/run/netns/${NS_B}`;
const MISSING = `/var/run/netns/ovt-mvl-${id}-missing`;
const MAC = '02:6f:76:6e:10:01';

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

interface IpLink { ifindex: number; ifname: string; flags: string[]; mtu: number; address: string }

function linksIn(ns: string): IpLink[] {
  return JSON.parse(run('ip', ['-n', ns, '-j', 'link', 'show'])) as IpLink[];
}

function linkIn(ns: string, name: string): IpLink | undefined {
  return linksIn(ns).find((l) => l.ifname === name);
}

function names(ns: string): string[] {
  return linksIn(ns).map((l) => l.ifname);
}

let pairs = 0;
/** A fresh veth pair with both ends in ns, the first end up; returns the first end's name. */
function veth(ns: string): string {
  pairs++;
  const name = `mvl${pairs}`;
  run('ip', ['-n', ns, 'link', 'add', name, 'type', 'veth', 'peer', 'name', `mvp${pairs}`]);
  run('ip', ['-n', ns, 'link', 'set', name, 'up']);
  expect(linkIn(ns, name)?.flags).toContain('UP');
  return name;
}

/** A fake with A and B holding links of the given names (each in the netns named). */
function fakeWith(links: Array<[path: string, name: string]>): FakeNative {
  const fake = new FakeNative().addNetns(PATH_A).addNetns(PATH_B);
  for (const [netns, name] of links) fake.addLink(name, { netns });
  return fake;
}

function netnsInode(): number {
  return fs.statSync('/proc/thread-self/ns/net').ino;
}

/** The netns of the libuv pool threads: many readlinks at once, so that each thread answers some. */
async function poolThreadNetns(): Promise<Set<string>> {
  return new Set(
    await Promise.all(Array.from({ length: 64 }, () => fs.promises.readlink('/proc/thread-self/ns/net'))),
  );
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

function removeNetns(): void {
  for (const ns of [NS_A, NS_B]) {
    try {
      run('ip', ['netns', 'del', ns]);
    } catch {
      // not created
    }
  }
}

let native: NativeOps;

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('moveLink integration tests need root (netns)');
  native = loadNative();
  try {
    run('ip', ['netns', 'add', NS_A]);
    run('ip', ['netns', 'add', NS_B]);
  } catch (e) {
    removeNetns();
    throw e;
  }
});

afterAll(removeNetns);

describe('Links.moveLink (real addon)', () => {
  it('moves a link A -> B under tempName, names it, sets MAC and MTU, leaves it down, off the event loop', async () => {
    const ifName = veth(NS_A);
    const before = linkIn(NS_A, ifName)!;
    // Links in B covering every index A has handed out: the moved link cannot keep its index.
    veth(NS_B);
    expect(names(NS_B).length).toBeGreaterThanOrEqual(names(NS_A).length);
    expect(linksIn(NS_B).map((l) => l.ifindex)).toContain(before.ifindex);
    const outside = netnsInode();
    const host = fs.readlinkSync('/proc/thread-self/ns/net');

    const order: string[] = [];
    setImmediate(() => order.push('immediate'));
    const p = native.moveLink({ fromNetns: PATH_A, ifName, toNetns: PATH_B, tempName: `mvt${id}`, name: 'eth0', mac: MAC, mtu: 9000 });
    let settled = false;
    void p.then(() => (settled = true), () => undefined);
    await Promise.resolve();
    expect(settled).toBe(false);
    const ifindex = await p;
    order.push('resolved');
    // The move waits for an RCU grace period on the pool thread; the loop ran meanwhile.
    expect(order).toEqual(['immediate', 'resolved']);

    const moved = linkIn(NS_B, 'eth0')!;
    expect(moved).toBeDefined();
    expect(ifindex).toBe(moved.ifindex);
    expect(ifindex).not.toBe(before.ifindex);
    expect(moved.address).toBe(MAC);
    expect(moved.mtu).toBe(9000);
    expect(moved.flags).not.toContain('UP');
    expect(names(NS_B)).not.toContain(`mvt${id}`);
    expect(names(NS_A)).not.toContain(ifName);
    expect(names(NS_A)).not.toContain(`mvt${id}`);
    // The JavaScript thread never left its netns, and the pool threads are back in theirs.
    expect(netnsInode()).toBe(outside);
    expect(await poolThreadNetns()).toEqual(new Set([host]));

    // Back to A: tempName equal to the final name, no MAC or MTU given: both are kept.
    const back = await native.moveLink({ fromNetns: PATH_B, ifName: 'eth0', toNetns: PATH_A, tempName: ifName, name: ifName });
    const returned = linkIn(NS_A, ifName)!;
    expect(returned).toMatchObject({ ifindex: back, address: MAC, mtu: 9000 });
    expect(returned.flags).not.toContain('UP');
    expect(names(NS_B)).not.toContain('eth0');

    // Again to B with tempName equal to ifName (no rename before the move).
    const again = await native.moveLink({ fromNetns: PATH_A, ifName, toNetns: PATH_B, tempName: ifName, name: 'eth0', mtu: 1400 });
    expect(linkIn(NS_B, 'eth0')).toMatchObject({ ifindex: again, address: MAC, mtu: 1400 });
    expect(names(NS_A)).not.toContain(ifName);
    run('ip', ['-n', NS_B, 'link', 'del', 'eth0']);

    // The fake tells the same story.
    const fake = fakeWith([[PATH_A, ifName]]);
    const fakeIndex = await fake.moveLink({ fromNetns: PATH_A, ifName, toNetns: PATH_B, tempName: `mvt${id}`, name: 'eth0', mac: MAC, mtu: 9000 });
    expect(fake.linkOf(PATH_B, 'eth0')).toEqual({ ifindex: fakeIndex, up: false, mac: MAC, mtu: 9000 });
    expect(fake.hasLink(PATH_A, ifName)).toBe(false);
  });

  it('renames in place when both paths name the same netns (the kernel\'s move is then a no-op)', async () => {
    const ifName = veth(NS_A);
    const { ifindex } = linkIn(NS_A, ifName)!;
    await expect(native.moveLink({ fromNetns: PATH_A, ifName, toNetns: PATH_A, tempName: `mvt${id}`, name: `mvr${id}` })).resolves.toBe(ifindex);
    expect(names(NS_A)).not.toContain(ifName);
    expect(names(NS_A)).not.toContain(`mvt${id}`);
    expect(linkIn(NS_A, `mvr${id}`)).toMatchObject({ ifindex });
    expect(linkIn(NS_A, `mvr${id}`)!.flags).not.toContain('UP');

    const fake = fakeWith([[PATH_A, ifName]]);
    const fakeIndex = fake.linkOf(PATH_A, ifName).ifindex;
    await expect(fake.moveLink({ fromNetns: PATH_A, ifName, toNetns: PATH_A, tempName: `mvt${id}`, name: `mvr${id}` })).resolves.toBe(fakeIndex);
    expect(fake.hasLink(PATH_A, `mvr${id}`)).toBe(true);
    expect(fake.hasLink(PATH_A, ifName)).toBe(false);
  });

  it('rejects a missing link with ENODEV, changing nothing', async () => {
    const spec: LinkMove = { fromNetns: PATH_A, ifName: 'nosuch0', toNetns: PATH_B, tempName: `mvt${id}`, name: 'eth9' };
    const e = await rejection(native.moveLink(spec));
    expect(isNativeSystemError(e)).toBe(true);
    expect(e).toMatchObject({ message: 'if_nametoindex(nosuch0): No such device', code: 'ENODEV', errno: 19, syscall: 'if_nametoindex' });
    await expect(fakeWith([]).moveLink(spec)).rejects.toMatchObject({ message: (e as Error).message, code: 'ENODEV' });
  });

  it('rejects a tempName taken in toNetns with EEXIST at the move: the link stays in fromNetns under tempName, down', async () => {
    const ifName = veth(NS_A);
    const taken = veth(NS_B);
    const takenIndex = linkIn(NS_B, taken)!.ifindex;
    const spec: LinkMove = { fromNetns: PATH_A, ifName, toNetns: PATH_B, tempName: taken, name: 'eth1' };
    const e = await rejection(native.moveLink(spec));
    expect(isNativeSystemError(e)).toBe(true);
    expect(e).toMatchObject({
      message: `RTM_NEWLINK(${taken} netns ${PATH_B}): File exists`,
      code: 'EEXIST',
      errno: 17,
      syscall: 'RTM_NEWLINK',
    });
    // Nothing is undone: the rename before the move stays.
    expect(names(NS_A)).not.toContain(ifName);
    expect(linkIn(NS_A, taken)!.flags).not.toContain('UP');
    // B's link of that name is untouched, and nothing named eth1 appeared.
    expect(linkIn(NS_B, taken)).toMatchObject({ ifindex: takenIndex });
    expect(names(NS_B)).not.toContain('eth1');

    const fake = fakeWith([[PATH_A, ifName], [PATH_B, taken]]);
    await expect(fake.moveLink(spec)).rejects.toMatchObject({ message: (e as Error).message, code: 'EEXIST', syscall: 'RTM_NEWLINK' });
    expect(fake.hasLink(PATH_A, taken)).toBe(true);
    expect(fake.linkOf(PATH_A, taken).up).toBe(false);
    expect(fake.hasLink(PATH_A, ifName)).toBe(false);
    expect(fake.linksMoved).toEqual([]);
  });

  it('rejects a tempName taken in fromNetns at the rename: the link stays in fromNetns under ifName, down', async () => {
    const ifName = veth(NS_A);
    const taken = veth(NS_A);
    const spec: LinkMove = { fromNetns: PATH_A, ifName, toNetns: PATH_B, tempName: taken, name: 'eth2' };
    const e = await rejection(native.moveLink(spec));
    expect(e).toMatchObject({ message: `RTM_NEWLINK(${ifName} name ${taken}): File exists`, code: 'EEXIST', syscall: 'RTM_NEWLINK' });
    expect(linkIn(NS_A, ifName)!.flags).not.toContain('UP');
    expect(linkIn(NS_A, taken)!.flags).toContain('UP');
    expect(names(NS_B)).not.toContain('eth2');

    const fake = fakeWith([[PATH_A, ifName], [PATH_A, taken]]);
    await expect(fake.moveLink(spec)).rejects.toMatchObject({ message: (e as Error).message, code: 'EEXIST' });
    expect(fake.linkOf(PATH_A, ifName).up).toBe(false);
  });

  it('rejects a name taken in toNetns after the move: the link stays in toNetns under tempName', async () => {
    const ifName = veth(NS_A);
    const taken = veth(NS_B);
    const spec: LinkMove = { fromNetns: PATH_A, ifName, toNetns: PATH_B, tempName: `mvt${id}`, name: taken, mac: MAC };
    const e = await rejection(native.moveLink(spec));
    expect(e).toMatchObject({ message: `RTM_NEWLINK(mvt${id} name ${taken}): File exists`, code: 'EEXIST', syscall: 'RTM_NEWLINK' });
    expect(names(NS_A)).not.toContain(ifName);
    const left = linkIn(NS_B, `mvt${id}`)!;
    expect(left.flags).not.toContain('UP');
    // The steps after the failed one did not run.
    expect(left.address).not.toBe(MAC);
    run('ip', ['-n', NS_B, 'link', 'del', `mvt${id}`]);

    const fake = fakeWith([[PATH_A, ifName], [PATH_B, taken]]);
    const fakeMac = fake.linkOf(PATH_A, ifName).mac;
    await expect(fake.moveLink(spec)).rejects.toMatchObject({ message: (e as Error).message, code: 'EEXIST' });
    expect(fake.linkOf(PATH_B, `mvt${id}`)).toMatchObject({ up: false, mac: fakeMac });
    expect(fake.linksMoved).toEqual([]);
  });

  it.each([
    { desc: 'fromNetns', from: MISSING, to: PATH_B, message: `setns(${MISSING}): No such file or directory`, code: 'ENOENT', syscall: 'open' },
    { desc: 'toNetns', from: PATH_A, to: MISSING, message: `setns(${MISSING}): No such file or directory`, code: 'ENOENT', syscall: 'open' },
    {
      desc: 'toNetns of another namespace type',
      from: PATH_A,
      to: '/proc/self/ns/uts',
      message: 'setns(/proc/self/ns/uts): Invalid argument (not a network namespace)',
      code: 'EINVAL',
      syscall: 'setns',
    },
  ])('rejects a bad $desc path with the setns error before touching the link', async ({ from, to, message, code, syscall }) => {
    const ifName = veth(NS_A);
    const { ifindex } = linkIn(NS_A, ifName)!;
    const spec: LinkMove = { fromNetns: from, ifName, toNetns: to, tempName: `mvt${id}`, name: 'eth3' };
    const e = await rejection(native.moveLink(spec));
    expect(isNativeSystemError(e)).toBe(true);
    expect(e).toMatchObject({ message, code, syscall });
    const still = linkIn(NS_A, ifName)!;
    expect(still.ifindex).toBe(ifindex);
    expect(still.flags).toContain('UP');

    const fake = fakeWith([[PATH_A, ifName]]).addNonNetns('/proc/self/ns/uts', 'a uts namespace, not a network namespace');
    await expect(fake.moveLink(spec)).rejects.toMatchObject({ message, code, syscall });
    expect(fake.linkOf(PATH_A, ifName).up).toBe(true);
  });

});

describe('Links.moveLink argument checks (real addon)', () => {
  // One link for every case: a call that got past the checks would move it.
  const VICTIM = `mvv${id}`;
  const VALID: LinkMove = { fromNetns: PATH_A, ifName: VICTIM, toNetns: PATH_B, tempName: `mvt${id}`, name: 'eth0' };
  beforeAll(() => {
    run('ip', ['-n', NS_A, 'link', 'add', VICTIM, 'type', 'veth', 'peer', 'name', `mvw${id}`]);
    run('ip', ['-n', NS_A, 'link', 'set', VICTIM, 'up']);
  });

  it.each([
    { desc: 'no spec', args: [] },
    { desc: 'a string spec', args: [PATH_A] },
    { desc: 'an array spec', args: [[]] },
    { desc: 'no fromNetns', args: [{ ...VALID, fromNetns: undefined }] },
    { desc: 'a numeric toNetns', args: [{ ...VALID, toNetns: 3 }] },
    { desc: 'an empty ifName', args: [{ ...VALID, ifName: '' }] },
    { desc: 'a 16-byte ifName', args: [{ ...VALID, ifName: 'x'.repeat(16) }] },
    { desc: 'a tempName with a slash', args: [{ ...VALID, tempName: 'a/b' }] },
    { desc: 'a name with a space', args: [{ ...VALID, name: 'eth 0' }] },
    { desc: 'no name', args: [{ ...VALID, name: undefined }] },
    { desc: 'an empty mac', args: [{ ...VALID, mac: '' }] },
    { desc: 'a malformed mac', args: [{ ...VALID, mac: '02:00:00:00:00' }] },
    { desc: 'a mac with dashes', args: [{ ...VALID, mac: '02-00-00-00-00-01' }] },
    { desc: 'a multicast mac', args: [{ ...VALID, mac: '03:00:00:00:00:01' }] },
    { desc: 'the zero mac', args: [{ ...VALID, mac: '00:00:00:00:00:00' }] },
    { desc: 'an mtu below 68', args: [{ ...VALID, mtu: 67 }] },
    { desc: 'an mtu above 65535', args: [{ ...VALID, mtu: 65536 }] },
    { desc: 'a fractional mtu', args: [{ ...VALID, mtu: 1500.5 }] },
    { desc: 'a string mtu', args: [{ ...VALID, mtu: '1500' }] },
  ])('rejects $desc with a TypeError before anything happens, as FakeNative does', async ({ args }) => {
    const move = native.moveLink.bind(native) as (...a: unknown[]) => Promise<number>;
    let p: Promise<number> | undefined;
    expect(() => (p = move(...args))).not.toThrow();
    const e = await rejection(p!);
    expect(e).toBeInstanceOf(TypeError);
    expect((e as Error).message).toMatch(/^moveLink: /);
    // Nothing happened: the link is where it was, up.
    expect(linkIn(NS_A, VICTIM)!.flags).toContain('UP');
    expect(names(NS_B)).not.toContain('eth0');

    const fake = fakeWith([[PATH_A, VICTIM]]);
    const fakeMove = fake.moveLink.bind(fake) as (...a: unknown[]) => Promise<number>;
    const fe = await rejection(fakeMove(...args));
    expect(fe).toBeInstanceOf(TypeError);
    expect((fe as Error).message).toBe((e as Error).message);
    expect(fake.linkOf(PATH_A, VICTIM).up).toBe(true);
  });

  it('accepts the valid spec these cases derive from (so each case fails for its own reason)', async () => {
    await expect(native.moveLink({ ...VALID, mac: MAC, mtu: 1500 })).resolves.toEqual(expect.any(Number));
    expect(linkIn(NS_B, 'eth0')).toMatchObject({ address: MAC, mtu: 1500 });
    run('ip', ['-n', NS_B, 'link', 'del', 'eth0']);
  });
});
