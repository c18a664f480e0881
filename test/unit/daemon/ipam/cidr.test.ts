// Address and prefix arithmetic: parse/format both families, RFC 5952 text, prefixes, contains.
import { describe, expect, it } from 'vitest';
import { contains, formatIp, lastAddress, mask, parseCidr, parseIp, size, type Family } from '../../../../daemon/ipam/cidr';

describe('parseIp / formatIp', () => {
  const cases: { desc: string; text: string; family: Family; value: bigint; canonical?: string }[] = [
    { desc: 'IPv4 zero', text: '0.0.0.0', family: 4, value: 0n },
    { desc: 'IPv4 all ones', text: '255.255.255.255', family: 4, value: 0xffffffffn },
    { desc: 'IPv4 private', text: '10.16.0.5', family: 4, value: 0x0a100005n },
    { desc: 'IPv6 unspecified', text: '::', family: 6, value: 0n },
    { desc: 'IPv6 loopback', text: '::1', family: 6, value: 1n },
    { desc: 'IPv6 trailing ::', text: 'fd00::', family: 6, value: 0xfd00n << 112n },
    { desc: 'IPv6 documentation prefix', text: '2001:db8::1', family: 6, value: (0x20010db8n << 96n) | 1n },
    {
      desc: 'IPv6 full form is compressed',
      text: '2001:0db8:0000:0000:0000:ff00:0042:8329',
      family: 6,
      value: 0x20010db8000000000000ff0000428329n,
      canonical: '2001:db8::ff00:42:8329',
    },
    { desc: 'IPv6 upper case is lowered', text: 'FD00:ABCD::1', family: 6, value: (0xfd00abcdn << 96n) | 1n, canonical: 'fd00:abcd::1' },
    {
      desc: 'RFC 5952 4.2.2: a single zero group is not compressed',
      text: '2001:db8:0:1:1:1:1:1',
      family: 6,
      value: 0x20010db8000000010001000100010001n,
    },
    {
      desc: 'RFC 5952 4.2.3: the longest zero run is compressed',
      text: '2001:0:0:1:0:0:0:1',
      family: 6,
      value: 0x20010000000000010000000000000001n,
      canonical: '2001:0:0:1::1',
    },
    {
      desc: 'RFC 5952 4.2.3: on a tie the first run is compressed',
      text: '2001:db8:0:0:1:0:0:1',
      family: 6,
      value: 0x20010db8000000000001000000000001n,
      canonical: '2001:db8::1:0:0:1',
    },
    { desc: 'RFC 5952 4.1: leading zeros dropped', text: '2001:db8::0001', family: 6, value: (0x20010db8n << 96n) | 1n, canonical: '2001:db8::1' },
    { desc: 'no zero group at all', text: '1:2:3:4:5:6:7:8', family: 6, value: 0x00010002000300040005000600070008n },
    { desc: 'zero run at the start', text: '0:0:0:0:0:0:0:8', family: 6, value: 8n, canonical: '::8' },
    { desc: 'zero run at the end', text: '8:0:0:0:0:0:0:0', family: 6, value: 8n << 112n, canonical: '8::' },
  ];
  for (const c of cases) {
    it(c.desc, () => {
      expect(parseIp(c.text)).toEqual({ family: c.family, value: c.value });
      expect(formatIp(c.family, c.value)).toBe(c.canonical ?? c.text);
    });
  }

  // Parsed only: RFC 5952 section 5 prefers dotted output for mapped addresses, which IPAM never hands out.
  const dotted: { desc: string; text: string; value: bigint }[] = [
    { desc: 'IPv4-mapped', text: '::ffff:10.1.2.3', value: 0xffff0a010203n },
    { desc: 'IPv4-compatible', text: '::10.1.2.3', value: 0x0a010203n },
    { desc: 'dotted quad after full hextets', text: '64:ff9b:0:0:0:0:192.0.2.33', value: (0x0064ff9bn << 96n) | 0xc0000221n },
  ];
  for (const c of dotted) {
    it(`parses an embedded dotted quad: ${c.desc}`, () => expect(parseIp(c.text)).toEqual({ family: 6, value: c.value }));
  }

  const bad = ['', '10.0.0', '10.0.0.256', '1.2.3.4.5', 'fd00:::1', '1:2:3:4:5:6:7:8:9', 'g::1', 'localhost', '10.0.0.1/24'];
  for (const text of bad) {
    it(`rejects ${JSON.stringify(text)}`, () => expect(() => parseIp(text)).toThrow(/not an IP address/));
  }
});

