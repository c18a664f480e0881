// parseNetConf: the typed NetConf from stdin, and the CNI code of every way it can be wrong.
import { describe, expect, it } from 'vitest';
import { OvnodeError } from '../../../../common/errors';
import { parseNetConf, type NetConf } from '../../../../daemon/intent/netconf';

const base = { cniVersion: '1.0.0', name: 'ovn', type: 'ovnode' };

function parse(extra: Record<string, unknown>): NetConf {
  return parseNetConf(JSON.stringify({ ...base, ...extra }));
}

describe('parseNetConf accepts', () => {
  const cases: { desc: string; extra: Record<string, unknown>; want: Partial<NetConf> }[] = [
    { desc: 'the minimum', extra: {}, want: { cniVersion: '1.0.0', name: 'ovn', type: 'ovnode', staticIps: [] } },
    { desc: 'a legacy version', extra: { cniVersion: '0.3.1' }, want: { cniVersion: '0.3.1' } },
    { desc: 'logicalSwitch', extra: { logicalSwitch: 'ls-a' }, want: { logicalSwitch: 'ls-a' } },
    { desc: 'logical_switch as an alias', extra: { logical_switch: 'ls-b' }, want: { logicalSwitch: 'ls-b' } },
    { desc: 'the lowest mtu', extra: { mtu: 576 }, want: { mtu: 576 } },
    { desc: 'the highest mtu', extra: { mtu: 9000 }, want: { mtu: 9000 } },
    { desc: 'dns', extra: { dns: { nameservers: ['10.96.0.10'] } }, want: { dns: { nameservers: ['10.96.0.10'] } } },
    {
      desc: 'runtimeConfig ips in CIDR notation become plain addresses',
      extra: { runtimeConfig: { ips: ['10.16.0.9/16', 'fd00:10::9/64'] } },
      want: { staticIps: ['10.16.0.9', 'fd00:10::9'] },
    },
    { desc: 'runtimeConfig ips without a prefix', extra: { runtimeConfig: { ips: ['10.16.0.9'] } }, want: { staticIps: ['10.16.0.9'] } },
    { desc: 'runtimeConfig mac, lower-cased', extra: { runtimeConfig: { mac: '0A:58:0A:10:00:09' } }, want: { staticMac: '0a:58:0a:10:00:09' } },
    { desc: 'a locally administered unicast mac', extra: { runtimeConfig: { mac: '02:00:00:00:00:01' } }, want: { staticMac: '02:00:00:00:00:01' } },
    {
      desc: 'args.cni ips and mac when runtimeConfig has none',
      extra: { args: { cni: { ips: ['10.16.0.7/16'], mac: '0a:58:0a:10:00:07' } } },
      want: { staticIps: ['10.16.0.7'], staticMac: '0a:58:0a:10:00:07' },
    },
    {
      desc: 'runtimeConfig over args.cni',
      extra: { runtimeConfig: { ips: ['10.16.0.9/16'], mac: '0a:58:0a:10:00:09' }, args: { cni: { ips: ['10.16.0.7'], mac: '0a:58:0a:10:00:07' } } },
      want: { staticIps: ['10.16.0.9'], staticMac: '0a:58:0a:10:00:09' },
    },
    {
      desc: 'args.cni ips alongside a runtimeConfig mac',
      extra: { runtimeConfig: { mac: '0a:58:0a:10:00:09' }, args: { cni: { ips: ['10.16.0.7'] } } },
      want: { staticIps: ['10.16.0.7'], staticMac: '0a:58:0a:10:00:09' },
    },
    { desc: 'a runtimeConfig that is not an object is ignored', extra: { runtimeConfig: 'x' }, want: { staticIps: [] } },
    {
      desc: 'a legacy prevResult, normalised',
      extra: {
        cniVersion: '0.4.0',
        prevResult: { cniVersion: '0.4.0', ips: [{ version: '4', address: '10.16.0.9/16', gateway: '10.16.0.1', interface: 0 }] },
      },
      want: {
        prevResult: { cniVersion: '0.4.0', interfaces: [], ips: [{ address: '10.16.0.9/16', gateway: '10.16.0.1', interface: 0 }], routes: [] },
      },
    },
    {
      desc: 'cni.dev/valid-attachments',
      extra: { cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 'eth0' }, { containerID: 'c2', ifname: 'net1' }] },
      want: { validAttachments: [{ containerId: 'c1', ifName: 'eth0' }, { containerId: 'c2', ifName: 'net1' }] },
    },
    { desc: 'an empty valid-attachments list', extra: { 'cni.dev/valid-attachments': [] }, want: { validAttachments: [] } },
    {
      desc: 'cni.dev/attachments as an alias',
      extra: { 'cni.dev/attachments': [{ containerID: 'c1', ifname: 'eth0' }] },
      want: { validAttachments: [{ containerId: 'c1', ifName: 'eth0' }] },
    },
  ];
  for (const c of cases) {
    it(c.desc, () => expect(parse(c.extra)).toMatchObject(c.want));
  }

  it('leaves optional fields out when absent', () => {
    expect(parse({})).toEqual({ cniVersion: '1.0.0', name: 'ovn', type: 'ovnode', staticIps: [] });
  });
});

