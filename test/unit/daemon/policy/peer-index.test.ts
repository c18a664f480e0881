// The PeerIndex and the policy translations are kept from one policy run to the next.
// Property-style: a seeded random world gets random edits (policies, namespace labels, pods
// relabelled, re-addressed, added and removed); after each edit the port groups (with their ACLs)
// and address sets computed with both kept since the start must be exactly those of a fresh
// computation. A stale answer anywhere fails, with the seed and step.
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../../daemon/objects/memory-store';
import type { PodObj } from '../../../../daemon/objects/types';
import { policyTranslations, translateNetworkPolicies } from '../../../../daemon/policy/network-policy';
import { PeerIndex } from '../../../../daemon/policy/peer-index';
import { namespaceLabels, type PodPort } from '../../../../daemon/policy/pods';
import { Rng, edit, ipsOf, labels, podObj, world } from './admission-gen';
import { NODE_IPS, netpol, pod, sel } from './helpers';

/** Ports as the engine builds them each run: fresh objects, one namespace-labels object per namespace. */
function portsOf(store: MemoryStore, ips: Map<string, string[]>): PodPort[] {
  const nsLabels = new Map<string, Record<string, string>>();
  return store.list('Pod').map((p) => {
    const ns = p.metadata.namespace;
    if (!nsLabels.has(ns)) nsLabels.set(ns, namespaceLabels(store, ns));
    const key = `${ns}/${p.metadata.name}`;
    return {
      lspName: key, name: p.metadata.name, namespace: ns, logicalSwitch: 'ovn-default', mac: '0a:58:0a:10:00:01',
      ips: [...(ips.get(key) ?? [])], labels: p.metadata.labels, namespaceLabels: nsLabels.get(ns) as Record<string, string>, pod: p,
    };
  });
}

function podEdit(rng: Rng, store: MemoryStore, ips: Map<string, string[]>, next: { n: number }): string {
  const pods = store.list('Pod');
  const victim = pods.length > 0 ? rng.pick(pods) : undefined;
  const key = (p: PodObj): string => `${p.metadata.namespace}/${p.metadata.name}`;
  switch (rng.int(6)) {
    case 0: {
      const p = podObj(rng, `late-${next.n}`);
      store.apply(p);
      ips.set(key(p), ipsOf(rng, 100 + next.n++));
      return `add pod ${key(p)}`;
    }
    case 4: {
      // A pod naming its port: what named-port policies resolve against.
      const p = pod(`named-${next.n}`, rng.pick(['ns-0', 'ns-1', 'ns-2']), { labels: labels(rng), ports: [{ name: 'http', containerPort: 8000 + rng.int(4), protocol: 'TCP' }] });
      store.apply(p);
      ips.set(key(p), ipsOf(rng, 100 + next.n++));
      return `add pod ${key(p)} with a named port`;
    }
    case 5: {
      const ns = rng.pick(['ns-0', 'ns-1', 'ns-2']);
      const named = [{ protocol: 'TCP' as const, port: 'http' }];
      store.apply(netpol(`named-np-${next.n++}`, ns, {
        podSelector: rng.chance(0.5) ? sel() : sel(labels(rng)), policyTypes: ['Ingress', 'Egress'],
        ingress: [{ peers: [], ports: named }], egress: [{ peers: [{ podSelector: sel() }], ports: named }],
      }));
      return `add a named-port policy in ${ns}`;
    }
    case 1:
      if (!victim) return 'no pod to remove';
      store.remove('Pod', victim.metadata.name, victim.metadata.namespace);
      return `remove pod ${key(victim)}`;
    case 2:
      if (!victim) return 'no pod to relabel';
      store.apply({ ...victim, metadata: { ...victim.metadata, labels: labels(rng) } });
      return `relabel pod ${key(victim)}`;
    default:
      if (!victim) return 'no pod to re-address';
      ips.set(key(victim), ipsOf(rng, 200 + next.n++));
      return `re-address pod ${key(victim)}`;
  }
}

