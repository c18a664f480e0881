// AdmissionIndex against the full computation, property-style: seeded random worlds of
// namespaces, NetworkPolicies (every peer shape, selector operator and policyTypes order),
// security groups and pods (IPv4, IPv6, dual stack); for each new pod, the port groups and
// address sets it joins must be exactly, and in the same order, what computeDesired gives with
// the pod added. The same index is kept across random store edits, so an index that misses a
// change fails too. A failure prints the seed and step to replay.
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../../daemon/objects/memory-store';
import { compileSelector, matchesSelector } from '../../../../daemon/objects/selectors';
import { AdmissionIndex, type PodMemberships } from '../../../../daemon/policy/admission-index';
import { computeDesired } from '../../../../daemon/policy/desired';
import { PG_DENY_EGRESS, PG_DENY_INGRESS } from '../../../../daemon/policy/names';
import type { PodPort } from '../../../../daemon/policy/pods';
import { Rng, edit, labels, newPod, selector, world } from './admission-gen';
import { BUILTIN, JOIN_CIDR, NODE_IPS, namespace, netpol, sel } from './helpers';

// ---- the reference: the full computation with the pod added ----

function fullMemberships(store: MemoryStore, existing: PodPort[], p: PodPort): PodMemberships {
  const desired = computeDesired({ store, pods: [...existing, p], builtin: BUILTIN, joinCidrs: [JOIN_CIDR], nodeIps: NODE_IPS });
  return {
    portGroups: desired.portGroups.filter((g) => g.ports.includes(p.lspName)).map((g) => g.name),
    addressSets: desired.addressSets
      .filter((s) => p.ips.some((ip) => s.addresses.includes(ip)))
      .map((s) => ({ name: s.name, ips: p.ips.filter((ip) => s.addresses.includes(ip)) })),
  };
}

// ---- properties ----

describe('AdmissionIndex', () => {
  const SEEDS = 40;
  const EDITS = 15;
  const PODS_PER_STEP = 8;

  it(`gives exactly the full computation's memberships, in order (${SEEDS} seeds x ${EDITS} edits x ${PODS_PER_STEP} pods)`, () => {
    let checked = 0;
    let withGroups = 0;
    let withSets = 0;
    let withV6Sets = 0;
    let isolated = 0;
    let withSecurityGroups = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const w = world(seed);
      const index = new AdmissionIndex(w.store);
      let step = 'initial';
      for (let e = 0; e <= EDITS; e++) {
        if (e > 0) step = edit(w);
        for (let k = 0; k < PODS_PER_STEP; k++) {
          const p = newPod(w);
          const want = fullMemberships(w.store, w.existing, p);
          const got = index.memberships({ namespace: p.namespace, labels: p.labels, ips: p.ips, ...(p.pod ? { pod: p.pod } : {}) });
          expect(got, `seed ${seed}, edit ${e} (${step}), pod ${p.lspName} ${JSON.stringify(p.labels)} ${p.ips.join(',')}`).toEqual(want);
          checked++;
          if (want.portGroups.length > 0) withGroups++;
          if (want.addressSets.length > 0) withSets++;
          if (want.addressSets.some((s) => s.ips.some((ip) => ip.includes(':')))) withV6Sets++;
          if (want.portGroups.includes(PG_DENY_INGRESS) || want.portGroups.includes(PG_DENY_EGRESS)) isolated++;
          if (want.portGroups.some((g) => g.startsWith('ovnode_sg_'))) withSecurityGroups++;
        }
      }
      index.close();
    }
    // The generator must exercise every kind of membership, or equality above proves little.
    const share = (n: number): number => n / checked;
    expect(checked).toBe(SEEDS * (EDITS + 1) * PODS_PER_STEP);
    expect(share(withGroups)).toBeGreaterThan(0.3);
    expect(share(withSets)).toBeGreaterThan(0.3);
    expect(share(isolated)).toBeGreaterThan(0.1);
    expect(share(withSecurityGroups)).toBeGreaterThan(0.1);
    expect(share(withV6Sets)).toBeGreaterThan(0.05);
    expect(share(withGroups)).toBeLessThan(1);
    expect(share(withSets)).toBeLessThan(1);
  // CPU-bound (600 full computations): seconds on a loaded 2-core machine, not the default 5.
  }, 60_000);

  it('follows a namespace relabel for cross-namespace peers (the per-namespace cache is dropped)', () => {
    const store = new MemoryStore();
    store.apply(namespace('mon', { team: 'ops' }));
    store.apply(netpol('np', 'shop', { ingress: [{ peers: [{ namespaceSelector: sel({ team: 'ops' }) }], ports: [] }] }));
    const index = new AdmissionIndex(store);
    const prom = { namespace: 'mon', labels: {}, ips: ['10.16.2.10'] };
    expect(index.memberships(prom).addressSets).toHaveLength(1);
    store.apply(namespace('mon', { team: 'dev' }));
    expect(index.memberships(prom).addressSets).toEqual([]);
    store.remove('Namespace', 'mon');
    store.apply(netpol('np', 'shop', { ingress: [{ peers: [{ namespaceSelector: sel({ 'kubernetes.io/metadata.name': 'mon' }) }], ports: [] }] }));
    expect(index.memberships(prom).addressSets).toHaveLength(1);
    index.close();
  });
});

describe('compileSelector', () => {
  it('agrees with matchesSelector on random selectors and label sets', () => {
    const rng = new Rng(7);
    let matched = 0;
    const N = 5000;
    for (let i = 0; i < N; i++) {
      const s = rng.chance(0.05) ? undefined : selector(rng);
      const l = labels(rng);
      const want = matchesSelector(s, l);
      expect(compileSelector(s)(l), JSON.stringify({ s, l })).toBe(want);
      if (want) matched++;
    }
    expect(matched / N).toBeGreaterThan(0.1);
    expect(matched / N).toBeLessThan(0.9);
  });
});
