// Intent naming: host veth names and Logical_Switch_Port names, and what buildIntent takes from where.
import { describe, expect, it } from 'vitest';
import type { NodeSettings } from '../../../../daemon/context';
import type { CniArgs } from '../../../../daemon/intent/cni-args';
import { buildIntent, hostIfName, lspNameFor, type PodIntent } from '../../../../daemon/intent/intent';
import type { NetConf } from '../../../../daemon/intent/netconf';
import type { CniRequest } from '../../../../daemon/server/request';

describe('hostIfName', () => {
  const cases: { desc: string; containerId: string; ifName: string }[] = [
    { desc: 'a short id', containerId: 'c1', ifName: 'eth0' },
    { desc: 'a 64-hex container id', containerId: 'a'.repeat(64), ifName: 'eth0' },
    { desc: 'a very long id and ifname', containerId: 'x'.repeat(500), ifName: 'net123456789012' },
  ];
  for (const c of cases) {
    it(`fits IFNAMSIZ-1 (15) for ${c.desc}`, () => {
      const name = hostIfName(c.containerId, c.ifName);
      expect(name.length).toBeLessThanOrEqual(15);
      expect(name).toMatch(/^[0-9a-f]{12}_h$/);
    });
  }

  it('is deterministic, so DEL finds the veth with nothing else left', () => {
    expect(hostIfName('c0ffee', 'eth0')).toBe(hostIfName('c0ffee', 'eth0'));
  });

  const differ: { desc: string; a: [string, string]; b: [string, string] }[] = [
    { desc: 'per ifName in one sandbox', a: ['c0ffee', 'eth0'], b: ['c0ffee', 'net1'] },
    { desc: 'per sandbox for one ifName', a: ['c0ffee', 'eth0'], b: ['c0ffef', 'eth0'] },
  ];
  for (const c of differ) {
    it(`differs ${c.desc}`, () => expect(hostIfName(...c.a)).not.toBe(hostIfName(...c.b)));
  }
});

describe('lspNameFor', () => {
  const cases: { desc: string; ifName: string; args: CniArgs; want: string }[] = [
    { desc: 'a pod on eth0', ifName: 'eth0', args: { podName: 'web-0', podNamespace: 'shop' }, want: 'web-0.shop' },
    { desc: 'a pod on a second interface', ifName: 'net1', args: { podName: 'web-0', podNamespace: 'shop' }, want: 'web-0.shop.net1' },
    { desc: 'no pod args', ifName: 'eth0', args: {}, want: 'c0ffee.eth0' },
    { desc: 'no pod args, second interface', ifName: 'net1', args: {}, want: 'c0ffee.net1' },
    { desc: 'a pod name without namespace', ifName: 'eth0', args: { podName: 'web-0' }, want: 'c0ffee.eth0' },
    { desc: 'a namespace without pod name', ifName: 'eth0', args: { podNamespace: 'shop' }, want: 'c0ffee.eth0' },
  ];
  for (const c of cases) {
    it(c.desc, () => expect(lspNameFor({ containerId: 'c0ffee', ifName: c.ifName, args: c.args })).toBe(c.want));
  }
});