describe('PeerIndex kept across runs', () => {
  it('gives exactly the port groups, ACLs and address sets of a fresh computation after every edit (30 seeds x 40 edits)', () => {
    let compared = 0;
    let nonEmpty = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const w = world(seed);
      const ips = new Map<string, string[]>();
      for (const p of w.existing) ips.set(`${p.namespace}/${p.name}`, p.ips);
      const kept = new PeerIndex();
      const translations = policyTranslations();
      const next = { n: 0 };
      for (let e = 0; e <= 40; e++) {
        const step = e === 0 ? 'initial' : w.rng.chance(0.5) ? edit(w) : podEdit(w.rng, w.store, ips, next);
        const ports = portsOf(w.store, ips);
        const ctx = { store: w.store, pods: ports.slice(0, 5), peers: ports, nodeIps: NODE_IPS, families: [4, 6] as Array<4 | 6> };
        // A varying slice of local pods: policies' selections change too, not only their peers.
        const local = ports.filter((_, i) => (i + e) % 3 === 0);
        const got = translateNetworkPolicies({ ...ctx, pods: local, peerIndex: kept, translations });
        const want = translateNetworkPolicies({ ...ctx, pods: local });
        expect(got, `seed ${seed}, edit ${e} (${step})`).toEqual(want);
        compared += want.addressSets.length;
        nonEmpty += want.addressSets.filter((s) => s.addresses.length > 0).length;
      }
    }
    // The worlds must exercise the sets: many, and many with members.
    expect(compared).toBeGreaterThan(1000);
    expect(nonEmpty).toBeGreaterThan(300);
  });

  it('evaluates peers that say the same thing once, and only the changed namespace after a pod edit', () => {
    const store = new MemoryStore();
    const pods = ['a', 'b'].flatMap((ns) => [0, 1, 2].map((i) => pod(`p${i}`, ns, { labels: { role: i === 0 ? 'db' : 'web' } })));
    for (const p of pods) store.apply(p);
    for (const ns of ['a', 'b']) {
      for (const name of ['np-1', 'np-2']) {
        store.apply(netpol(name, ns, { ingress: [{ peers: [{ podSelector: sel({ role: 'web' }) }], ports: [] }] }));
      }
    }
    const ips = new Map(pods.map((p, i) => [`${p.metadata.namespace}/${p.metadata.name}`, [`10.16.0.${i + 10}`]]));
    const index = new PeerIndex();
    let evaluated = 0;
    const counting = (ports: PodPort[]): PodPort[] => ports.map((p) => ({
      ...p, get labels() { evaluated++; return p.labels; },
    }));
    const ctx = (): Parameters<typeof translateNetworkPolicies>[0] => {
      const ports = counting(portsOf(store, ips));
      return { store, pods: [], peers: ports, nodeIps: NODE_IPS, families: [4], peerIndex: index };
    };
    const first = translateNetworkPolicies(ctx()).addressSets;
    expect(first.map((s) => s.addresses)).toEqual([['10.16.0.11', '10.16.0.12'], ['10.16.0.11', '10.16.0.12'], ['10.16.0.14', '10.16.0.15'], ['10.16.0.14', '10.16.0.15']]);
    expect(evaluated).toBe(6); // two namespaces x three pods, once for both policies of each
    evaluated = 0;
    const p0 = store.get('Pod', 'p0', 'b') as PodObj;
    store.apply({ ...p0, metadata: { ...p0.metadata, labels: { role: 'web' } } });
    const second = translateNetworkPolicies(ctx()).addressSets;
    expect(second[2]?.addresses).toEqual(['10.16.0.13', '10.16.0.14', '10.16.0.15']);
    expect(second[0]?.addresses).toEqual(['10.16.0.11', '10.16.0.12']);
    expect(evaluated).toBe(3); // namespace b only
  });
});
