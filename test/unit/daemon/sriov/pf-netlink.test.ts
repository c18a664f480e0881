// PF-side VF settings over rtnetlink (daemon/sriov/pf-netlink.ts), without a kernel: the bytes
// encodeVfInfoList puts on the wire (through the netlink package's own formatter, as setLink
// sends them) are walked here with an independent attribute reader and checked against the uapi
// structs of include/uapi/linux/if_link.h (offsets, sizes, IFLA_VF_* numbers; the numbers also
// against the machine's /usr/include/linux/if_link.h when it is there); decodeVfSettings reads
// hand-built kernel-style VF lists (several VFs, out of order, the kernel's -1 "not reported",
// TX_RATE only); NetlinkNic against a fake socket sends one RTM_SETLINK per apply, completes half
// pairs from a read, and names PF, VF and every setting when the kernel refuses.
import * as fs from 'node:fs';
import { endianness } from 'node:os';
import { AttrStream, ifla, type RtNetlinkSocket } from 'netlink';
import { describe, expect, it } from 'vitest';
import { InvalidConfigError, PlumbError } from '../../../../common/errors';
import { VF_SETTINGS_DEFAULT, type VfSettings } from '../../../../daemon/sriov/nic';
import {
  decodeVfSettings,
  describeVfChange,
  encodeVfInfoList,
  IFLA_VF,
  NetlinkNic,
  netlinkErrorText,
  RTEXT_FILTER_VF,
  type PfLinkSocket,
} from '../../../../daemon/sriov/pf-netlink';

// Netlink structs are host byte order; the helpers below write little-endian.
const IFLA_VFINFO_LIST = 22;
const IFLA_NUM_VF = 21;
const IFLA_IFNAME = 3;
const IFLA_VF_INFO = 1;
const IFLA_VF_BROADCAST = 13;
const IFLA_VF_VLAN_LIST = 12;

interface Attr { type: number; len: number; payload: Buffer }

/** Walks a stream of netlink attributes (netlink(7): u16 len, u16 type, payload, pad to 4). */
function attrs(buf: Buffer): Attr[] {
  const out: Attr[] = [];
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    const type = buf.readUInt16LE(off + 2) & 0x3fff;
    expect(len).toBeGreaterThanOrEqual(4);
    out.push({ type, len, payload: buf.subarray(off + 4, off + len) });
    off += (len + 3) & ~3;
  }
  expect(off).toBe(buf.length);
  return out;
}

function nlattr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}
function u32s(...values: number[]): Buffer {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => b.writeUInt32LE(v >>> 0, 4 * i));
  return b;
}
function macStruct(vf: number, mac: number[]): Buffer {
  const b = Buffer.alloc(36);
  b.writeUInt32LE(vf, 0);
  Buffer.from(mac).copy(b, 4);
  return b;
}

/** The link attributes as the netlink package writes them into the request. */
function wire(linkAttrs: ifla.LinkAttrs): Buffer {
  const s = new AttrStream();
  s.emit(ifla.formatLinkAttrs(linkAttrs));
  return Buffer.concat(s.bufs);
}

/** One IFLA_VF_INFO the way rtnl_fill_vfinfo lays it out (every struct, in the kernel's order). */
function kernelVfInfo(vf: number, o: { mac: number[]; vlan: number; qos: number; min: number; max: number; spoofchk: number; linkState: number; trust: number }): Buffer {
  return nlattr(IFLA_VF_INFO, Buffer.concat([
    nlattr(IFLA_VF.MAC, macStruct(vf, o.mac)),
    nlattr(IFLA_VF_BROADCAST, Buffer.alloc(32, 0xff)),
    nlattr(IFLA_VF.VLAN, u32s(vf, o.vlan, o.qos)),
    nlattr(IFLA_VF.RATE, u32s(vf, o.min, o.max)),
    nlattr(IFLA_VF.TX_RATE, u32s(vf, o.max)),
    nlattr(IFLA_VF.SPOOFCHK, u32s(vf, o.spoofchk)),
    nlattr(IFLA_VF.LINK_STATE, u32s(vf, o.linkState)),
    nlattr(7 /* RSS_QUERY_EN */, u32s(vf, 0xffffffff)),
    nlattr(IFLA_VF.TRUST, u32s(vf, o.trust)),
    nlattr(IFLA_VF_VLAN_LIST, nlattr(1, Buffer.concat([u32s(vf, o.vlan, o.qos), Buffer.from([0x81, 0x00, 0, 0])]))),
  ]));
}

