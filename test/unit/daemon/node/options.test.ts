// ovnoded run's options: where the Geneve tunnels end (an address, an interface, or the
// DaemonSet's OVNODE_ENCAP_INTERFACE from its optional ConfigMap), the join network (IPv4 or a
// dual-stack pair), and the contradictions refused.
import { afterEach, describe, expect, it } from 'vitest';
import { parseOptions, type RawOptions } from '../../../../daemon/node/options';

const base: RawOptions = { stateDir: '/tmp/x', subnet: '10.16.0.0/16', joinCidr: '100.64.0.0/16', mtu: '1400', metricsAddress: '127.0.0.1:9476', logLevel: 'info', nodeName: 'n1' };

afterEach(() => { delete process.env.OVNODE_ENCAP_INTERFACE; });

describe('tunnel endpoint options', () => {
  it('takes --encap-interface, or on a cluster OVNODE_ENCAP_INTERFACE, and --encap-ip alone', () => {
    expect(parseOptions({ ...base, encapInterface: 'eth1' }).encapInterface).toBe('eth1');
    expect(parseOptions({ ...base, encapIp: '10.251.0.11' })).toMatchObject({ encapIp: '10.251.0.11' });
    process.env.OVNODE_ENCAP_INTERFACE = 'eth1';
    expect(parseOptions({ ...base, kubernetes: true }).encapInterface).toBe('eth1');
    // The embedded mode does not read the DaemonSet's variable.
    expect(parseOptions(base).encapInterface).toBeUndefined();
    // An empty value (the ConfigMap key set to "") means "not set".
    process.env.OVNODE_ENCAP_INTERFACE = '';
    expect(parseOptions({ ...base, kubernetes: true }).encapInterface).toBeUndefined();
  });

  it('refuses both at once and a name that is not an interface name', () => {
    expect(() => parseOptions({ ...base, encapIp: '10.0.0.1', encapInterface: 'eth1' })).toThrow(/give one/);
    expect(() => parseOptions({ ...base, encapInterface: 'eth1; rm -rf /' })).toThrow(/not an interface name/);
    expect(() => parseOptions({ ...base, encapInterface: 'a-very-long-interface-name' })).toThrow(/not an interface name/);
  });
});

describe('join network option', () => {
  afterEach(() => { delete process.env.OVNODE_JOIN_CIDR; });

  it('takes an IPv4 CIDR or an IPv4,IPv6 pair; on a cluster OVNODE_JOIN_CIDR; else the default', () => {
    expect(parseOptions(base)).toMatchObject({ joinCidr: '100.64.0.0/16' });
    expect(parseOptions(base).joinCidr6).toBeUndefined();
    expect(parseOptions({ ...base, joinCidr: '100.64.0.0/16, fd00:100:64::/112' })).toMatchObject({ joinCidr: '100.64.0.0/16', joinCidr6: 'fd00:100:64::/112' });
    const { joinCidr: _omitted, ...noJoin } = base;
    expect(parseOptions(noJoin).joinCidr).toBe('100.64.0.0/16');
    process.env.OVNODE_JOIN_CIDR = '100.65.0.0/16,fd00:65::/104';
    expect(parseOptions({ ...noJoin, kubernetes: true })).toMatchObject({ joinCidr: '100.65.0.0/16', joinCidr6: 'fd00:65::/104' });
    // The embedded mode does not read the DaemonSet's variable.
    expect(parseOptions(noJoin).joinCidr).toBe('100.64.0.0/16');
  });

  it('refuses IPv6 alone, two of a family, three CIDRs, and an IPv6 CIDR too small to mirror the IPv4 offsets', () => {
    expect(() => parseOptions({ ...base, joinCidr: 'fd00:100:64::/112' })).toThrow(/IPv4 CIDR, or an IPv4,IPv6 pair/);
    expect(() => parseOptions({ ...base, joinCidr: '100.64.0.0/16,100.65.0.0/16' })).toThrow(/IPv4,IPv6 pair/);
    expect(() => parseOptions({ ...base, joinCidr: '100.64.0.0/16,fd00::/112,fd01::/112' })).toThrow(/IPv4,IPv6 pair/);
    expect(() => parseOptions({ ...base, joinCidr: '100.64.0.0/16,fd00::/120' })).toThrow(/needs \/112 or shorter/);
    expect(() => parseOptions({ ...base, joinCidr: '100.64.0.0/31' })).toThrow(/no room/);
    expect(() => parseOptions({ ...base, joinCidr: 'nope' })).toThrow(/--join-cidr/);
  });
});