describe('parseCidr', () => {
  const cases: { desc: string; text: string; family: Family; prefix: number; canonical: string }[] = [
    { desc: 'IPv4 network', text: '10.16.0.0/16', family: 4, prefix: 16, canonical: '10.16.0.0/16' },
    { desc: 'IPv4 host bits cleared', text: '10.16.3.7/16', family: 4, prefix: 16, canonical: '10.16.0.0/16' },
    { desc: 'IPv4 /32', text: '192.168.1.1/32', family: 4, prefix: 32, canonical: '192.168.1.1/32' },
    { desc: 'IPv4 /0', text: '1.2.3.4/0', family: 4, prefix: 0, canonical: '0.0.0.0/0' },
    { desc: 'surrounding whitespace', text: ' 10.0.0.0/8 ', family: 4, prefix: 8, canonical: '10.0.0.0/8' },
    { desc: 'IPv6 /64', text: 'fd00:10:16::5/64', family: 6, prefix: 64, canonical: 'fd00:10:16::/64' },
    { desc: 'IPv6 /128', text: 'FD00::1/128', family: 6, prefix: 128, canonical: 'fd00::1/128' },
    { desc: 'IPv6 /0', text: '::/0', family: 6, prefix: 0, canonical: '::/0' },
  ];
  for (const c of cases) {
    it(c.desc, () => {
      const cidr = parseCidr(c.text);
      expect(cidr.family).toBe(c.family);
      expect(cidr.prefix).toBe(c.prefix);
      expect(cidr.text).toBe(c.canonical);
      expect(formatIp(c.family, cidr.network)).toBe(c.canonical.split('/')[0]);
    });
  }

  const bad: { desc: string; text: string; err: RegExp }[] = [
    { desc: 'no prefix', text: '10.0.0.0', err: /not a CIDR/ },
    { desc: 'empty prefix', text: '10.0.0.0/', err: /not a CIDR/ },
    { desc: 'two slashes', text: '10.0.0.0/8/8', err: /not a CIDR/ },
    { desc: 'IPv4 prefix too long', text: '10.0.0.0/33', err: /too long/ },
    { desc: 'IPv6 prefix too long', text: 'fd00::/129', err: /too long/ },
    { desc: 'bad address', text: '10.0.0.300/24', err: /not an IP address/ },
  ];
  for (const c of bad) {
    it(`rejects ${c.desc}`, () => expect(() => parseCidr(c.text)).toThrow(c.err));
  }
});

describe('mask, lastAddress, size', () => {
  const cases: { desc: string; cidr: string; mask: bigint; last: string; size: bigint }[] = [
    { desc: 'IPv4 /24', cidr: '10.0.0.0/24', mask: 0xffffff00n, last: '10.0.0.255', size: 256n },
    { desc: 'IPv4 /29', cidr: '10.0.0.8/29', mask: 0xfffffff8n, last: '10.0.0.15', size: 8n },
    { desc: 'IPv4 /32', cidr: '10.0.0.9/32', mask: 0xffffffffn, last: '10.0.0.9', size: 1n },
    { desc: 'IPv4 /0', cidr: '0.0.0.0/0', mask: 0n, last: '255.255.255.255', size: 1n << 32n },
    { desc: 'IPv6 /64', cidr: 'fd00::/64', mask: ((1n << 64n) - 1n) << 64n, last: 'fd00::ffff:ffff:ffff:ffff', size: 1n << 64n },
    { desc: 'IPv6 /120', cidr: 'fd00::/120', mask: ((1n << 128n) - 1n) ^ 0xffn, last: 'fd00::ff', size: 256n },
  ];
  for (const c of cases) {
    it(c.desc, () => {
      const cidr = parseCidr(c.cidr);
      expect(mask(cidr.family, cidr.prefix)).toBe(c.mask);
      expect(formatIp(cidr.family, lastAddress(cidr))).toBe(c.last);
      expect(size(cidr)).toBe(c.size);
    });
  }
});

describe('contains', () => {
  const cases: { desc: string; cidr: string; ip: string; want: boolean }[] = [
    { desc: 'network address', cidr: '10.16.0.0/16', ip: '10.16.0.0', want: true },
    { desc: 'inside', cidr: '10.16.0.0/16', ip: '10.16.200.7', want: true },
    { desc: 'last address', cidr: '10.16.0.0/16', ip: '10.16.255.255', want: true },
    { desc: 'just below', cidr: '10.16.0.0/16', ip: '10.15.255.255', want: false },
    { desc: 'just above', cidr: '10.16.0.0/16', ip: '10.17.0.0', want: false },
    { desc: '/32 itself', cidr: '10.0.0.9/32', ip: '10.0.0.9', want: true },
    { desc: '/32 neighbour', cidr: '10.0.0.9/32', ip: '10.0.0.10', want: false },
    { desc: '/0 holds everything of its family', cidr: '0.0.0.0/0', ip: '203.0.113.1', want: true },
    { desc: 'IPv6 inside', cidr: 'fd00:10:16::/64', ip: 'fd00:10:16::abcd', want: true },
    { desc: 'IPv6 outside', cidr: 'fd00:10:16::/64', ip: 'fd00:10:17::1', want: false },
    { desc: 'other family, same low bits', cidr: '0.0.0.0/0', ip: '::1', want: false },
    { desc: 'IPv4 in an IPv6 /0', cidr: '::/0', ip: '10.0.0.1', want: false },
  ];
  for (const c of cases) {
    it(c.desc, () => expect(contains(parseCidr(c.cidr), parseIp(c.ip))).toBe(c.want));
  }
});