/** A PF's RTM_NEWLINK attributes with the given VF infos, parsed by the netlink package as getLink does. */
function pfLinkAttrs(name: string, infos: Buffer[]): ifla.LinkAttrs {
  return ifla.parseLinkAttrs(Buffer.concat([
    nlattr(IFLA_IFNAME, Buffer.from(`${name}\0`)),
    nlattr(IFLA_NUM_VF, u32s(infos.length)),
    nlattr(IFLA_VFINFO_LIST, Buffer.concat(infos)),
  ]));
}

const FULL: VfSettings = { mac: '02:11:22:33:44:55', vlan: 100, qos: 2, spoofchk: false, trust: true, linkState: 'disable', minTxRate: 10, maxTxRate: 1000 };

it('runs on a little-endian host (the byte checks below are written little-endian)', () => {
  expect(endianness()).toBe('LE');
});

describe('encodeVfInfoList', () => {
  it('lays out IFLA_VFINFO_LIST > IFLA_VF_INFO > one uapi struct per setting, each starting with the VF number', () => {
    const bytes = wire({ vfinfoList: encodeVfInfoList(3, FULL) });
    const [list, ...rest] = attrs(bytes);
    expect(rest).toEqual([]);
    expect(list!.type).toBe(IFLA_VFINFO_LIST);
    const infos = attrs(list!.payload);
    expect(infos.map((a) => a.type)).toEqual([IFLA_VF_INFO]);
    const inner = attrs(infos[0]!.payload);
    // Kernel enum order; lengths are NLA_HDRLEN + sizeof(struct ifla_vf_*).
    expect(inner.map((a) => [a.type, a.len])).toEqual([
      [1, 4 + 36], // IFLA_VF_MAC, struct ifla_vf_mac { __u32 vf; __u8 mac[32]; }
      [2, 4 + 12], // IFLA_VF_VLAN, struct ifla_vf_vlan { vf; vlan; qos; }
      [4, 4 + 8], // IFLA_VF_SPOOFCHK, struct ifla_vf_spoofchk { vf; setting; }
      [5, 4 + 8], // IFLA_VF_LINK_STATE, struct ifla_vf_link_state { vf; link_state; }
      [6, 4 + 12], // IFLA_VF_RATE, struct ifla_vf_rate { vf; min_tx_rate; max_tx_rate; }
      [9, 4 + 8], // IFLA_VF_TRUST, struct ifla_vf_trust { vf; setting; }
    ]);
    const [mac, vlan, spoofchk, linkState, rate, trust] = inner.map((a) => a.payload);
    for (const b of [mac, vlan, spoofchk, linkState, rate, trust]) expect(b!.readUInt32LE(0)).toBe(3);
    expect([...mac!.subarray(4, 10)]).toEqual([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);
    expect(mac!.subarray(10).equals(Buffer.alloc(26))).toBe(true);
    expect([vlan!.readUInt32LE(4), vlan!.readUInt32LE(8)]).toEqual([100, 2]);
    expect(spoofchk!.readUInt32LE(4)).toBe(0);
    expect(linkState!.readUInt32LE(4)).toBe(2); // IFLA_VF_LINK_STATE_DISABLE
    expect([rate!.readUInt32LE(4), rate!.readUInt32LE(8)]).toEqual([10, 1000]);
    expect(trust!.readUInt32LE(4)).toBe(1);
  });

  it('carries only the settings given', () => {
    const inner = attrs(attrs(attrs(wire({ vfinfoList: encodeVfInfoList(7, { spoofchk: true }) }))[0]!.payload)[0]!.payload);
    expect(inner.map((a) => a.type)).toEqual([IFLA_VF.SPOOFCHK]);
    expect([...u32View(inner[0]!.payload)]).toEqual([7, 1]);
  });

  it.each([['auto', 0], ['enable', 1], ['disable', 2]] as const)('encodes link state %s as %i', (linkState, n) => {
    const info = encodeVfInfoList(0, { linkState }).x![0]!;
    expect(info.linkState!.readUInt32LE(4)).toBe(n);
  });

  it('refuses half pairs: vlan shares its struct with qos, min_tx_rate with max_tx_rate', () => {
    expect(() => encodeVfInfoList(0, { vlan: 5 })).toThrow(/vlan needs qos/);
    expect(() => encodeVfInfoList(0, { qos: 5 })).toThrow(/vlan needs qos/);
    expect(() => encodeVfInfoList(0, { maxTxRate: 5 })).toThrow(/minTxRate needs maxTxRate/);
  });

  it('round-trips through the netlink package and decodeVfSettings', () => {
    for (const settings of [FULL, VF_SETTINGS_DEFAULT, { ...FULL, linkState: 'enable' as const, spoofchk: true, trust: false, vlan: 4095, qos: 7 }]) {
      const parsed = ifla.parseLinkAttrs(wire({ vfinfoList: encodeVfInfoList(12, settings) }));
      expect(decodeVfSettings(parsed, 12)).toEqual(settings);
    }
  });
});

function u32View(b: Buffer): number[] {
  return Array.from({ length: b.length / 4 }, (_, i) => b.readUInt32LE(4 * i));
}

describe('decodeVfSettings', () => {
  const vf = (n: number, over: Partial<Parameters<typeof kernelVfInfo>[1]> = {}) =>
    kernelVfInfo(n, { mac: [2, 0, 0, 0, 0, n], vlan: 10 + n, qos: n % 8, min: n, max: 100 * n, spoofchk: n % 2, linkState: n % 3, trust: (n + 1) % 2, ...over });

  it('picks the VF by its vf number among several, whatever the list order', () => {
    const attrsOf = pfLinkAttrs('eth9', [vf(0), vf(3), vf(1), vf(2)]);
    expect(decodeVfSettings(attrsOf, 2)).toEqual({ mac: '02:00:00:00:00:02', vlan: 12, qos: 2, spoofchk: false, trust: true, linkState: 'disable', minTxRate: 2, maxTxRate: 200 });
    expect(decodeVfSettings(attrsOf, 3)).toEqual({ mac: '02:00:00:00:00:03', vlan: 13, qos: 3, spoofchk: true, trust: false, linkState: 'auto', minTxRate: 3, maxTxRate: 300 });
    expect(decodeVfSettings(attrsOf, 0)?.mac).toBe('02:00:00:00:00:00');
  });

  it('is undefined for a VF the PF does not list, and for a PF with no VF list', () => {
    expect(decodeVfSettings(pfLinkAttrs('eth9', [vf(0), vf(1)]), 2)).toBeUndefined();
    expect(decodeVfSettings({ ifname: 'veth0' }, 0)).toBeUndefined();
  });

  it("reads the kernel's -1 for spoofchk and trust (driver did not say) as the defaults", () => {
    const got = decodeVfSettings(pfLinkAttrs('eth9', [vf(1, { spoofchk: 0xffffffff, trust: 0xffffffff })]), 1);
    expect(got).toMatchObject({ spoofchk: VF_SETTINGS_DEFAULT.spoofchk, trust: VF_SETTINGS_DEFAULT.trust });
  });

  it('takes defaults for absent attributes and max_tx_rate from IFLA_VF_TX_RATE without IFLA_VF_RATE', () => {
    const info = nlattr(IFLA_VF_INFO, Buffer.concat([nlattr(IFLA_VF.MAC, macStruct(4, [2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee])), nlattr(IFLA_VF.TX_RATE, u32s(4, 250))]));
    expect(decodeVfSettings(pfLinkAttrs('eth9', [info]), 4)).toEqual({ ...VF_SETTINGS_DEFAULT, mac: '02:aa:bb:cc:dd:ee', maxTxRate: 250 });
  });

  it('finds the VF number in another struct when there is no IFLA_VF_MAC', () => {
    const info = nlattr(IFLA_VF_INFO, nlattr(IFLA_VF.TRUST, u32s(5, 1)));
    expect(decodeVfSettings(pfLinkAttrs('eth9', [info]), 5)).toEqual({ ...VF_SETTINGS_DEFAULT, trust: true });
  });

  it('refuses a struct shorter than its uapi size and an unknown link state', () => {
    const short = nlattr(IFLA_VF_INFO, Buffer.concat([nlattr(IFLA_VF.MAC, macStruct(0, [2, 0, 0, 0, 0, 1])), nlattr(IFLA_VF.VLAN, u32s(0, 5))]));
    expect(() => decodeVfSettings(pfLinkAttrs('eth9', [short]), 0)).toThrow('VF 0: IFLA_VF_VLAN is 8 bytes, expected 12');
    expect(() => decodeVfSettings(pfLinkAttrs('eth9', [vf(0, { linkState: 3 })]), 0)).toThrow('unknown IFLA_VF_LINK_STATE 3');
  });
});

describe('uapi numbers', () => {
  const header = '/usr/include/linux/if_link.h';
  it.skipIf(!fs.existsSync(header))('IFLA_VF_* match the enum in the installed if_link.h', () => {
    const text = fs.readFileSync(header, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
    const block = /enum\s*\{\s*(IFLA_VF_UNSPEC,[^}]*)\}/.exec(text)?.[1];
    expect(block).toBeDefined();
    const names = block!.split(',').map((s) => s.trim()).filter(Boolean);
    for (const [name, n] of Object.entries({ MAC: IFLA_VF.MAC, VLAN: IFLA_VF.VLAN, TX_RATE: IFLA_VF.TX_RATE, SPOOFCHK: IFLA_VF.SPOOFCHK, LINK_STATE: IFLA_VF.LINK_STATE, RATE: IFLA_VF.RATE, TRUST: IFLA_VF.TRUST })) {
      expect(names.indexOf(`IFLA_VF_${name}`), name).toBe(n);
    }
    expect(/#define\s+RTEXT_FILTER_VF\s+\(1 << 0\)/.test(fs.readFileSync('/usr/include/linux/rtnetlink.h', 'utf8'))).toBe(RTEXT_FILTER_VF === 1);
  });
});

/** Records requests; answers getLink with `link` and setLink with `setError` (or success). */
class FakeSocket implements PfLinkSocket {
  readonly gets: ifla.LinkAttrs[] = [];
  readonly sets: ifla.LinkAttrs[] = [];
  constructor(private readonly link: ifla.LinkAttrs, private readonly setError?: Error) {}

  getLink: RtNetlinkSocket['getLink'] = async (_data, attrs) => {
    this.gets.push(attrs ?? {});
    return [{ kind: 'link', data: {}, attrs: this.link }];
  };

  setLink: RtNetlinkSocket['setLink'] = async (_data, attrs) => {
    this.sets.push(attrs ?? {});
    if (this.setError) throw this.setError;
    return [];
  };
}

const noEthtool = { setFeatures: () => { throw new Error('not expected'); } };
const VF3 = { pfPci: '0000:3b:00.0', pfNetdev: 'eth9', vfIndex: 3 };

describe('NetlinkNic', () => {
  const pf = () => pfLinkAttrs('eth9', [0, 1, 2, 3].map((n) => kernelVfInfo(n, { mac: [2, 0, 0, 0, 0, n], vlan: 7, qos: 5, min: 1, max: 50, spoofchk: 1, linkState: 0, trust: 0 })));

  it('read asks for the PF with IFLA_EXT_MASK = RTEXT_FILTER_VF and decodes its VF', async () => {
    const sock = new FakeSocket(pf());
    const nic = new NetlinkNic({ rtnl: sock, ethtool: noEthtool });
    expect(await nic.vfConfig.read(VF3)).toEqual({ mac: '02:00:00:00:00:03', vlan: 7, qos: 5, spoofchk: true, trust: false, linkState: 'auto', minTxRate: 1, maxTxRate: 50 });
    expect(sock.gets).toEqual([{ ifname: 'eth9', extMask: Buffer.from([1, 0, 0, 0]) }]);
  });

  it('read of a VF the PF does not report fails naming PF and VF', async () => {
    const nic = new NetlinkNic({ rtnl: new FakeSocket(pf()), ethtool: noEthtool });
    await expect(nic.vfConfig.read({ ...VF3, vfIndex: 9 })).rejects.toThrow(new PlumbError('PF eth9 reports no VF 9 (it reports 4 VFs)'));
    const noVfs = new NetlinkNic({ rtnl: new FakeSocket({ ifname: 'veth0' }), ethtool: noEthtool });
    await expect(noVfs.vfConfig.read({ ...VF3, pfNetdev: 'veth0', vfIndex: 0 })).rejects.toThrow('PF veth0 reports no VF 0 (it reports no VF list at all)');
  });

  it('apply sends one RTM_SETLINK on the PF by name with only the settings given', async () => {
    const sock = new FakeSocket(pf());
    const nic = new NetlinkNic({ rtnl: sock, ethtool: noEthtool });
    await nic.vfConfig.apply(VF3, { mac: '02:AA:00:00:00:01', vlan: 100, qos: 2, trust: true });
    expect(sock.gets).toEqual([]);
    expect(sock.sets).toHaveLength(1);
    expect(sock.sets[0]!.ifname).toBe('eth9');
    const inner = attrs(attrs(attrs(wire({ vfinfoList: sock.sets[0]!.vfinfoList! }))[0]!.payload)[0]!.payload);
    expect(inner.map((a) => a.type)).toEqual([IFLA_VF.MAC, IFLA_VF.VLAN, IFLA_VF.TRUST]);
    expect(inner[0]!.payload.subarray(4, 10).toString('hex')).toBe('02aa00000001');
  });

  it('apply with half a pair reads the other half first and keeps it', async () => {
    const sock = new FakeSocket(pf());
    const nic = new NetlinkNic({ rtnl: sock, ethtool: noEthtool });
    await nic.vfConfig.apply(VF3, { vlan: 200, maxTxRate: 80 });
    expect(sock.gets).toHaveLength(1);
    const info = sock.sets[0]!.vfinfoList!.x![0]!;
    expect(u32View(info.vlan!)).toEqual([3, 200, 5]);
    expect(u32View(info.rate!)).toEqual([3, 1, 80]);
  });

  it('apply with nothing to change sends nothing', async () => {
    const sock = new FakeSocket(pf());
    await new NetlinkNic({ rtnl: sock, ethtool: noEthtool }).vfConfig.apply(VF3, {});
    expect(sock.sets).toEqual([]);
  });

  it('a refused apply names PF, VF and every setting sent, with the errno text', async () => {
    const sock = new FakeSocket(pf(), new Error('Request rejected: ENOTSUP'));
    const nic = new NetlinkNic({ rtnl: sock, ethtool: noEthtool });
    await expect(nic.vfConfig.apply(VF3, { vlan: 100, qos: 2 })).rejects.toThrow(
      new PlumbError('PF eth9 VF 3: setting vlan 100 qos 2: Operation not supported (EOPNOTSUPP)'),
    );
    await expect(nic.vfConfig.apply(VF3, { mac: '02:00:00:00:00:09', spoofchk: false, linkState: 'enable', minTxRate: 0, maxTxRate: 10 })).rejects.toThrow(
      'PF eth9 VF 3: setting mac 02:00:00:00:00:09, spoofchk off, link-state enable, min_tx_rate 0 max_tx_rate 10: Operation not supported (EOPNOTSUPP)',
    );
  });

  it.each([
    [{ vlan: -1, qos: 0 }, 'PF eth9 VF 3: invalid vlan -1'],
    [{ vlan: 1.5, qos: 0 }, 'invalid vlan 1.5'],
    [{ mac: '02:00:00:00:00' }, 'invalid mac "02:00:00:00:00"'],
    [{ linkState: 'up' }, 'invalid linkState "up"'],
    [{ spoofchk: 'yes' }, 'invalid spoofchk "yes"'],
    [{ colour: 'red' }, 'unknown VF setting "colour"'],
  ])('refuses %j before sending anything', async (change, message) => {
    const sock = new FakeSocket(pf());
    const nic = new NetlinkNic({ rtnl: sock, ethtool: noEthtool });
    const err = await nic.vfConfig.apply(VF3, change as Partial<VfSettings>).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidConfigError);
    expect((err as Error).message).toContain(message);
    expect(sock.sets).toEqual([]);
  });

  it('refuses a PF name or VF index the kernel could not take', async () => {
    const nic = new NetlinkNic({ rtnl: new FakeSocket(pf()), ethtool: noEthtool });
    await expect(nic.vfConfig.read({ ...VF3, pfNetdev: 'a/b' })).rejects.toThrow('"a/b" is not a valid PF netdev name');
    await expect(nic.vfConfig.read({ ...VF3, vfIndex: -1 })).rejects.toThrow('VF index -1 is not a non-negative integer');
  });

  it('enableHwTcOffload asks ethtool for hw-tc-offload and wraps its refusal', async () => {
    const calls: Array<[string, Record<string, boolean>]> = [];
    const ok = new NetlinkNic({ rtnl: new FakeSocket({}), ethtool: { setFeatures: (n, f) => { calls.push([n, f]); } } });
    await ok.enableHwTcOffload('eth9');
    expect(calls).toEqual([['eth9', { 'hw-tc-offload': true }]]);
    const refusing = new NetlinkNic({ rtnl: new FakeSocket({}), ethtool: { setFeatures: () => { throw new Error('setFeatures(eth9): hw-tc-offload stays off'); } } });
    await expect(refusing.enableHwTcOffload('eth9')).rejects.toThrow('cannot enable hw-tc-offload on eth9: setFeatures(eth9): hw-tc-offload stays off');
  });
});

describe('messages', () => {
  it('netlinkErrorText turns the package errors into errno text', () => {
    expect(netlinkErrorText(new Error('Request rejected: ENOTSUP'))).toBe('Operation not supported (EOPNOTSUPP)');
    expect(netlinkErrorText(new Error('Request rejected: ENODEV'))).toBe('No such device (ENODEV)');
    expect(netlinkErrorText(new Error('Request rejected: 999'))).toBe('errno 999');
    expect(netlinkErrorText(new Error('Timeout has been reached'))).toBe('Timeout has been reached');
  });

  it('describeVfChange speaks ip-link words', () => {
    expect(describeVfChange(FULL)).toBe('mac 02:11:22:33:44:55, vlan 100 qos 2, spoofchk off, trust on, link-state disable, min_tx_rate 10 max_tx_rate 1000');
  });
});
