// Tunnel keys every zone derives on its own (cross-node contract v1): a port's key is its
// address's offset in the switch's key CIDR, a switch's key a hash of its name in OVN's top
// datapath range with collisions probed in name order. Pinned values guard the contract: a zone
// computing them differently could not exchange packets with the others.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { formatIp, parseCidr } from '../../../../daemon/ipam/cidr';
import {
  MAX_PORT_KEY, MIN_SHARED_DATAPATH_KEY, addressTunnelKey, keyCidr, keyedAddressCount, portKeyIn, portTunnelKey, switchTunnelKeys,
} from '../../../../daemon/cluster/tunnel-keys';

const TOP = 2 ** 24 - 1;
const BOTTOM = 2 ** 24 - 65535;

/** The switch key before probing, computed here from the contract's definition (sha256, first 4 bytes). */
function hashSlot(name: string): number {
  return BOTTOM + (createHash('sha256').update(name).digest().readUInt32BE(0) % 65535);
}

/** Names `${prefix}${i}` for i = 0, 1... until `accept` takes one (bounded, so a bad search fails). */
function findName(prefix: string, accept: (name: string) => boolean, limit = 2_000_000): string {
  for (let i = 0; i < limit; i++) if (accept(`${prefix}${i}`)) return `${prefix}${i}`;
  throw new Error(`no name with prefix ${prefix} found in ${limit} tries`);
}

describe('port tunnel keys', () => {
  const v4 = parseCidr('10.16.0.0/16');
  const v6 = parseCidr('fd00:10:16::/64');

  it('is the offset of the address in the CIDR', () => {
    expect(addressTunnelKey(v4, '10.16.0.1')).toBe(1);
    expect(addressTunnelKey(v4, '10.16.0.5')).toBe(5);
    expect(addressTunnelKey(v4, '10.16.1.2')).toBe(258);
    expect(addressTunnelKey(v4, '10.16.127.255')).toBe(MAX_PORT_KEY);
    expect(addressTunnelKey(v6, 'fd00:10:16::7')).toBe(7);
    expect(addressTunnelKey(v6, 'fd00:10:16::7fff')).toBe(32767);
    expect(addressTunnelKey(parseCidr('192.168.7.0/30'), '192.168.7.3')).toBe(3);
  });

  it.each([
    ['the network address (offset 0)', '10.16.0.0/16', '10.16.0.0'],
    ['offset 32768, past the last port key', '10.16.0.0/16', '10.16.128.0'],
    ['the last address of a /16', '10.16.0.0/16', '10.16.255.255'],
    ['an address above the CIDR', '10.16.0.0/16', '10.17.0.5'],
    ['an address below the CIDR', '10.16.0.0/16', '10.15.255.255'],
    ['an address past a small CIDR', '192.168.7.0/30', '192.168.7.4'],
    ['an IPv6 address in an IPv4 CIDR', '10.16.0.0/16', 'fd00:10:16::5'],
    ['an IPv4 address in an IPv6 CIDR', 'fd00:10:16::/64', '10.16.0.5'],
    ['IPv6 offset 32768', 'fd00:10:16::/64', 'fd00:10:16::8000'],
    ['an IPv6 address in another /64', 'fd00:10:16::/64', 'fd00:10:17::5'],
  ])('has no key for %s', (_what, cidr, ip) => {
    expect(addressTunnelKey(parseCidr(cidr), ip)).toBeUndefined();
  });

  it('keys a dual-stack switch by its IPv4 CIDR, whichever order the CIDRs and addresses come in', () => {
    expect(keyCidr(['fd00:10:16::/64', '10.16.0.0/16'])?.text).toBe('10.16.0.0/16');
    expect(keyCidr(['10.16.0.0/16', 'fd00:10:16::/64'])?.text).toBe('10.16.0.0/16');
    expect(keyCidr(['fd00:10:16::/64'])?.text).toBe('fd00:10:16::/64');
    expect(keyCidr([])).toBeUndefined();
    // The IPv6 address would key 0x99 = 153; the IPv4 one wins.
    expect(portTunnelKey(['fd00:10:16::/64', '10.16.0.0/16'], ['fd00:10:16::99', '10.16.0.9'])).toBe(9);
    expect(portTunnelKey(['10.16.0.0/16', 'fd00:10:16::/64'], ['10.16.0.9', 'fd00:10:16::99'])).toBe(9);
    // An IPv6-only address on a dual-stack switch: not keyable (the switch keys by IPv4).
    expect(portTunnelKey(['10.16.0.0/16', 'fd00:10:16::/64'], ['fd00:10:16::99'])).toBeUndefined();
    // An IPv6-only switch keys by its IPv6 CIDR.
    expect(portTunnelKey(['fd00:10:16::/64'], ['10.16.0.9', 'fd00:10:16::99'])).toBe(0x99);
    expect(portTunnelKey(['10.16.0.0/16'], [])).toBeUndefined();
    expect(portKeyIn(undefined, ['10.16.0.9'])).toBeUndefined();
    expect(portKeyIn(parseCidr('10.16.0.0/16'), ['10.99.0.1', '10.16.0.44'])).toBe(44);
  });

  it.each([
    ['10.16.0.0/16', 32767n],
    ['10.16.0.0/17', 32767n],
    ['10.16.0.0/18', 16383n],
    ['10.16.0.0/24', 255n],
    ['10.16.0.0/30', 3n],
    ['10.16.0.1/32', 0n],
    ['fd00::/64', 32767n],
    ['fd00::/120', 255n],
    ['fd00::1/128', 0n],
  ])('counts the keyable addresses of %s', (cidr, count) => {
    const c = parseCidr(cidr);
    expect(keyedAddressCount(c)).toBe(count);
    // The count agrees with addressTunnelKey: the last counted offset keys, the next one does not.
    const bits = BigInt((c.family === 4 ? 32 : 128) - c.prefix);
    const at = (offset: bigint): string => formatIp(c.family, c.network + offset);
    if (count > 0n) expect(addressTunnelKey(c, at(count))).toBe(Number(count));
    if (count + 1n < 1n << bits) expect(addressTunnelKey(c, at(count + 1n))).toBeUndefined();
  });
});

