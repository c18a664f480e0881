// The attachment checkpoint in OVS Interface and OVN LSP external_ids: written, read back, owned.
import { describe, expect, it } from 'vitest';
import type { Attachment } from '../../../../daemon/store/attachment';
import {
  EXT,
  OWNER,
  fromInterfaceExternalIds,
  fromLspExternalIds,
  toInterfaceExternalIds,
  toLspExternalIds,
} from '../../../../daemon/store/external-ids';

const bare: Attachment = {
  sandbox: 'c0ffee',
  ifName: 'net1',
  netns: '/var/run/netns/cni-1234',
  network: 'ovn',
  lspName: 'c0ffee.net1',
  logicalSwitch: 'ovn-default',
  hostIfName: '0123456789ab_h',
  mac: '0a:58:0a:10:00:05',
  ips: ['10.16.0.5'],
};
const pod: Attachment = {
  ...bare,
  ifName: 'eth0',
  lspName: 'web-0.shop',
  ips: ['10.16.0.5', 'fd00:10:16::5'],
  podName: 'web-0',
  podNamespace: 'shop',
  podUid: '7d3c1f1e-0000-4000-8000-000000000001',
};

const attachments: { desc: string; a: Attachment }[] = [
  { desc: 'without pod fields', a: bare },
  { desc: 'with pod fields, dual stack', a: pod },
  { desc: 'with no IPs', a: { ...bare, ips: [] } },
];

describe('Interface external_ids', () => {
  for (const c of attachments) {
    it(`round-trips an attachment ${c.desc}`, () => {
      const ids = toInterfaceExternalIds(c.a);
      expect(fromInterfaceExternalIds(c.a.hostIfName, ids)).toEqual(c.a);
    });
  }

  it('writes the keys ovn-controller and the other OVN CNIs read', () => {
    expect(toInterfaceExternalIds(pod)).toEqual({
      'ovnode:owner': 'ovnode',
      'iface-id': 'web-0.shop',
      'attached-mac': '0a:58:0a:10:00:05',
      ip_addresses: '10.16.0.5,fd00:10:16::5',
      sandbox: 'c0ffee',
      'ovnode:ifname': 'eth0',
      'ovnode:netns': '/var/run/netns/cni-1234',
      'ovnode:logical_switch': 'ovn-default',
      'ovnode:network': 'ovn',
      'iface-id-ver': '7d3c1f1e-0000-4000-8000-000000000001',
      pod_name: 'web-0',
      pod_namespace: 'shop',
    });
  });

  it('leaves the pod keys out when there is no pod', () => {
    const ids = toInterfaceExternalIds(bare);
    for (const k of [EXT.podName, EXT.podNamespace, EXT.ifaceIdVer]) expect(k in ids).toBe(false);
  });

  it('takes the host interface name from the row name', () => {
    expect(fromInterfaceExternalIds('other_h', toInterfaceExternalIds(bare))?.hostIfName).toBe('other_h');
  });

  it('fills defaults for keys an older writer left out', () => {
    const ids = { [EXT.owner]: OWNER, [EXT.sandbox]: 'c1', [EXT.ifaceId]: 'c1.eth0' };
    expect(fromInterfaceExternalIds('h', ids)).toEqual({
      sandbox: 'c1', ifName: 'eth0', netns: '', network: '', lspName: 'c1.eth0', logicalSwitch: '', hostIfName: 'h', mac: '', ips: [],
    });
  });

  const foreign: { desc: string; ids: Record<string, string> }[] = [
    { desc: 'no external_ids', ids: {} },
    { desc: 'another owner', ids: { ...toInterfaceExternalIds(pod), [EXT.owner]: 'kube-ovn' } },
    { desc: 'no owner (an ovn-kubernetes port)', ids: { 'iface-id': 'web-0_shop', sandbox: 'c0ffee', 'iface-id-ver': 'u' } },
    { desc: 'ours but no sandbox', ids: { [EXT.owner]: OWNER, [EXT.ifaceId]: 'x' } },
    { desc: 'ours but no iface-id', ids: { [EXT.owner]: OWNER, [EXT.sandbox]: 'c0ffee' } },
  ];
  for (const c of foreign) {
    it(`ignores a row with ${c.desc}`, () => expect(fromInterfaceExternalIds('eth-x', c.ids)).toBeUndefined());
  }
});

describe('Logical_Switch_Port external_ids', () => {
  for (const c of attachments) {
    it(`round-trips an attachment ${c.desc}`, () => {
      const ids = toLspExternalIds(c.a);
      expect(fromLspExternalIds(c.a.lspName, ids)).toEqual(c.a);
    });
  }

  it('carries the host interface name instead of iface-id', () => {
    const ids = toLspExternalIds(pod);
    expect(EXT.ifaceId in ids).toBe(false);
    expect(ids['ovnode:host_ifname']).toBe(pod.hostIfName);
    const { [EXT.ifaceId]: _ignored, ...rest } = toInterfaceExternalIds(pod);
    expect(ids).toEqual({ ...rest, 'ovnode:host_ifname': pod.hostIfName });
  });

  it('takes an explicit host interface name', () => {
    const ids = toLspExternalIds(bare, 'fedcba987654_h');
    expect(fromLspExternalIds(bare.lspName, ids)?.hostIfName).toBe('fedcba987654_h');
  });

  it('takes the LSP name from the row name', () => {
    expect(fromLspExternalIds('renamed', toLspExternalIds(bare))?.lspName).toBe('renamed');
  });

  const foreign: { desc: string; ids: Record<string, string> }[] = [
    { desc: 'no external_ids', ids: {} },
    { desc: 'another owner', ids: { ...toLspExternalIds(pod), [EXT.owner]: 'kube-ovn' } },
    { desc: 'a kube-ovn pod port', ids: { pod: 'shop/web-0', vendor: 'kube-ovn', ls: 'ovn-default' } },
    { desc: 'ours but no sandbox', ids: { [EXT.owner]: OWNER, 'ovnode:host_ifname': 'h' } },
  ];
  for (const c of foreign) {
    it(`ignores a row with ${c.desc}`, () => expect(fromLspExternalIds('lsp-x', c.ids)).toBeUndefined());
  }
});
