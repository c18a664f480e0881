// Unit tests of FakeNative: the fake must behave like the addon where callers can tell (errors,
// netns scoping, kernel feature dependencies), or unit tests built on it prove nothing.
import { describe, expect, it } from 'vitest';
import { FakeNative, VETH_FEATURES } from '../../../native/fake';
import { isNativeSystemError, type Announcement, type AnnouncementRequest, type NativeOps } from '../../../native/index';

const POD_NS = '/var/run/netns/pod-a';
const OTHER_NS = '/proc/4242/ns/net';

function podFake(): FakeNative {
  return new FakeNative().addNetns(POD_NS).addNetns(OTHER_NS).addLink('eth0', { netns: POD_NS });
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

describe('FakeNative netns', () => {
  it('is usable where NativeOps is expected', () => {
    const ops: NativeOps = podFake();
    expect(ops.exists(POD_NS)).toBe(true);
  });

  it('runs the callback inside the netns, returns its value and records the entry', () => {
    const fake = podFake();
    const seen = fake.runIn(POD_NS, () => fake.currentNetns);
    expect(seen).toBe(POD_NS);
    expect(fake.currentNetns).toBeNull();
    expect(fake.netnsEntered).toEqual([POD_NS]);
  });

  it('tracks nesting and leaves the netns when the callback throws', () => {
    const fake = podFake();
    const inner: (string | null)[] = [];
    expect(() =>
      fake.runIn(POD_NS, () => {
        fake.runIn(OTHER_NS, () => inner.push(fake.currentNetns));
        inner.push(fake.currentNetns);
        throw new RangeError('callback failed');
      }),
    ).toThrow(RangeError);
    expect(inner).toEqual([OTHER_NS, POD_NS]);
    expect(fake.currentNetns).toBeNull();
    expect(fake.netnsEntered).toEqual([POD_NS, OTHER_NS]);
  });

  it('throws the addon error for an unknown path without calling the callback', () => {
    const fake = podFake();
    let called = false;
    const e = thrown(() => fake.runIn('/var/run/netns/missing', () => (called = true)));
    expect(called).toBe(false);
    expect(isNativeSystemError(e)).toBe(true);
    expect(e).toMatchObject({
      message: 'setns(/var/run/netns/missing): No such file or directory',
      code: 'ENOENT',
      errno: 2,
      syscall: 'open',
    });
    expect(fake.netnsEntered).toEqual([]);
  });

  it('forgets a removed netns and its links', () => {
    const fake = podFake();
    fake.removeNetns(POD_NS);
    expect(fake.exists(POD_NS)).toBe(false);
    expect(() => fake.runIn(POD_NS, () => 1)).toThrow(/No such file or directory/);
    fake.addNetns(POD_NS);
    expect(() => fake.runIn(POD_NS, () => fake.getFeatures('eth0'))).toThrow(
      'if_nametoindex(eth0): No such device',
    );
  });
});

describe('FakeNative inspectNetns and paths to a netns', () => {
  const HOST_ALIAS = '/proc/1/ns/net';
  const POD_ALIAS = '/run/pods/a/netns';
  const FIFO = '/tmp/not-a-netns';

  function aliasFake(): FakeNative {
    return podFake()
      .addNetns(HOST_ALIAS, { sameAs: null })
      .addNetns(POD_ALIAS, { sameAs: POD_NS })
      .addNonNetns(FIFO, 'a FIFO, not a namespace file')
      .addLink('eth0');
  }

  it('is part of NativeOps and reports a netns of its own as not the daemon\'s', async () => {
    const fake = aliasFake();
    const ops: NativeOps = fake;
    const p = ops.inspectNetns(POD_NS);
    expect(p).toBeInstanceOf(Promise);
    const pod = await p;
    expect(pod).toEqual({ kind: 'netns', dev: expect.any(Number), ino: expect.any(Number), own: false });
    const other = await fake.inspectNetns(OTHER_NS);
    expect(other).toMatchObject({ kind: 'netns', own: false });
    // Different namespaces: nsfs is one device, so the inode tells them apart.
    expect(other).not.toEqual(pod);
    expect(fake.netnsInspected).toEqual([POD_NS, OTHER_NS]);
  });

  it('reports every path to one netns with the same identity, and the host netns as own', async () => {
    const fake = aliasFake();
    const [pod, podAlias, host] = await Promise.all([POD_NS, POD_ALIAS, HOST_ALIAS].map((p) => fake.inspectNetns(p)));
    expect(podAlias).toEqual(pod);
    expect(host).toMatchObject({ kind: 'netns', own: true });
    expect(host).not.toEqual(pod);
    expect(fake.exists(HOST_ALIAS)).toBe(true);
    expect(fake.exists(POD_ALIAS)).toBe(true);
  });

  it.each([
    {
      desc: 'unknown path',
      path: '/var/run/netns/missing',
      want: { kind: 'missing', reason: 'No such file or directory' },
    },
    {
      desc: 'path added with addNonNetns',
      path: FIFO,
      want: { kind: 'not-netns', reason: 'a FIFO, not a namespace file' },
    },
    {
      desc: 'path with a NUL byte',
      path: `${POD_NS}\0x`,
      want: { kind: 'not-netns', reason: 'the path contains a NUL byte' },
    },
  ])('resolves, never rejects, for a path that is no netns: $desc', async ({ path, want }) => {
    const fake = aliasFake();
    await expect(fake.inspectNetns(path)).resolves.toEqual(want);
    expect(fake.exists(path)).toBe(false);
  });

  it('defaults the reason of addNonNetns to a regular file', async () => {
    const fake = new FakeNative().addNonNetns('/etc/hostname');
    await expect(fake.inspectNetns('/etc/hostname')).resolves.toEqual({
      kind: 'not-netns',
      reason: 'a regular file, not a namespace file',
    });
  });

  const nonStrings = [42, undefined, null, { path: POD_NS }];
  it.each(nonStrings)('rejects a non-string (%s) with a TypeError, without throwing', async (arg) => {
    const fake = aliasFake();
    const inspect = fake.inspectNetns.bind(fake) as (a: unknown) => Promise<unknown>;
    let p: Promise<unknown> | undefined;
    expect(() => (p = inspect(arg))).not.toThrow();
    const e = await rejection(p!);
    expect(e).toBeInstanceOf(TypeError);
    expect((e as Error).message).toBe('inspectNetns: argument 1 must be a string');
    expect(fake.netnsInspected).toEqual([]);
  });

  it('refuses a path that is no netns in runIn, announce and deleteLink like the addon', async () => {
    const fake = aliasFake();
    const einval = {
      message: `setns(${FIFO}): Invalid argument (not a network namespace)`,
      code: 'EINVAL',
      errno: 22,
      syscall: 'setns',
    };
    let called = false;
    const e = thrown(() => fake.runIn(FIFO, () => (called = true)));
    expect(called).toBe(false);
    expect(isNativeSystemError(e)).toBe(true);
    expect(e).toMatchObject(einval);
    await expect(fake.announce(FIFO, [])).rejects.toMatchObject(einval);
    await expect(fake.deleteLink(FIFO, 'eth0')).rejects.toMatchObject(einval);
    expect(() => fake.runIn(`${POD_NS}\0x`, () => 1)).toThrow(
      `setns(${POD_NS}\0x): Invalid argument (the path contains a NUL byte)`,
    );
    expect(fake.netnsEntered).toEqual([]);
  });

  it('enters the netns a second path names: its links, and null for the host\'s', async () => {
    const fake = aliasFake();
    expect(fake.runIn(POD_ALIAS, () => [fake.currentNetns, fake.getFeatures('eth0')['rx-gro']])).toEqual([
      POD_NS,
      false,
    ]);
    expect(fake.runIn(HOST_ALIAS, () => fake.currentNetns)).toBeNull();
    expect(fake.netnsEntered).toEqual([POD_ALIAS, HOST_ALIAS]);
    await fake.announce(HOST_ALIAS, [{ kind: 'garp', ifName: 'eth0', mac: '0a:58:0a:f4:00:05', ip: '10.244.0.5' }]);
    expect(fake.packetsSent).toEqual([expect.objectContaining({ netns: HOST_ALIAS, ifName: 'eth0' })]);
    await expect(fake.deleteLink(POD_ALIAS, 'eth0')).resolves.toBe(true);
    expect(fake.hasLink(POD_NS, 'eth0')).toBe(false);
    expect(fake.hasLink(null, 'eth0')).toBe(true);
    expect(fake.linksDeleted).toEqual([{ netns: POD_ALIAS, ifName: 'eth0' }]);
  });

  it('removing a second path keeps the netns; removing its own path removes every path to it', async () => {
    const fake = aliasFake();
    fake.removeNetns(POD_ALIAS);
    expect(fake.exists(POD_ALIAS)).toBe(false);
    expect(fake.hasLink(POD_NS, 'eth0')).toBe(true);
    fake.addNetns(POD_ALIAS, { sameAs: POD_NS });
    fake.removeNetns(POD_NS);
    await expect(fake.inspectNetns(POD_ALIAS)).resolves.toMatchObject({ kind: 'missing' });
    fake.removeNetns(HOST_ALIAS);
    expect(fake.hasLink(null, 'eth0')).toBe(true);
    fake.removeNetns(FIFO);
    await expect(fake.inspectNetns(FIFO)).resolves.toMatchObject({ kind: 'missing' });
  });

  it('refuses to give one path two meanings, and an unknown sameAs', () => {
    const fake = aliasFake();
    expect(() => fake.addNetns(POD_ALIAS, { sameAs: OTHER_NS })).toThrow(
      `FakeNative.addNetns: ${POD_ALIAS} already names something else`,
    );
    expect(() => fake.addNetns(FIFO)).toThrow(`FakeNative.addNetns: ${FIFO} already names something else`);
    expect(() => fake.addNonNetns(POD_NS)).toThrow(`FakeNative.addNonNetns: ${POD_NS} names a netns`);
    expect(() => fake.addNetns('/x', { sameAs: '/nowhere' })).toThrow('FakeNative.addNetns: sameAs /nowhere not added');
    // The same meaning again is a no-op.
    expect(() => fake.addNetns(POD_ALIAS, { sameAs: POD_NS }).addNetns(POD_NS)).not.toThrow();
    expect(fake.hasLink(POD_NS, 'eth0')).toBe(true);
  });
});

describe('FakeNative packets', () => {
  const garp: AnnouncementRequest = { ifName: 'eth0', mac: '0a:58:0a:f4:00:05', ip: '10.244.0.5' };
  const na: AnnouncementRequest = { ...garp, ip: 'fd00:10:244::5', count: 3 };

  it('records announcements with the netns they were sent from', () => {
    const fake = podFake();
    fake.runIn(POD_NS, () => {
      fake.sendGratuitousArp(garp);
      fake.sendUnsolicitedNa(na);
    });
    expect(fake.packetsSent).toEqual([
      { kind: 'garp', netns: POD_NS, ifName: 'eth0', mac: garp.mac, ip: garp.ip, count: 1 },
      { kind: 'na', netns: POD_NS, ifName: 'eth0', mac: na.mac, ip: na.ip, count: 3 },
    ]);
  });

  type Row = { desc: string; kind: 'garp' | 'na'; req: Partial<AnnouncementRequest>; error: RegExp | string };
  const refused: Row[] = [
    {
      desc: 'IPv6 address for ARP',
      kind: 'garp',
      req: { ip: na.ip },
      error: 'sendGratuitousArp: "fd00:10:244::5" is not an IPv4 address',
    },
    {
      desc: 'IPv4 address for NA',
      kind: 'na',
      req: { ip: garp.ip },
      error: 'sendUnsolicitedNa: "10.244.0.5" is not an IPv6 address',
    },
    {
      desc: 'malformed MAC',
      kind: 'garp',
      req: { mac: '0a:58:0a:f4:00:5' },
      error: 'sendGratuitousArp: invalid MAC "0a:58:0a:f4:00:5"',
    },
    { desc: 'multicast MAC', kind: 'garp', req: { mac: '01:00:5e:00:00:01' }, error: /not a unicast address/ },
    {
      desc: 'count zero',
      kind: 'na',
      req: { count: 0 },
      error: 'sendUnsolicitedNa: count must be an integer from 1 to 100',
    },
    { desc: 'fractional count', kind: 'na', req: { count: 1.5 }, error: /count must be an integer/ },
    {
      desc: 'unknown link',
      kind: 'garp',
      req: { ifName: 'eth1' },
      error: 'if_nametoindex(eth1): No such device',
    },
  ];
  it.each(refused)('refuses: $desc', ({ kind, req, error }) => {
    const fake = podFake();
    const send = () =>
      kind === 'garp' ? fake.sendGratuitousArp({ ...garp, ...req }) : fake.sendUnsolicitedNa({ ...na, ...req });
    expect(() => fake.runIn(POD_NS, send)).toThrow(error);
    expect(fake.packetsSent).toEqual([]);
  });

  it('acts in the current netns: the pod link is unknown outside runIn', () => {
    const fake = podFake();
    expect(() => fake.sendGratuitousArp(garp)).toThrow('if_nametoindex(eth0): No such device');
  });

  it('fails like ENETDOWN on a link that is down', () => {
    const fake = new FakeNative().addLink('veth1', { up: false });
    const e = thrown(() => fake.sendGratuitousArp({ ...garp, ifName: 'veth1' }));
    expect(e).toMatchObject({ message: 'sendto(veth1): Network is down', code: 'ENETDOWN', syscall: 'sendto' });
  });
});

describe('FakeNative announce', () => {
  const garp: Announcement = { kind: 'garp', ifName: 'eth0', mac: '0a:58:0a:f4:00:05', ip: '10.244.0.5' };
  const na: Announcement = { kind: 'na', ifName: 'eth0', mac: garp.mac, ip: 'fd00:10:244::5', count: 3 };

  it('is part of NativeOps and returns a promise', async () => {
    const ops: NativeOps = podFake();
    const p = ops.announce(POD_NS, [garp]);
    expect(p).toBeInstanceOf(Promise);
    await expect(p).resolves.toBeUndefined();
  });

  it('records every announcement, in order, with the netns path, without runIn', async () => {
    const fake = podFake();
    await fake.announce(POD_NS, [garp, na]);
    expect(fake.packetsSent).toEqual([
      { kind: 'garp', netns: POD_NS, ifName: 'eth0', mac: garp.mac, ip: garp.ip, count: 1 },
      { kind: 'na', netns: POD_NS, ifName: 'eth0', mac: na.mac, ip: na.ip, count: 3 },
    ]);
    // announce moves a worker thread, not the caller's: no runIn entry, thread still outside.
    expect(fake.netnsEntered).toEqual([]);
    expect(fake.currentNetns).toBeNull();
  });

  it('acts in netnsPath even when called inside runIn of another netns', async () => {
    const fake = podFake();
    const p = fake.runIn(OTHER_NS, () => fake.announce(POD_NS, [garp]));
    await p;
    expect(fake.packetsSent).toEqual([expect.objectContaining({ netns: POD_NS, ifName: 'eth0' })]);
  });

  it('resolves for an empty list, sending nothing', async () => {
    const fake = podFake();
    await fake.announce(POD_NS, []);
    expect(fake.packetsSent).toEqual([]);
  });

  it('rejects like the addon for an unknown netns, also with an empty list', async () => {
    const fake = podFake();
    for (const list of [[garp], []]) {
      const e = await rejection(fake.announce('/var/run/netns/missing', list));
      expect(isNativeSystemError(e)).toBe(true);
      expect(e).toMatchObject({
        message: 'setns(/var/run/netns/missing): No such file or directory',
        code: 'ENOENT',
        errno: 2,
        syscall: 'open',
      });
    }
    expect(fake.packetsSent).toEqual([]);
  });

  it('looks up every link before sending: an unknown one fails the call with nothing sent', async () => {
    const fake = podFake();
    const e = await rejection(fake.announce(POD_NS, [garp, { ...na, ifName: 'eth1' }]));
    expect(e).toMatchObject({ message: 'if_nametoindex(eth1): No such device', code: 'ENODEV' });
    expect(fake.packetsSent).toEqual([]);
  });

  it('a link of the host netns is unknown in the pod netns', async () => {
    const fake = podFake().addLink('veth0');
    await expect(fake.announce(POD_NS, [{ ...garp, ifName: 'veth0' }])).rejects.toThrow(
      'if_nametoindex(veth0): No such device',
    );
  });

  it('stops at a send failure, keeping what was sent before it', async () => {
    const fake = podFake().addLink('eth1', { netns: POD_NS, up: false });
    const e = await rejection(fake.announce(POD_NS, [garp, { ...na, ifName: 'eth1' }, na]));
    expect(e).toMatchObject({ message: 'sendto(eth1): Network is down', code: 'ENETDOWN', syscall: 'sendto' });
    expect(fake.packetsSent).toEqual([expect.objectContaining({ kind: 'garp', netns: POD_NS })]);
  });

  type Row = { desc: string; args: unknown[]; error: string };
  const refused: Row[] = [
    { desc: 'non-string netns path', args: [42, [garp]], error: 'announce: argument 1 must be a string' },
    { desc: 'list not an array', args: [POD_NS, garp], error: 'announce: argument 2 must be an array' },
    { desc: 'entry not an object', args: [POD_NS, [garp, 'na']], error: 'announce: announcements[1] must be an object' },
    {
      desc: 'unknown kind',
      args: [POD_NS, [{ ...garp, kind: 'arp' }]],
      error: 'announce: announcements[0]: kind must be "garp" or "na"',
    },
    {
      desc: 'address of the wrong family for the kind',
      args: [POD_NS, [garp, { ...na, ip: garp.ip }]],
      error: 'announce: announcements[1]: "10.244.0.5" is not an IPv6 address',
    },
    {
      desc: 'missing MAC',
      args: [POD_NS, [{ ...garp, mac: undefined }]],
      error: 'announce: announcements[0]: mac must be a non-empty string',
    },
    {
      desc: 'multicast MAC',
      args: [POD_NS, [{ ...garp, mac: '01:00:5e:00:00:01' }]],
      error: 'announce: announcements[0]: MAC "01:00:5e:00:00:01" is not a unicast address',
    },
    {
      desc: 'count too big',
      args: [POD_NS, [{ ...na, count: 101 }]],
      error: 'announce: announcements[0]: count must be an integer from 1 to 100',
    },
    {
      desc: 'invalid entry for a missing netns (arguments are checked first)',
      args: ['/var/run/netns/missing', [{ ...garp, kind: undefined }]],
      error: 'announce: announcements[0]: kind must be "garp" or "na"',
    },
    {
      desc: 'too long an interface name',
      args: [POD_NS, [{ ...garp, ifName: 'x'.repeat(16) }]],
      error: `announce: announcements[0]: invalid interface name "${'x'.repeat(16)}"`,
    },
  ];
  it.each(refused)('rejects with a TypeError before sending anything: $desc', async ({ args, error }) => {
    const fake = podFake();
    const announce = fake.announce.bind(fake) as (...a: unknown[]) => Promise<void>;
    let p: Promise<void> | undefined;
    expect(() => (p = announce(...args))).not.toThrow();
    const e = await rejection(p!);
    expect(e).toBeInstanceOf(TypeError);
    expect((e as Error).message).toBe(error);
    expect(fake.packetsSent).toEqual([]);
  });
});

describe('FakeNative deleteLink', () => {
  it('is part of NativeOps, removes the link and resolves true', async () => {
    const fake = podFake().addLink('veth1234', { netns: OTHER_NS });
    const ops: NativeOps = fake;
    const p = ops.deleteLink(OTHER_NS, 'veth1234');
    expect(p).toBeInstanceOf(Promise);
    await expect(p).resolves.toBe(true);
    expect(fake.hasLink(OTHER_NS, 'veth1234')).toBe(false);
    expect(fake.linksDeleted).toEqual([{ netns: OTHER_NS, ifName: 'veth1234' }]);
    // Gone for the other operations too.
    expect(() => fake.runIn(OTHER_NS, () => fake.getFeatures('veth1234'))).toThrow(
      'if_nametoindex(veth1234): No such device',
    );
  });

  it('resolves false when the netns has no such link, recording nothing', async () => {
    const fake = podFake().addLink('veth1234', { netns: OTHER_NS });
    await expect(fake.deleteLink(OTHER_NS, 'veth1234')).resolves.toBe(true);
    await expect(fake.deleteLink(OTHER_NS, 'veth1234')).resolves.toBe(false);
    await expect(fake.deleteLink(OTHER_NS, 'never')).resolves.toBe(false);
    expect(fake.linksDeleted).toEqual([{ netns: OTHER_NS, ifName: 'veth1234' }]);
  });

  it('acts in netnsPath only: links of the same name elsewhere stay', async () => {
    const fake = podFake().addLink('eth0').addLink('eth0', { netns: OTHER_NS });
    // Called inside runIn of another netns: the thread's netns does not matter.
    await fake.runIn(OTHER_NS, () => fake.deleteLink(POD_NS, 'eth0'));
    expect(fake.hasLink(POD_NS, 'eth0')).toBe(false);
    expect(fake.hasLink(OTHER_NS, 'eth0')).toBe(true);
    expect(fake.hasLink(null, 'eth0')).toBe(true);
    expect(fake.currentNetns).toBeNull();
    await expect(fake.deleteLink(POD_NS, 'eth0')).resolves.toBe(false);
  });

  it('rejects like the addon for an unknown netns', async () => {
    const fake = podFake();
    const e = await rejection(fake.deleteLink('/var/run/netns/missing', 'eth0'));
    expect(isNativeSystemError(e)).toBe(true);
    expect(e).toMatchObject({
      message: 'setns(/var/run/netns/missing): No such file or directory',
      code: 'ENOENT',
      errno: 2,
      syscall: 'open',
    });
    expect(fake.linksDeleted).toEqual([]);
  });

  type Row = { desc: string; args: unknown[]; error: string };
  const refused: Row[] = [
    { desc: 'non-string netns path', args: [42, 'eth0'], error: 'deleteLink: argument 1 must be a string' },
    { desc: 'non-string name', args: [POD_NS, undefined], error: 'deleteLink: argument 2 must be a string' },
    { desc: 'empty name', args: [POD_NS, ''], error: 'deleteLink: invalid interface name ""' },
    {
      desc: '16 characters',
      args: [POD_NS, 'x'.repeat(16)],
      error: `deleteLink: invalid interface name "${'x'.repeat(16)}"`,
    },
    { desc: "a '/'", args: [POD_NS, 'eth/0'], error: 'deleteLink: invalid interface name "eth/0"' },
    { desc: 'a space', args: [POD_NS, 'eth 0'], error: 'deleteLink: invalid interface name "eth 0"' },
    { desc: 'a tab', args: [POD_NS, 'eth0\t'], error: 'deleteLink: invalid interface name "eth0\t"' },
    { desc: 'a newline', args: [POD_NS, '\neth0'], error: 'deleteLink: invalid interface name "\neth0"' },
    {
      desc: 'invalid name for a missing netns (arguments are checked first)',
      args: ['/var/run/netns/missing', 'a b'],
      error: 'deleteLink: invalid interface name "a b"',
    },
  ];
  it.each(refused)('rejects with a TypeError, deleting nothing: $desc', async ({ args, error }) => {
    const fake = podFake();
    const deleteLink = fake.deleteLink.bind(fake) as (...a: unknown[]) => Promise<boolean>;
    let p: Promise<boolean> | undefined;
    expect(() => (p = deleteLink(...args))).not.toThrow();
    const e = await rejection(p!);
    expect(e).toBeInstanceOf(TypeError);
    expect((e as Error).message).toBe(error);
    expect(fake.hasLink(POD_NS, 'eth0')).toBe(true);
    expect(fake.linksDeleted).toEqual([]);
  });

  it('accepts a name of 15 characters', async () => {
    const fake = podFake().addLink('x'.repeat(15), { netns: POD_NS });
    await expect(fake.deleteLink(POD_NS, 'x'.repeat(15))).resolves.toBe(true);
  });
});

describe('FakeNative ethtool', () => {
  it('starts a link with veth features and returns a copy', () => {
    const fake = podFake();
    const features = fake.runIn(POD_NS, () => fake.getFeatures('eth0'));
    expect(features).toEqual(VETH_FEATURES);
    features['tx-checksum-ip-generic'] = false;
    expect(fake.featuresOf(POD_NS, 'eth0')['tx-checksum-ip-generic']).toBe(true);
  });

  it('keeps feature maps per netns and link', () => {
    const fake = podFake().addLink('eth0', { features: { 'rx-gro': true } });
    fake.runIn(POD_NS, () => fake.setFeatures('eth0', { 'rx-gro': true }));
    expect(fake.featuresOf(null, 'eth0')).toEqual({ 'rx-gro': true });
    expect(fake.featuresOf(POD_NS, 'eth0')['rx-gro']).toBe(true);
    expect(fake.featuresSet).toEqual([
      { op: 'setFeatures', netns: POD_NS, ifName: 'eth0', features: { 'rx-gro': true } },
    ]);
  });

  it('disableTxChecksum turns off every tx-checksum-* and the kernel drops TSO/USO with them', () => {
    const fake = podFake();
    fake.runIn(POD_NS, () => fake.disableTxChecksum('eth0'));
    const after = fake.featuresOf(POD_NS, 'eth0');
    for (const [name, on] of Object.entries(after)) {
      if (name.startsWith('tx-checksum-')) expect(on, name).toBe(false);
    }
    expect(after).toMatchObject({
      'tx-tcp-segmentation': false,
      'tx-tcp6-segmentation': false,
      'tx-udp-segmentation': false,
    });
    expect(after).toMatchObject({ 'tx-scatter-gather': true, 'tx-generic-segmentation': true });
    expect(fake.featuresSet[0]).toMatchObject({ op: 'disableTxChecksum', netns: POD_NS, ifName: 'eth0' });
  });

  it('restores the dropped dependants when a TX checksum comes back, as the kernel does', () => {
    const fake = podFake();
    fake.runIn(POD_NS, () => {
      fake.disableTxChecksum('eth0');
      fake.setFeatures('eth0', { 'tx-checksum-ip-generic': true });
    });
    expect(fake.featuresOf(POD_NS, 'eth0')['tx-tcp-segmentation']).toBe(true);
  });

  const refused: { desc: string; run: (f: FakeNative) => void; error: RegExp | string }[] = [
    {
      desc: 'unknown feature name',
      run: (f) => f.setFeatures('eth0', { 'tx-bogus': false }),
      error: 'setFeatures(eth0): unknown feature "tx-bogus"',
    },
    {
      desc: 'non-boolean value',
      run: (f) => f.setFeatures('eth0', { 'rx-gro': 1 as unknown as boolean }),
      error: 'setFeatures(eth0): rx-gro must be a boolean',
    },
    {
      desc: 'fixed feature',
      run: (f) => f.setFeatures('eth0', { 'tx-checksum-ipv4': true }),
      error: 'setFeatures(eth0): tx-checksum-ipv4 stays off [fixed]',
    },
    {
      desc: 'feature whose prerequisite is off',
      run: (f) => {
        f.disableTxChecksum('eth0');
        f.setFeatures('eth0', { 'tx-tcp-segmentation': true });
      },
      error: 'setFeatures(eth0): tx-tcp-segmentation stays off',
    },
    { desc: 'unknown link', run: (f) => f.getFeatures('eth1'), error: 'if_nametoindex(eth1): No such device' },
  ];
  it.each(refused)('refuses: $desc', ({ run, error }) => {
    const fake = podFake();
    expect(() => fake.runIn(POD_NS, () => run(fake))).toThrow(error);
  });

  it('disableTxChecksum reports a TX checksum that is fixed on', () => {
    const fake = new FakeNative().addLink('lo', {
      features: { 'tx-checksum-ip-generic': true, 'tx-tcp-segmentation': true },
      fixed: ['tx-checksum-ip-generic'],
    });
    expect(() => fake.disableTxChecksum('lo')).toThrow(
      'disableTxChecksum(lo): tx-checksum-ip-generic stays on [fixed]',
    );
    expect(fake.featuresOf(null, 'lo')).toEqual({
      'tx-checksum-ip-generic': true,
      'tx-tcp-segmentation': true,
    });
  });
});

describe('FakeNative watchExit', () => {
  /** Whether p has settled once the microtasks queued so far have run. */
  async function settled(p: Promise<unknown>): Promise<boolean> {
    let done = false;
    p.then(
      () => (done = true),
      () => (done = true),
    );
    for (let i = 0; i < 5; i++) await Promise.resolve();
    return done;
  }

  it('is part of NativeOps and resolves when the process exits, not before', async () => {
    const fake = new FakeNative().addProcess(4242);
    const ops: NativeOps = fake;
    const watch = ops.watchExit(4242);
    expect(watch.exited).toBeInstanceOf(Promise);
    expect(await settled(watch.exited)).toBe(false);
    expect(fake.watchCount(4242)).toBe(1);
    fake.exitProcess(4242);
    await expect(watch.exited).resolves.toBeUndefined();
    expect(fake.watchCount(4242)).toBe(0);
  });

  it('resolves every watch of the exited process and only those', async () => {
    const fake = new FakeNative().addProcess(100).addProcess(200);
    const [a, b, other] = [fake.watchExit(100), fake.watchExit(100), fake.watchExit(200)];
    fake.exitProcess(100);
    await expect(Promise.all([a.exited, b.exited])).resolves.toEqual([undefined, undefined]);
    expect(await settled(other.exited)).toBe(false);
    expect(fake.watchCount(200)).toBe(1);
  });

  it('rejects like the addon (ESRCH) for an unknown pid and for one that has exited', async () => {
    const fake = new FakeNative().addProcess(100);
    fake.exitProcess(100);
    for (const pid of [100, 4194304]) {
      const watch = fake.watchExit(pid);
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

  it('cancel leaves the promise pending, also when the process exits later', async () => {
    const fake = new FakeNative().addProcess(100);
    const cancelled = fake.watchExit(100);
    const kept = fake.watchExit(100);
    cancelled.cancel();
    cancelled.cancel();
    expect(fake.watchCount(100)).toBe(1);
    fake.exitProcess(100);
    await kept.exited;
    expect(await settled(cancelled.exited)).toBe(false);
  });

  it('cancel after the exit is a no-op', async () => {
    const fake = new FakeNative().addProcess(100);
    const watch = fake.watchExit(100);
    fake.exitProcess(100);
    await watch.exited;
    expect(() => watch.cancel()).not.toThrow();
  });

  it.each([0, -1, 1.5, NaN, Infinity, 2 ** 31, '100', undefined, null])(
    'throws a TypeError at once for pid %s',
    (pid) => {
      const fake = new FakeNative().addProcess(100);
      expect(() => fake.watchExit(pid as number)).toThrow(TypeError);
      expect(() => fake.watchExit(pid as number)).toThrow('watchExit: pid must be an integer from 1 to 2147483647');
    },
  );

  it('accepts the largest pid_t', async () => {
    const fake = new FakeNative();
    await expect(fake.watchExit(2 ** 31 - 1).exited).rejects.toThrow('pidfd_open(2147483647): No such process');
  });

  it('exitProcess refuses a process that was never added', () => {
    expect(() => new FakeNative().exitProcess(100)).toThrow('FakeNative.exitProcess: no process 100');
  });
});

describe('FakeNative configurePodInterface', () => {
  const SPEC = { ifName: 'eth0', addresses: ['10.16.0.5/16', 'fd00::5/64'], gateways: ['10.16.0.1', 'fd00::1'], disableTxChecksum: true };

  function downPod(): FakeNative {
    return new FakeNative().addNetns(POD_NS).addNetns(OTHER_NS).addLink('eth0', { netns: POD_NS, up: false });
  }

  it('is part of NativeOps; records addresses, up, default routes and TX checksum off on the netns', async () => {
    const fake = downPod();
    const ops: NativeOps = fake;
    const p = ops.configurePodInterface(POD_NS, SPEC);
    expect(p).toBeInstanceOf(Promise);
    await expect(p).resolves.toBeUndefined();
    expect(fake.podInterfaceOf(POD_NS, 'eth0')).toEqual({
      up: true,
      addresses: ['10.16.0.5/16', 'fd00::5/64'],
      routes: [{ dst: '0.0.0.0/0', gateway: '10.16.0.1' }, { dst: '::/0', gateway: 'fd00::1' }],
    });
    expect(fake.podInterfacesConfigured).toEqual([{ netns: POD_NS, ...SPEC }]);
    const features = fake.featuresOf(POD_NS, 'eth0');
    expect(Object.entries(features).filter(([n, on]) => n.startsWith('tx-checksum-') && on)).toEqual([]);
    expect(features['tx-tcp-segmentation']).toBe(false);
    expect(fake.featuresSet).toEqual([
      expect.objectContaining({ op: 'disableTxChecksum', netns: POD_NS, ifName: 'eth0' }),
    ]);
    // Worker-thread work: the fake thread entered no netns.
    expect(fake.netnsEntered).toEqual([]);
    expect(fake.currentNetns).toBeNull();
  });

  it('leaves the offloads alone unless asked, and acts in netnsPath only', async () => {
    const fake = downPod().addLink('eth0', { netns: OTHER_NS, up: false });
    await fake.runIn(OTHER_NS, () => fake.configurePodInterface(POD_NS, { ...SPEC, disableTxChecksum: false }));
    expect(fake.featuresOf(POD_NS, 'eth0')).toEqual(VETH_FEATURES);
    expect(fake.featuresSet).toEqual([]);
    expect(fake.podInterfaceOf(OTHER_NS, 'eth0')).toEqual({ up: false, addresses: [], routes: [] });
  });

  it('adds an equal address once and replaces the default route of the family', async () => {
    const fake = downPod();
    await fake.configurePodInterface(POD_NS, { ...SPEC, gateways: ['10.16.0.1'], disableTxChecksum: false });
    await fake.configurePodInterface(POD_NS, { ...SPEC, addresses: ['10.16.0.5/16'], gateways: ['10.16.0.254'], disableTxChecksum: false });
    expect(fake.podInterfaceOf(POD_NS, 'eth0')).toEqual({
      up: true,
      addresses: ['10.16.0.5/16', 'fd00::5/64'],
      routes: [{ dst: '0.0.0.0/0', gateway: '10.16.0.254' }],
    });
  });

  it('rejects like the addon for a missing netns or interface, naming the step', async () => {
    const fake = downPod();
    await expect(fake.configurePodInterface('/var/run/netns/missing', SPEC)).rejects.toMatchObject({
      message: 'setns(/var/run/netns/missing): No such file or directory',
      code: 'ENOENT',
      syscall: 'open',
    });
    const e = await rejection(fake.configurePodInterface(POD_NS, { ...SPEC, ifName: 'eth1' }));
    expect(isNativeSystemError(e)).toBe(true);
    expect(e).toMatchObject({ message: 'if_nametoindex(eth1): No such device', code: 'ENODEV', syscall: 'if_nametoindex' });
    expect(fake.podInterfacesConfigured).toEqual([]);
    expect(fake.podInterfaceOf(POD_NS, 'eth0').up).toBe(false);
  });

  it('rejects a gateway off every prefix like the kernel, after the other requests took effect', async () => {
    const fake = downPod();
    await expect(fake.configurePodInterface(POD_NS, { ...SPEC, gateways: ['10.99.0.1', 'fd00::1'] })).rejects.toMatchObject({
      message: 'RTM_NEWROUTE(eth0 default via 10.99.0.1): Network is unreachable',
      code: 'ENETUNREACH',
      syscall: 'RTM_NEWROUTE',
    });
    expect(fake.podInterfaceOf(POD_NS, 'eth0')).toEqual({
      up: true,
      addresses: ['10.16.0.5/16', 'fd00::5/64'],
      routes: [{ dst: '::/0', gateway: 'fd00::1' }],
    });
    await expect(fake.configurePodInterface(POD_NS, { ...SPEC, gateways: ['fd01::1'] })).rejects.toMatchObject({
      message: 'RTM_NEWROUTE(eth0 default via fd01::1): No route to host',
      code: 'EHOSTUNREACH',
    });
    // IPv6 link-local gateways are on-link without any address.
    await expect(fake.configurePodInterface(POD_NS, { ...SPEC, addresses: [], gateways: ['fe80::1'] })).resolves.toBeUndefined();
    expect(fake.featuresSet).toHaveLength(1);
  });

  it.each([
    { desc: 'non-string netns path', args: [42, SPEC], error: 'configurePodInterface: argument 1 must be a string' },
    { desc: 'no spec', args: [POD_NS], error: 'configurePodInterface: argument 2 must be an object' },
    { desc: 'an array spec', args: [POD_NS, []], error: 'configurePodInterface: argument 2 must be an object' },
    { desc: 'no ifName', args: [POD_NS, { ...SPEC, ifName: undefined }], error: 'configurePodInterface: ifName must be a non-empty string' },
    { desc: 'a bad ifName', args: [POD_NS, { ...SPEC, ifName: 'eth 0' }], error: 'configurePodInterface: invalid interface name "eth 0"' },
    { desc: 'addresses not an array', args: [POD_NS, { ...SPEC, addresses: '10.0.0.1/8' }], error: 'configurePodInterface: addresses must be an array' },
    { desc: 'a non-string address', args: [POD_NS, { ...SPEC, addresses: [1] }], error: 'configurePodInterface: addresses[0] must be a string' },
    { desc: 'no prefix', args: [POD_NS, { ...SPEC, addresses: ['10.16.0.5/16', '10.0.0.1'] }], error: 'configurePodInterface: addresses[1]: "10.0.0.1" is not an address in CIDR notation' },
    { desc: 'an IPv4 prefix over 32', args: [POD_NS, { ...SPEC, addresses: ['10.0.0.1/33'] }], error: 'configurePodInterface: addresses[0]: "10.0.0.1/33" is not an address in CIDR notation' },
    { desc: 'an IPv6 prefix over 128', args: [POD_NS, { ...SPEC, addresses: ['fd00::1/129'] }], error: 'configurePodInterface: addresses[0]: "fd00::1/129" is not an address in CIDR notation' },
    { desc: 'a signed prefix', args: [POD_NS, { ...SPEC, addresses: ['10.0.0.1/+8'] }], error: 'configurePodInterface: addresses[0]: "10.0.0.1/+8" is not an address in CIDR notation' },
    { desc: 'a bad address', args: [POD_NS, { ...SPEC, addresses: ['10.0.0.256/8'] }], error: 'configurePodInterface: addresses[0]: "10.0.0.256/8" is not an address in CIDR notation' },
    { desc: 'a zoned address', args: [POD_NS, { ...SPEC, addresses: ['fe80::1%eth0/64'] }], error: 'configurePodInterface: addresses[0]: "fe80::1%eth0/64" is not an address in CIDR notation' },
    { desc: 'gateways missing', args: [POD_NS, { ...SPEC, gateways: undefined }], error: 'configurePodInterface: gateways must be an array' },
    { desc: 'a gateway with a prefix', args: [POD_NS, { ...SPEC, gateways: ['10.16.0.1/16'] }], error: 'configurePodInterface: gateways[0]: "10.16.0.1/16" is not an IP address' },
    { desc: 'too many addresses', args: [POD_NS, { ...SPEC, addresses: Array(33).fill('10.0.0.1/8') }], error: 'configurePodInterface: addresses must have at most 32 entries' },
    { desc: 'disableTxChecksum missing', args: [POD_NS, { ...SPEC, disableTxChecksum: undefined }], error: 'configurePodInterface: disableTxChecksum must be a boolean' },
  ])('rejects $desc with the TypeError before anything happens', async ({ args, error }) => {
    const fake = downPod();
    const configure = fake.configurePodInterface.bind(fake) as (...a: unknown[]) => Promise<void>;
    let p: Promise<void> | undefined;
    expect(() => (p = configure(...args))).not.toThrow();
    const e = await rejection(p!);
    expect(e).toBeInstanceOf(TypeError);
    expect((e as Error).message).toBe(error);
    expect(fake.podInterfaceOf(POD_NS, 'eth0')).toEqual({ up: false, addresses: [], routes: [] });
    expect(fake.featuresSet).toEqual([]);
  });
});
