// Port MACs: 0a:58 + the IPv4 address, or random unicast locally administered without IPv4.
import { describe, expect, it } from 'vitest';
import { macForIp } from '../../../../daemon/ipam/mac';

const MAC_RE = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;

describe('macForIp from IPv4', () => {
  const cases: { desc: string; ip: string; want: string }[] = [
    { desc: 'a pod address', ip: '10.16.0.5', want: '0a:58:0a:10:00:05' },
    { desc: 'single-digit octets are zero-padded', ip: '1.2.3.4', want: '0a:58:01:02:03:04' },
    { desc: 'high octets', ip: '192.168.255.254', want: '0a:58:c0:a8:ff:fe' },
    { desc: 'all zeros', ip: '0.0.0.0', want: '0a:58:00:00:00:00' },
  ];
  for (const c of cases) {
    it(c.desc, () => {
      expect(macForIp(c.ip)).toBe(c.want);
      expect(macForIp(c.ip)).toBe(macForIp(c.ip));
    });
  }

  it('is unicast and locally administered (0x0a)', () => {
    const first = parseInt(macForIp('10.0.0.2').slice(0, 2), 16);
    expect(first & 0x01).toBe(0);
    expect(first & 0x02).toBe(0x02);
  });
});

describe('macForIp without IPv4', () => {
  const cases: { desc: string; ip: string | undefined }[] = [
    { desc: 'an IPv6 address', ip: 'fd00:10::5' },
    { desc: 'no address', ip: undefined },
    { desc: 'an empty string', ip: '' },
  ];
  for (const c of cases) {
    it(`${c.desc}: random, unicast and locally administered`, () => {
      const macs = new Set<string>();
      for (let i = 0; i < 200; i++) {
        const mac = macForIp(c.ip);
        expect(mac).toMatch(MAC_RE);
        const first = parseInt(mac.slice(0, 2), 16);
        expect(first & 0x01, `${mac} is multicast`).toBe(0);
        expect(first & 0x02, `${mac} is not locally administered`).toBe(0x02);
        macs.add(mac);
      }
      expect(macs.size).toBeGreaterThan(190);
    });
  }
});
