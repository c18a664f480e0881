// CNI spec facts: supported versions, version ordering, result conversion and normalisation.
import { describe, expect, it } from 'vitest';
import {
  SUPPORTED_VERSIONS,
  assertSupportedVersion,
  compareVersions,
  convertResult,
  isSupportedVersion,
  normalizeResult,
  type CniResult,
  type CniVersion,
} from '../../../common/cni-spec';
import { IncompatibleVersionError, isOvnodeError } from '../../../common/errors';

describe('assertSupportedVersion', () => {
  for (const v of SUPPORTED_VERSIONS) {
    it(`accepts ${v}`, () => {
      expect(isSupportedVersion(v)).toBe(true);
      expect(assertSupportedVersion(v)).toBe(v);
    });
  }

  const bad: { desc: string; value: unknown; shown: string }[] = [
    { desc: 'an older version', value: '0.2.0', shown: '"0.2.0"' },
    { desc: 'a future version', value: '2.0.0', shown: '"2.0.0"' },
    { desc: 'a version without patch', value: '1.0', shown: '"1.0"' },
    { desc: 'a number', value: 1, shown: '1' },
    { desc: 'a missing version', value: undefined, shown: 'null' },
    { desc: 'null', value: null, shown: 'null' },
  ];
  for (const c of bad) {
    it(`rejects ${c.desc} with code 1 listing the supported versions`, () => {
      let caught: unknown;
      try { assertSupportedVersion(c.value); } catch (e) { caught = e; }
      expect(caught).toBeInstanceOf(IncompatibleVersionError);
      expect(isOvnodeError(caught)).toBe(true);
      const e = caught as IncompatibleVersionError;
      expect(e.cniCode).toBe(1);
      expect(e.message).toBe('incompatible CNI versions');
      expect(e.details).toContain(`config is ${c.shown}`);
      for (const v of SUPPORTED_VERSIONS) expect(e.details).toContain(v);
      expect(isSupportedVersion(c.value)).toBe(false);
    });
  }
});

describe('compareVersions', () => {
  const cases: { desc: string; a: string; b: string; sign: -1 | 0 | 1 }[] = [
    { desc: 'equal', a: '1.0.0', b: '1.0.0', sign: 0 },
    { desc: 'patch orders', a: '0.3.0', b: '0.3.1', sign: -1 },
    { desc: 'minor beats patch', a: '0.4.0', b: '0.3.1', sign: 1 },
    { desc: 'major beats minor', a: '0.4.0', b: '1.0.0', sign: -1 },
    { desc: '1.1.0 after 1.0.0', a: '1.1.0', b: '1.0.0', sign: 1 },
    { desc: 'numeric, not lexical', a: '0.10.0', b: '0.9.0', sign: 1 },
    { desc: 'missing parts count as zero', a: '1.0', b: '1.0.0', sign: 0 },
  ];
  for (const c of cases) {
    it(`${c.desc}: ${c.a} vs ${c.b}`, () => {
      expect(Math.sign(compareVersions(c.a, c.b))).toBe(c.sign);
      expect(Math.sign(compareVersions(c.b, c.a))).toBe(-c.sign || 0);
    });
  }
});

const dualStack: CniResult = {
  cniVersion: '1.1.0',
  interfaces: [{ name: 'eth0', mac: '0a:58:0a:10:00:05', mtu: 1400, sandbox: '/var/run/netns/x' }],
  ips: [
    { address: '10.16.0.5/16', gateway: '10.16.0.1', interface: 0 },
    { address: 'fd00:10:16::5/64', gateway: 'fd00:10:16::1', interface: 0 },
  ],
  routes: [{ dst: '0.0.0.0/0', gw: '10.16.0.1' }, { dst: '::/0' }],
  dns: { nameservers: ['10.96.0.10'] },
};

