// Port group and address set names: OVN identifiers whatever the Kubernetes names, distinct for
// distinct inputs, stable across calls.
import { describe, expect, it } from 'vitest';
import { asNetworkPolicyPeer, asSecurityGroup, pgNetworkPolicy, pgSecurityGroup } from '../../../../daemon/policy/names';

const IDENT = /^[A-Za-z_][A-Za-z0-9_.]*$/;

describe('names', () => {
  const cases: { desc: string; name: string }[] = [
    { desc: 'plain', name: pgSecurityGroup('sg1') },
    { desc: 'dashes and dots', name: pgNetworkPolicy('kube-system', 'allow.dns-egress') },
    { desc: 'a 253-character name', name: pgNetworkPolicy('ns', 'x'.repeat(253)) },
    { desc: 'address set of a security group', name: asSecurityGroup('web-sg', 6) },
    { desc: 'address set of a peer', name: asNetworkPolicyPeer('team-a', 'allow-from-b', 'eg', 3, 1, 4) },
  ];
  it.each(cases)('$desc: an OVN identifier of bounded length', ({ name }) => {
    expect(name).toMatch(IDENT);
    expect(name.length).toBeLessThanOrEqual(80);
  });

  it('distinct inputs that read the same get distinct names', () => {
    const names = [
      pgNetworkPolicy('a', 'b_c'), pgNetworkPolicy('a_b', 'c'), pgNetworkPolicy('a', 'b-c'),
      pgNetworkPolicy('ns', `${'x'.repeat(60)}1`), pgNetworkPolicy('ns', `${'x'.repeat(60)}2`),
    ];
    expect(new Set(names).size).toBe(names.length);
  });

  it('peer sets differ by direction, rule, peer and family', () => {
    const names = [
      asNetworkPolicyPeer('ns', 'np', 'in', 0, 0, 4), asNetworkPolicyPeer('ns', 'np', 'eg', 0, 0, 4),
      asNetworkPolicyPeer('ns', 'np', 'in', 1, 0, 4), asNetworkPolicyPeer('ns', 'np', 'in', 0, 1, 4),
      asNetworkPolicyPeer('ns', 'np', 'in', 0, 0, 6), asNetworkPolicyPeer('ns', 'np', 'in', 11, 0, 4),
      asNetworkPolicyPeer('ns', 'np', 'in', 1, 10, 4),
    ];
    expect(new Set(names).size).toBe(names.length);
  });

  it('is stable: same input, same name', () => {
    expect(pgSecurityGroup('sg1')).toBe(pgSecurityGroup('sg1'));
    expect(asSecurityGroup('sg1', 4)).toBe(`${pgSecurityGroup('sg1')}_ip4`);
  });
});
