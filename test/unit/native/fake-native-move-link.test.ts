// Unit tests of FakeNative.moveLink: it must fail and leave links where the addon does (the
// integration test native-move-link.test.ts checks the same cases against the kernel), or unit
// tests of the SR-IOV plumbing built on it prove nothing.
import { describe, expect, it } from 'vitest';
import { FakeNative } from '../../../native/fake';
import { isNativeSystemError, type LinkMove, type NativeOps } from '../../../native/index';

const NODE_NS = '/proc/1/ns/net';
const POD_NS = '/var/run/netns/pod-a';
const POD_ALIAS = '/proc/4242/ns/net';
const MOVE: LinkMove = { fromNetns: NODE_NS, ifName: 'ens1f0v3', toNetns: POD_NS, tempName: 'ovtmp0', name: 'eth0' };

/** The node's netns is the host's (NODE_NS names it), with a VF; a pod netns with an alias path. */
function nodeFake(): FakeNative {
  return new FakeNative()
    .addNetns(NODE_NS, { sameAs: null })
    .addNetns(POD_NS)
    .addNetns(POD_ALIAS, { sameAs: POD_NS })
    .addLink('ens1f0v3', { mac: '02:AA:00:00:00:03', mtu: 1500 });
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

describe('FakeNative moveLink', () => {
  it('is part of NativeOps: moves the link, names it, sets MAC and MTU, leaves it down, resolves its ifindex', async () => {
    const fake = nodeFake();
    const { ifindex } = fake.linkOf(null, 'ens1f0v3');
    const ops: NativeOps = fake;
    const p = ops.moveLink({ ...MOVE, mac: '02:6F:76:6E:00:05', mtu: 9000 });
    expect(p).toBeInstanceOf(Promise);
    await expect(p).resolves.toBe(ifindex);
    expect(fake.linkOf(POD_NS, 'eth0')).toEqual({ ifindex, up: false, mac: '02:6f:76:6e:00:05', mtu: 9000 });
    expect(fake.hasLink(null, 'ens1f0v3')).toBe(false);
    expect(fake.hasLink(null, 'ovtmp0')).toBe(false);
    expect(fake.hasLink(POD_NS, 'ovtmp0')).toBe(false);
    expect(fake.linksMoved).toEqual([{ ...MOVE, mac: '02:6F:76:6E:00:05', mtu: 9000 }]);
  });

  it('keeps MAC, MTU, features and configuration when none are given, and moves back', async () => {
    const fake = nodeFake();
    const features = fake.featuresOf(null, 'ens1f0v3');
    await fake.moveLink(MOVE);
    expect(fake.linkOf(POD_NS, 'eth0')).toMatchObject({ mac: '02:aa:00:00:00:03', mtu: 1500, up: false });
    expect(fake.featuresOf(POD_NS, 'eth0')).toEqual(features);
    await fake.configurePodInterface(POD_NS, { ifName: 'eth0', addresses: ['192.0.2.5/24'], gateways: [], disableTxChecksum: false });
    expect(fake.podInterfaceOf(POD_NS, 'eth0').up).toBe(true);

    // Back, with tempName equal to the final name: moveLink sets it down again.
    await fake.moveLink({ fromNetns: POD_ALIAS, ifName: 'eth0', toNetns: NODE_NS, tempName: 'ens1f0v3', name: 'ens1f0v3' });
    expect(fake.hasLink(POD_NS, 'eth0')).toBe(false);
    expect(fake.podInterfaceOf(null, 'ens1f0v3')).toEqual({ up: false, addresses: ['192.0.2.5/24'], routes: [] });
    expect(fake.linksMoved.map((m) => m.toNetns)).toEqual([POD_NS, NODE_NS]);
  });

  it('gives each added link its own ifindex and MAC, and keeps the index across moves', async () => {
    const fake = nodeFake().addLink('ens1f0v4').addLink('eth0', { netns: POD_NS });
    const a = fake.linkOf(null, 'ens1f0v3');
    const b = fake.linkOf(null, 'ens1f0v4');
    expect(b.ifindex).not.toBe(a.ifindex);
    expect(b.mac).toMatch(/^02:00:00:00:[0-9a-f]{2}:[0-9a-f]{2}$/);
    expect(fake.linkOf(POD_NS, 'eth0').mac).not.toBe(b.mac);
    await expect(fake.moveLink({ ...MOVE, ifName: 'ens1f0v4', name: 'net1' })).resolves.toBe(b.ifindex);
  });

  it('renames in place when both paths name the same netns', async () => {
    const fake = nodeFake().addLink('veth0', { netns: POD_NS });
    const { ifindex } = fake.linkOf(POD_NS, 'veth0');
    await expect(fake.moveLink({ fromNetns: POD_NS, ifName: 'veth0', toNetns: POD_ALIAS, tempName: 'tmp1', name: 'eth1' })).resolves.toBe(ifindex);
    expect(fake.hasLink(POD_NS, 'veth0')).toBe(false);
    expect(fake.hasLink(POD_NS, 'tmp1')).toBe(false);
    expect(fake.linkOf(POD_NS, 'eth1')).toMatchObject({ ifindex, up: false });
  });

  it('acts on fromNetns and toNetns only, whatever netns runIn is in', async () => {
    const fake = nodeFake().addNetns('/var/run/netns/other').addLink('ens1f0v3', { netns: '/var/run/netns/other' });
    await fake.runIn('/var/run/netns/other', () => fake.moveLink(MOVE));
    expect(fake.hasLink(POD_NS, 'eth0')).toBe(true);
    expect(fake.hasLink('/var/run/netns/other', 'ens1f0v3')).toBe(true);
    expect(fake.currentNetns).toBeNull();
  });

  it.each([
    { desc: 'fromNetns', spec: { ...MOVE, fromNetns: '/var/run/netns/missing' }, path: '/var/run/netns/missing' },
    { desc: 'toNetns', spec: { ...MOVE, toNetns: '/var/run/netns/missing' }, path: '/var/run/netns/missing' },
  ])('rejects an unknown $desc like the addon, changing nothing', async ({ spec, path }) => {
    const fake = nodeFake();
    const e = await rejection(fake.moveLink(spec));
    expect(isNativeSystemError(e)).toBe(true);
    expect(e).toMatchObject({ message: `setns(${path}): No such file or directory`, code: 'ENOENT', errno: 2, syscall: 'open' });
    expect(fake.linkOf(null, 'ens1f0v3').up).toBe(true);
    expect(fake.linksMoved).toEqual([]);
  });

  it('rejects a path that is no netns with EINVAL, changing nothing', async () => {
    const fake = nodeFake().addNonNetns('/run/fifo', 'a FIFO, not a namespace file');
    await expect(fake.moveLink({ ...MOVE, toNetns: '/run/fifo' })).rejects.toMatchObject({
      message: 'setns(/run/fifo): Invalid argument (not a network namespace)',
      code: 'EINVAL',
      syscall: 'setns',
    });
    expect(fake.linkOf(null, 'ens1f0v3').up).toBe(true);
  });

  it('rejects a missing link with ENODEV', async () => {
    const fake = nodeFake();
    const e = await rejection(fake.moveLink({ ...MOVE, ifName: 'ens1f0v9' }));
    expect(isNativeSystemError(e)).toBe(true);
    expect(e).toMatchObject({ message: 'if_nametoindex(ens1f0v9): No such device', code: 'ENODEV', errno: 19, syscall: 'if_nametoindex' });
  });

  it('rejects a tempName taken in fromNetns at the rename: the link stays there under ifName, down', async () => {
    const fake = nodeFake().addLink('ovtmp0');
    await expect(fake.moveLink(MOVE)).rejects.toMatchObject({
      message: 'RTM_NEWLINK(ens1f0v3 name ovtmp0): File exists',
      code: 'EEXIST',
      errno: 17,
      syscall: 'RTM_NEWLINK',
    });
    expect(fake.linkOf(null, 'ens1f0v3').up).toBe(false);
    expect(fake.linkOf(null, 'ovtmp0').up).toBe(true);
    expect(fake.hasLink(POD_NS, 'eth0')).toBe(false);
    expect(fake.linksMoved).toEqual([]);
  });

  it('rejects a tempName taken in toNetns at the move: the link stays in fromNetns under tempName, down', async () => {
    const fake = nodeFake().addLink('ovtmp0', { netns: POD_NS });
    const { ifindex } = fake.linkOf(null, 'ens1f0v3');
    await expect(fake.moveLink(MOVE)).rejects.toMatchObject({
      message: `RTM_NEWLINK(ovtmp0 netns ${POD_NS}): File exists`,
      code: 'EEXIST',
      syscall: 'RTM_NEWLINK',
    });
    expect(fake.hasLink(null, 'ens1f0v3')).toBe(false);
    expect(fake.linkOf(null, 'ovtmp0')).toMatchObject({ ifindex, up: false });
    expect(fake.linkOf(POD_NS, 'ovtmp0').ifindex).not.toBe(ifindex);
    expect(fake.linksMoved).toEqual([]);
  });

  it('rejects a name taken in toNetns after the move: the link stays there under tempName, MAC and MTU unset', async () => {
    const fake = nodeFake().addLink('eth0', { netns: POD_NS });
    const { ifindex } = fake.linkOf(null, 'ens1f0v3');
    await expect(fake.moveLink({ ...MOVE, mac: '02:00:00:00:99:99', mtu: 9000 })).rejects.toMatchObject({
      message: 'RTM_NEWLINK(ovtmp0 name eth0): File exists',
      code: 'EEXIST',
    });
    expect(fake.linkOf(POD_NS, 'ovtmp0')).toEqual({ ifindex, up: false, mac: '02:aa:00:00:00:03', mtu: 1500 });
    expect(fake.hasLink(null, 'ens1f0v3')).toBe(false);
    expect(fake.linkOf(POD_NS, 'eth0').ifindex).not.toBe(ifindex);
    expect(fake.linksMoved).toEqual([]);
  });

  it.each([
    { desc: 'no spec', args: [], message: 'moveLink: argument 1 must be an object' },
    { desc: 'an array', args: [[MOVE]], message: 'moveLink: argument 1 must be an object' },
    { desc: 'null', args: [null], message: 'moveLink: argument 1 must be an object' },
    { desc: 'no fromNetns', args: [{ ...MOVE, fromNetns: undefined }], message: 'moveLink: fromNetns must be a non-empty string' },
    { desc: 'an empty ifName', args: [{ ...MOVE, ifName: '' }], message: 'moveLink: ifName must be a non-empty string' },
    { desc: 'a long ifName', args: [{ ...MOVE, ifName: 'x'.repeat(16) }], message: `moveLink: invalid interface name "${'x'.repeat(16)}"` },
    { desc: 'a numeric toNetns', args: [{ ...MOVE, toNetns: 7 }], message: 'moveLink: toNetns must be a non-empty string' },
    { desc: 'a tempName with a slash', args: [{ ...MOVE, tempName: 'a/b' }], message: 'moveLink: invalid interface name "a/b"' },
    { desc: 'a name with a tab', args: [{ ...MOVE, name: 'eth\t0' }], message: 'moveLink: invalid interface name "eth\t0"' },
    { desc: 'a 16-byte UTF-8 name of 8 characters', args: [{ ...MOVE, name: 'éééééééé' }], message: 'moveLink: invalid interface name "éééééééé"' },
    { desc: 'a non-string mac', args: [{ ...MOVE, mac: 2 }], message: 'moveLink: mac must be a non-empty string' },
    { desc: 'a malformed mac', args: [{ ...MOVE, mac: '2:00:00:00:00:01' }], message: 'moveLink: invalid MAC "2:00:00:00:00:01"' },
    { desc: 'a multicast mac', args: [{ ...MOVE, mac: '01:00:5e:00:00:01' }], message: 'moveLink: MAC "01:00:5e:00:00:01" is not a unicast address' },
    { desc: 'the zero mac', args: [{ ...MOVE, mac: '00:00:00:00:00:00' }], message: 'moveLink: MAC "00:00:00:00:00:00" is the all-zero address' },
    { desc: 'mtu 67', args: [{ ...MOVE, mtu: 67 }], message: 'moveLink: mtu must be an integer from 68 to 65535' },
    { desc: 'mtu NaN', args: [{ ...MOVE, mtu: NaN }], message: 'moveLink: mtu must be an integer from 68 to 65535' },
    { desc: 'mtu null', args: [{ ...MOVE, mtu: null }], message: 'moveLink: mtu must be an integer from 68 to 65535' },
  ])('rejects $desc with the addon\'s TypeError, changing nothing', async ({ args, message }) => {
    const fake = nodeFake();
    const move = fake.moveLink.bind(fake) as (...a: unknown[]) => Promise<number>;
    let p: Promise<number> | undefined;
    expect(() => (p = move(...args))).not.toThrow();
    const e = await rejection(p!);
    expect(e).toBeInstanceOf(TypeError);
    expect((e as Error).message).toBe(message);
    expect(fake.linkOf(null, 'ens1f0v3').up).toBe(true);
    expect(fake.linksMoved).toEqual([]);
  });

  it('accepts mtu bounds and an upper-case MAC', async () => {
    const fake = nodeFake().addLink('ens1f0v4');
    await fake.moveLink({ ...MOVE, mtu: 68 });
    await fake.moveLink({ ...MOVE, ifName: 'ens1f0v4', name: 'net1', mtu: 65535, mac: 'AE:00:00:00:00:01' });
    expect(fake.linkOf(POD_NS, 'eth0').mtu).toBe(68);
    expect(fake.linkOf(POD_NS, 'net1')).toMatchObject({ mtu: 65535, mac: 'ae:00:00:00:00:01' });
  });
});