describe('switch tunnel keys', () => {
  it('is the pinned hash of the name, in the top 65,535 datapath keys (OVN_MIN_DP_KEY_GLOBAL and up)', () => {
    expect(MIN_SHARED_DATAPATH_KEY).toBe(BOTTOM);
    const keys = switchTunnelKeys(['ovn-default', 'join', 'blue']);
    // Literal values: every zone, of every daemon version reading contract v1, must agree.
    expect(Object.fromEntries(keys)).toEqual({ 'ovn-default': 16772093, join: 16747088, blue: 16747728 });
    for (const k of keys.values()) {
      expect(k).toBeGreaterThanOrEqual(BOTTOM);
      expect(k).toBeLessThanOrEqual(TOP);
    }
  });

  it('stays in range and distinct for many switches', () => {
    const names = Array.from({ length: 2000 }, (_, i) => `subnet-${i}`);
    const keys = switchTunnelKeys(names);
    expect(keys.size).toBe(2000);
    const values = [...keys.values()];
    expect(new Set(values).size).toBe(2000);
    for (const k of values) {
      expect(Number.isInteger(k)).toBe(true);
      expect(k).toBeGreaterThanOrEqual(BOTTOM);
      expect(k).toBeLessThanOrEqual(TOP);
    }
  });

  it('does not depend on the order or repetition of the names', () => {
    const names = Array.from({ length: 500 }, (_, i) => `net-${i}`);
    const a = switchTunnelKeys(names);
    const b = switchTunnelKeys([...names].reverse());
    const c = switchTunnelKeys(new Set([...names.slice(250), ...names, ...names.slice(0, 10)]));
    expect([...b].sort()).toEqual([...a].sort());
    expect([...c].sort()).toEqual([...a].sort());
    expect(switchTunnelKeys(names)).toEqual(a);
    expect(switchTunnelKeys([])).toEqual(new Map());
  });

  it('resolves a collision by probing in name order, the first name keeping its hash', () => {
    // Birthday search: 65,535 slots, a pair turns up within a few hundred names.
    const seen = new Map<number, string>();
    let pair: [string, string] | undefined;
    for (let i = 0; !pair && i < 100_000; i++) {
      const name = `sw-${i}`;
      const other = seen.get(hashSlot(name));
      if (other !== undefined) pair = [other, name];
      else seen.set(hashSlot(name), name);
    }
    expect(pair).toBeDefined();
    const [x, y] = pair as [string, string];
    const [first, second] = [x, y].sort();
    const slot = hashSlot(first as string);
    expect(hashSlot(second as string)).toBe(slot);
    // Keep the probe target free of a third name, so the expected key is exact.
    expect(slot).toBeLessThan(TOP);

    for (const input of [[x, y], [y, x]]) {
      const keys = switchTunnelKeys(input);
      expect(keys.get(first as string)).toBe(slot);
      expect(keys.get(second as string)).toBe(slot + 1);
    }
    // Each alone keeps its hash: the probe is the collision's doing.
    expect(switchTunnelKeys([second as string]).get(second as string)).toBe(slot);
  });

  it('probes past a slot that an earlier probe took, and wraps from the top key to the bottom one', () => {
    // Two names hashing to the top key: the later one wraps to the bottom of the range.
    const top1 = findName('top-a', (n) => hashSlot(n) === TOP);
    const top2 = findName('top-b', (n) => hashSlot(n) === TOP);
    const wrapped = switchTunnelKeys([top2, top1]);
    expect(wrapped.get(top1)).toBe(TOP);
    expect(wrapped.get(top2)).toBe(BOTTOM);

    // a and b collide on k; c hashes to k + 1 but sorts after b, which probed there first.
    const a = 'chain-a0';
    const k = hashSlot(a);
    const b = findName('chain-b', (n) => hashSlot(n) === k);
    const c = findName('chain-c', (n) => hashSlot(n) === k + 1);
    expect(k + 2).toBeLessThanOrEqual(TOP);
    const keys = switchTunnelKeys([c, b, a]);
    expect([keys.get(a), keys.get(b), keys.get(c)]).toEqual([k, k + 1, k + 2]);
  });
});