describe('parseNetConf refuses', () => {
  const cases: { desc: string; raw: string; code: number; err: RegExp }[] = [
    { desc: 'text that is not JSON', raw: '{"cniVersion":', code: 6, err: /error decoding/ },
    { desc: 'a JSON array', raw: '[]', code: 6, err: /error decoding/ },
    { desc: 'JSON null', raw: 'null', code: 6, err: /error decoding/ },
    { desc: 'a missing cniVersion', raw: JSON.stringify({ name: 'ovn', type: 'ovnode' }), code: 1, err: /incompatible CNI versions/ },
    { desc: 'an unknown cniVersion', raw: JSON.stringify({ ...base, cniVersion: '0.2.0' }), code: 1, err: /incompatible CNI versions/ },
    { desc: 'a missing name', raw: JSON.stringify({ cniVersion: '1.0.0', type: 'ovnode' }), code: 7, err: /"name" must be a non-empty string/ },
    { desc: 'an empty name', raw: JSON.stringify({ ...base, name: '' }), code: 7, err: /"name"/ },
    { desc: 'a numeric name', raw: JSON.stringify({ ...base, name: 7 }), code: 7, err: /"name"/ },
    { desc: 'a missing type', raw: JSON.stringify({ cniVersion: '1.0.0', name: 'ovn' }), code: 7, err: /"type" must be a non-empty string/ },
    { desc: 'an empty logicalSwitch', raw: JSON.stringify({ ...base, logicalSwitch: '' }), code: 7, err: /"logicalSwitch"/ },
    { desc: 'an mtu below 576', raw: JSON.stringify({ ...base, mtu: 575 }), code: 7, err: /"mtu"/ },
    { desc: 'an mtu above 9000', raw: JSON.stringify({ ...base, mtu: 9001 }), code: 7, err: /"mtu"/ },
    { desc: 'a fractional mtu', raw: JSON.stringify({ ...base, mtu: 1400.5 }), code: 7, err: /"mtu"/ },
    { desc: 'an mtu as a string', raw: JSON.stringify({ ...base, mtu: '1400' }), code: 7, err: /"mtu"/ },
    { desc: 'dns that is not an object', raw: JSON.stringify({ ...base, dns: ['10.96.0.10'] }), code: 7, err: /"dns"/ },
    { desc: 'runtimeConfig ips that is not an array', raw: JSON.stringify({ ...base, runtimeConfig: { ips: '10.16.0.9' } }), code: 7, err: /"ips"/ },
    { desc: 'runtimeConfig ips with a non-string', raw: JSON.stringify({ ...base, runtimeConfig: { ips: ['10.16.0.9', 4] } }), code: 7, err: /"ips"/ },
    { desc: 'args.cni ips that is not an array', raw: JSON.stringify({ ...base, args: { cni: { ips: {} } } }), code: 7, err: /"ips"/ },
    { desc: 'a mac that is not one', raw: JSON.stringify({ ...base, runtimeConfig: { mac: '0a:58:0a:10:00' } }), code: 7, err: /runtimeConfig "mac": MAC "0a:58:0a:10:00" must be six hexadecimal octets/ },
    { desc: 'a mac with a non-hex digit', raw: JSON.stringify({ ...base, runtimeConfig: { mac: '0a:58:0a:10:00:0g' } }), code: 7, err: /must be six hexadecimal octets/ },
    { desc: 'a mac that is not a string', raw: JSON.stringify({ ...base, runtimeConfig: { mac: 42 } }), code: 7, err: /MAC must be a string/ },
    { desc: 'a multicast mac', raw: JSON.stringify({ ...base, runtimeConfig: { mac: '01:00:5e:00:00:01' } }), code: 7, err: /unicast/ },
    { desc: 'the broadcast mac', raw: JSON.stringify({ ...base, runtimeConfig: { mac: 'FF:FF:FF:FF:FF:FF' } }), code: 7, err: /unicast/ },
    { desc: 'the all-zero mac', raw: JSON.stringify({ ...base, runtimeConfig: { mac: '00:00:00:00:00:00' } }), code: 7, err: /all zeros/ },
    { desc: 'a multicast mac from args.cni', raw: JSON.stringify({ ...base, args: { cni: { mac: '33:33:00:00:00:01' } } }), code: 7, err: /args.cni "mac".*unicast/ },
    { desc: 'a garbage static ip', raw: JSON.stringify({ ...base, runtimeConfig: { ips: ['garbage'] } }), code: 7, err: /"garbage" is not an IP address/ },
    { desc: 'an out-of-range static ip', raw: JSON.stringify({ ...base, runtimeConfig: { ips: ['999.1.1.1'] } }), code: 7, err: /not an IP address/ },
    { desc: 'a static ip with a bad prefix', raw: JSON.stringify({ ...base, runtimeConfig: { ips: ['10.16.0.9/33'] } }), code: 7, err: /invalid prefix length/ },
    { desc: 'two static ips of one family', raw: JSON.stringify({ ...base, args: { cni: { ips: ['10.16.0.9', '10.16.0.10'] } } }), code: 7, err: /at most one IPv4/ },
    { desc: 'a static ip that is not a string', raw: JSON.stringify({ ...base, runtimeConfig: { ips: [7] } }), code: 7, err: /IP must be a string/ },
    { desc: 'dns with a nested object', raw: JSON.stringify({ ...base, dns: { nameservers: [{ a: 1 }] } }), code: 7, err: /"dns.nameservers" must be an array of strings/ },
    { desc: 'dns with an unknown field', raw: JSON.stringify({ ...base, dns: { a: { a: {} } } }), code: 7, err: /"dns.a" is not a CNI dns field/ },
    { desc: 'dns domain that is not a string', raw: JSON.stringify({ ...base, dns: { domain: ['x'] } }), code: 7, err: /"dns.domain" must be a string/ },
    { desc: 'a netconf nested deeper than the bound', raw: `{"cniVersion":"1.0.0","name":"n","type":"ovnode","dns":${'{"a":'.repeat(10000)}1${'}'.repeat(10000)}}`, code: 6, err: /error decoding network configuration/ },
    { desc: 'a prevResult with a null route', raw: JSON.stringify({ ...base, prevResult: { cniVersion: '1.0.0', routes: [null] } }), code: 7, err: /"prevResult" routes\[0\] must be an object/ },
    { desc: 'a prevResult with a non-string address', raw: JSON.stringify({ ...base, prevResult: { cniVersion: '1.0.0', ips: [{ address: 5 }] } }), code: 7, err: /ips\[0\].address must be a string/ },
    { desc: 'a prevResult that is not an object', raw: JSON.stringify({ ...base, prevResult: 'x' }), code: 7, err: /"prevResult"/ },
    { desc: 'a prevResult that is an array', raw: JSON.stringify({ ...base, prevResult: [] }), code: 7, err: /"prevResult"/ },
    {
      desc: 'valid-attachments that is not an array',
      raw: JSON.stringify({ ...base, 'cni.dev/valid-attachments': { containerID: 'c1', ifname: 'eth0' } }),
      code: 7,
      err: /must be an array/,
    },
    {
      desc: 'a valid-attachment without ifname, naming its index',
      raw: JSON.stringify({ ...base, 'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 'eth0' }, { containerID: 'c2' }] }),
      code: 7,
      err: /valid-attachments\[1\]/,
    },
    {
      desc: 'a valid-attachment with a numeric containerID',
      raw: JSON.stringify({ ...base, 'cni.dev/valid-attachments': [{ containerID: 1, ifname: 'eth0' }] }),
      code: 7,
      err: /valid-attachments\[0\]/,
    },
    { desc: 'a valid-attachment that is not an object', raw: JSON.stringify({ ...base, 'cni.dev/valid-attachments': ['c1/eth0'] }), code: 7, err: /valid-attachments\[0\]/ },
  ];
  for (const c of cases) {
    it(`${c.desc} (code ${c.code})`, () => {
      let caught: unknown;
      try { parseNetConf(c.raw); } catch (e) { caught = e; }
      expect(caught).toBeInstanceOf(OvnodeError);
      expect((caught as OvnodeError).cniCode).toBe(c.code);
      expect((caught as OvnodeError).message).toMatch(c.err);
    });
  }
});