describe('convertResult', () => {
  const legacy: CniVersion[] = ['0.3.0', '0.3.1', '0.4.0'];
  for (const to of legacy) {
    it(`to ${to} tags each IP with its family`, () => {
      const out = convertResult(dualStack, to);
      expect(out.cniVersion).toBe(to);
      expect(out.ips).toEqual([
        { address: '10.16.0.5/16', gateway: '10.16.0.1', interface: 0, version: '4' },
        { address: 'fd00:10:16::5/64', gateway: 'fd00:10:16::1', interface: 0, version: '6' },
      ]);
      expect(out.interfaces).toEqual(dualStack.interfaces);
      expect(out.routes).toEqual(dualStack.routes);
      expect(out.dns).toEqual(dualStack.dns);
    });
  }

  const modern: CniVersion[] = ['1.0.0', '1.1.0'];
  for (const to of modern) {
    it(`to ${to} has no per-IP version field`, () => {
      const out = convertResult(dualStack, to);
      expect(out).toEqual({ ...dualStack, cniVersion: to });
      for (const ip of out.ips as Record<string, unknown>[]) expect('version' in ip).toBe(false);
    });
  }

  it('to a legacy version with no ips gives an empty ips list', () => {
    expect(convertResult({ cniVersion: '1.0.0' }, '0.4.0')).toEqual({ cniVersion: '0.4.0', ips: [] });
  });

  it('does not modify its input', () => {
    const copy = structuredClone(dualStack);
    convertResult(dualStack, '0.3.1');
    expect(dualStack).toEqual(copy);
  });
});

describe('normalizeResult', () => {
  const cases: { desc: string; raw: unknown; want: CniResult | undefined }[] = [
    { desc: 'undefined', raw: undefined, want: undefined },
    { desc: 'null', raw: null, want: undefined },
    { desc: 'a string', raw: 'result', want: undefined },
    {
      desc: 'a 0.4.0 result drops the per-IP version',
      raw: {
        cniVersion: '0.4.0',
        interfaces: [{ name: 'eth0', mac: '0a:58:0a:10:00:05', sandbox: '/var/run/netns/x' }],
        ips: [{ version: '4', address: '10.16.0.5/16', gateway: '10.16.0.1', interface: 0 }],
        routes: [{ dst: '0.0.0.0/0' }],
        dns: { nameservers: ['10.96.0.10'] },
      },
      want: {
        cniVersion: '0.4.0',
        interfaces: [{ name: 'eth0', mac: '0a:58:0a:10:00:05', sandbox: '/var/run/netns/x' }],
        ips: [{ address: '10.16.0.5/16', gateway: '10.16.0.1', interface: 0 }],
        routes: [{ dst: '0.0.0.0/0' }],
        dns: { nameservers: ['10.96.0.10'] },
      },
    },
    {
      desc: 'a 0.3.1 IPv6 result without gateway or interface index',
      raw: { cniVersion: '0.3.1', ips: [{ version: '6', address: 'fd00::5/64' }] },
      want: { cniVersion: '0.3.1', interfaces: [], ips: [{ address: 'fd00::5/64' }], routes: [] },
    },
    {
      desc: 'a 1.0.0 result stays as it is',
      raw: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0' }], ips: [{ address: '10.0.0.2/24', interface: 0 }], routes: [] },
      want: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0' }], ips: [{ address: '10.0.0.2/24', interface: 0 }], routes: [] },
    },
    {
      desc: 'an empty object gets defaults',
      raw: {},
      want: { cniVersion: '1.0.0', interfaces: [], ips: [], routes: [] },
    },
  ];
  for (const c of cases) {
    it(c.desc, () => expect(normalizeResult(c.raw)).toEqual(c.want));
  }

  const refused: Array<{ desc: string; raw: unknown; err: RegExp }> = [
    { desc: 'a wrongly typed gateway', raw: { cniVersion: '0.4.0', ips: [{ address: '10.0.0.2/24', gateway: 1 }] }, err: /ips\[0\].gateway must be a string/ },
    { desc: 'a wrongly typed interface index', raw: { cniVersion: '0.4.0', ips: [{ address: '10.0.0.2/24', interface: '0' }] }, err: /ips\[0\].interface must be a non-negative integer/ },
    { desc: 'a null route', raw: { cniVersion: '1.0.0', routes: [null] }, err: /routes\[0\] must be an object/ },
    { desc: 'routes that are not a list', raw: { cniVersion: '1.0.0', routes: {} }, err: /routes must be an array/ },
    { desc: 'an interface without a name', raw: { cniVersion: '1.0.0', interfaces: [{ mac: 'x' }] }, err: /interfaces\[0\].name must be a string/ },
    { desc: 'dns with non-string nameservers', raw: { cniVersion: '1.0.0', dns: { nameservers: [1] } }, err: /dns.nameservers must be an array of strings/ },
  ];
  for (const c of refused) {
    it(`refuses ${c.desc}`, () => expect(() => normalizeResult(c.raw)).toThrow(c.err));
  }

  it('round-trips through convertResult to 0.4.0 and back', () => {
    const back = normalizeResult(convertResult(dualStack, '0.4.0'));
    expect(back).toEqual({ ...dualStack, cniVersion: '0.4.0' });
  });
});