describe('buildIntent', () => {
  const node: NodeSettings = { name: 'node-1', bridge: 'br-int', mtu: 1400, datapathType: 'netdev' };
  const baseConf: NetConf = { cniVersion: '1.0.0', name: 'ovn', type: 'ovnode', staticIps: [] };

  function req(conf: Partial<NetConf>, args: CniArgs): CniRequest {
    return {
      command: 'ADD',
      containerId: 'c0ffee',
      netns: '/var/run/netns/p',
      ifName: 'eth0',
      args,
      conf: { ...baseConf, ...conf },
      deadline: 0,
    };
  }

  const cases: { desc: string; conf: Partial<NetConf>; args: CniArgs; want: Partial<PodIntent> }[] = [
    {
      desc: 'defaults: default switch, node MTU, no statics',
      conf: {},
      args: {},
      want: { lspName: 'c0ffee.eth0', logicalSwitch: 'ovn-default', staticIps: [], mtu: 1400 },
    },
    { desc: 'netconf switch and MTU win', conf: { logicalSwitch: 'ls-a', mtu: 9000 }, args: {}, want: { logicalSwitch: 'ls-a', mtu: 9000 } },
    { desc: 'runtimeConfig ips win over CNI_ARGS IP', conf: { staticIps: ['10.0.0.9'] }, args: { ips: ['10.0.0.7'] }, want: { staticIps: ['10.0.0.9'] } },
    { desc: 'CNI_ARGS IP when runtimeConfig has none', conf: {}, args: { ips: ['10.0.0.7'] }, want: { staticIps: ['10.0.0.7'] } },
    { desc: 'CNI_ARGS MAC is used when nothing else asks for one', conf: {}, args: { mac: '0a:58:0a:00:00:07' }, want: { staticMac: '0a:58:0a:00:00:07' } },
    { desc: 'netconf MAC wins', conf: { staticMac: '0a:58:0a:00:00:09' }, args: { mac: '0a:58:0a:00:00:07' }, want: { staticMac: '0a:58:0a:00:00:09' } },
    {
      desc: 'pod identity from CNI_ARGS',
      conf: {},
      args: { podName: 'web-0', podNamespace: 'shop', podUid: 'u-1' },
      want: { lspName: 'web-0.shop', podName: 'web-0', podNamespace: 'shop', podUid: 'u-1' },
    },
  ];
  for (const c of cases) {
    it(c.desc, () => {
      const intent = buildIntent(req(c.conf, c.args), node, 'ovn-default');
      expect(intent).toMatchObject(c.want);
      expect(intent.hostIfName).toBe(hostIfName('c0ffee', 'eth0'));
    });
  }

  it('leaves absent optional fields out', () => {
    const intent = buildIntent(req({}, {}), node, 'ovn-default');
    for (const k of ['staticMac', 'podName', 'podNamespace', 'podUid']) expect(k in intent).toBe(false);
  });
});

describe('buildIntent with a Pod object', () => {
  const node = { name: 'n', bridge: 'br-int', mtu: 1400, datapathType: 'netdev' as const };
  const pod = (annotations: Record<string, string>) => ({
    kind: 'Pod' as const, metadata: { name: 'web', namespace: 'default', labels: {}, annotations }, spec: { containers: [] },
  });
  const req = (conf: Partial<NetConf> = {}, args: CniArgs = {}): CniRequest => ({
    command: 'ADD', containerId: 'c0ffee', netns: '/var/run/netns/x', ifName: 'eth0', args,
    conf: { cniVersion: '1.0.0', name: 'net', type: 'ovnode', staticIps: [], ...conf }, deadline: 0,
  });
  const cases: Array<{ desc: string; r: CniRequest; ann: Record<string, string>; sw?: string; want: Partial<PodIntent> }> = [
    { desc: 'annotation static IP and MAC', r: req(), ann: { 'ovn.kubernetes.io/ip_address': '172.20.10.2', 'ovn.kubernetes.io/mac_address': '0A:58:AC:14:0A:02' }, want: { staticIps: ['172.20.10.2'], staticMac: '0a:58:ac:14:0a:02' } },
    { desc: 'dual-stack annotation, prefixes dropped', r: req(), ann: { 'ovn.kubernetes.io/ip_address': '172.20.10.2/24,fd00::2/64' }, want: { staticIps: ['172.20.10.2', 'fd00::2'] } },
    { desc: 'runtimeConfig wins over the annotation', r: req({ staticIps: ['10.0.0.9'] }), ann: { 'ovn.kubernetes.io/ip_address': '172.20.10.2' }, want: { staticIps: ['10.0.0.9'] } },
    { desc: 'annotation wins over CNI_ARGS IP', r: req({}, { ips: ['10.0.0.7'] }), ann: { 'ovn.kubernetes.io/ip_address': '172.20.10.2' }, want: { staticIps: ['172.20.10.2'] } },
    { desc: 'the pod source switch wins over netconf', r: req({ logicalSwitch: 'ls-a' }), ann: {}, sw: 'vswitch1', want: { logicalSwitch: 'vswitch1' } },
  ];
  for (const c of cases) {
    it(c.desc, () => {
      const got = buildIntent(c.r, node, 'ovn-default', c.sw ? { pod: pod(c.ann), logicalSwitch: c.sw } : { pod: pod(c.ann) });
      expect(got).toMatchObject(c.want);
    });
  }
});
