// PolicyEngine.admissionOps end to end on a fake NB, against the operations the previous
// implementation derived from a full desired-state computation (kept below as the reference):
// random worlds and store edits, checked both before the engine's run has written an edit
// (groups and sets the NB lacks are skipped) and after it.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { SubnetRegistry } from '../../../../daemon/ipam/registry';
import type { ObjectStore } from '../../../../daemon/objects/types';
import type { OvsdbClient } from '../../../../daemon/ovsdb/client';
import type { Operation } from '../../../../daemon/ovsdb/types';
import { namedUuid, ovsSet, type Atom } from '../../../../daemon/ovsdb/values';
import { AdmissionIndex } from '../../../../daemon/policy/admission-index';
import { computeDesired } from '../../../../daemon/policy/desired';
import { PolicyEngine } from '../../../../daemon/policy/engine';
import { namespaceLabels, podPorts, type PodPort } from '../../../../daemon/policy/pods';
import { edit, newPod, world } from './admission-gen';
import { BUILTIN, JOIN_CIDR, NODE_IPS, startNb } from './helpers';

type View = Omit<PodPort, 'namespaceLabels'>;

/**
 * The previous admissionOps: the whole desired state with the pod added, filtered by the NB.
 * It also left out addresses a set already held; the engine no longer scans sets for that
 * (an insert of a present element is a no-op), so neither does the reference.
 */
function fullAdmissionOps(nb: OvsdbClient, store: ObjectStore, p: View, lspRef: string): Operation[] {
  if (store.list('NetworkPolicy').length === 0 && store.list('SecurityGroup').length === 0) return [];
  const pods = [...podPorts(nb, store).filter((x) => x.lspName !== p.lspName), { ...p, namespaceLabels: namespaceLabels(store, p.namespace) }];
  const desired = computeDesired({ store, pods, builtin: BUILTIN, joinCidrs: [JOIN_CIDR], nodeIps: NODE_IPS });
  const ops: Operation[] = [];
  const pgs = new Map([...nb.rows('Port_Group').values()].map((r) => [r.name as string, r]));
  for (const pg of desired.portGroups) {
    if (!pg.ports.includes(p.lspName) || !pgs.has(pg.name)) continue;
    ops.push({ op: 'mutate', table: 'Port_Group', where: [['name', '==', pg.name]], mutations: [['ports', 'insert', ovsSet([namedUuid(lspRef)])]] });
  }
  const sets = new Set([...nb.rows('Address_Set').values()].map((r) => r.name as string));
  for (const as of desired.addressSets) {
    if (!sets.has(as.name)) continue;
    const add = p.ips.filter((ip) => as.addresses.includes(ip));
    if (add.length > 0) ops.push({ op: 'mutate', table: 'Address_Set', where: [['name', '==', as.name]], mutations: [['addresses', 'insert', ovsSet(add as Atom[])]] });
  }
  return ops;
}

const viewOf = (p: PodPort): View => {
  const { namespaceLabels: _, ...view } = p;
  return view;
};

describe('PolicyEngine.admissionOps', () => {
  const SEEDS = [1, 2, 3, 4, 5, 6];
  const EDITS = 12;
  const PODS_PER_CHECK = 4;

  it(`gives the full computation's operations, before and after each run (${SEEDS.length} seeds x ${EDITS} edits)`, async () => {
    const totals = { checks: 0, pgOps: 0, asOps: 0, skippedByNb: 0 };
    for (const seed of SEEDS) {
      const w = world(seed);
      const env = await startNb(w.existing.map((p) => ({ name: p.name, namespace: p.namespace, ips: p.ips })));
      const index = new AdmissionIndex(w.store);
      try {
        const subnets = new SubnetRegistry('ovn-default');
        for (const b of BUILTIN) subnets.add(b);
        const engine = new PolicyEngine({ nb: env.nb, store: w.store, subnets, log: pino({ enabled: false }), builtin: BUILTIN, joinCidrs: [JOIN_CIDR], nodeIps: NODE_IPS });
        await engine.start();
        const check = async (step: string): Promise<void> => {
          for (let k = 0; k < PODS_PER_CHECK; k++) {
            const p = viewOf(newPod(w));
            const m = index.memberships(p);
            const got = engine.admissionOps(p, 'lsp');
            expect(got, `seed ${seed}, ${step}, pod ${p.lspName} ${JSON.stringify(p.labels)} ${p.ips.join(',')}`).toEqual(fullAdmissionOps(env.nb, w.store, p, 'lsp'));
            totals.checks++;
            totals.pgOps += got.filter((o) => o.op === 'mutate' && o.table === 'Port_Group').length;
            totals.asOps += got.filter((o) => o.op === 'mutate' && o.table === 'Address_Set').length;
            if (got.length < m.portGroups.length + m.addressSets.length) totals.skippedByNb++;
          }
        };
        await check('after start');
        for (let e = 1; e <= EDITS; e++) {
          const step = edit(w);
          // The engine's run for this edit starts on the next turn: the NB does not show it yet.
          await check(`edit ${e} (${step}), before the run`);
          await engine.schedule('test');
          await check(`edit ${e} (${step}), after the run`);
        }
      } finally {
        index.close();
        await env.close();
      }
    }
    // Every branch was taken, or the equality above proves little.
    expect(totals.checks).toBe(SEEDS.length * (1 + 2 * EDITS) * PODS_PER_CHECK);
    expect(totals.pgOps).toBeGreaterThan(50);
    expect(totals.asOps).toBeGreaterThan(50);
    expect(totals.skippedByNb).toBeGreaterThan(5);
  }, 60_000);
});
