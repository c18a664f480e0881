// cmdDel against a fake node: DEL removes everything of one attachment and is idempotent (twice,
// with nothing there, after an ADD whose rollback could not finish, after a crash that left only
// a veth), and a late DEL of an old sandbox never touches what an ADD of a newer sandbox of the
// same pod (same LSP name, same address) wrote, whichever of the two reaches the NB first.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toCniError } from '../../../../common/errors';
import { NB, OVS } from '../../../../daemon/ovs/schema';
import { asArray, asMap } from '../../../../daemon/ovsdb/values';
import type { TransactMatcher } from '../../../fakes/fake-ovsdb-server';
import { FakeNode, type Call, type NodeState } from './fake-node';

let node: FakeNode;
let baseline: NodeState;
beforeEach(async () => {
  node = await FakeNode.start();
  await node.settle();
  baseline = node.state();
});
afterEach(async () => { await node.close(); });

const A: Call = { sandbox: 'sb-a', pod: 'web', namespace: 'ns1' };
const NB_ADD: TransactMatcher = { table: NB.lsp, op: 'insert' };
const NB_DEL: TransactMatcher = { comment: 'ovnode: delete' };

/** DEL, then wait for the background veth removal and for both caches. */
async function del(call: Call): Promise<void> {
  await node.del(call);
  await node.settle();
}

describe('DEL is idempotent', () => {
  it('removes LSP, port, veth and address; a second DEL sends nothing and succeeds', async () => {
    await node.add(A);
    await del(A);
    expect(node.state()).toEqual(baseline);
    expect(node.plumber.removed).toEqual([node.portOf(A)]);
    expect(node.policy.scheduled).toEqual(['pod added', 'pod removed']);

    const mark = node.marks();
    await del(A);
    expect(node.requestsSince(mark)).toEqual({ ovs: { echo: 1 }, nb: { echo: 1 } }); // settle()'s echoes only
    expect(node.state()).toEqual(baseline);
    expect(node.policy.scheduled).toEqual(['pod added', 'pod removed']);
  });

  it('with nothing there (and an empty CNI_NETNS) sends nothing and succeeds', async () => {
    const mark = node.marks();
    await node.del({ ...A, netns: '' });
    expect(node.requestsSince(mark)).toEqual({ ovs: {}, nb: {} });
    await node.settle();
    expect(node.state()).toEqual(baseline);
  });

  it('after a crash that left only the veth: removes the veth, writes nothing', async () => {
    node.plumber.addLeftover({ hostIfName: node.portOf(A), netns: node.netnsOf(A), podIfName: 'eth0' });
    const mark = node.marks();
    await node.del(A);
    expect(node.requestsSince(mark)).toEqual({ ovs: {}, nb: {} });
    await node.settle();
    expect(node.state()).toEqual(baseline);
  });

  it('after an ADD whose rollback could not remove its LSP: the address stays held until DEL removes the LSP', async () => {
    node.controller.hang.add(node.portOf(A));
    const refused = node.nbServer.faults.next({ kind: 'fail-commit', match: { comment: 'roll back logical switch port' } });
    const err = await node.addFails({ ...A, signal: node.deadlineAtWait() });
    expect(toCniError(err).code).toBe(11);
    expect(refused.outcomes).toHaveLength(1);
    await node.settle();
    // Partial: the LSP is left (for DEL or the reconcile loop), and with it the address it carries.
    expect(node.rollbackFailures()).toHaveLength(1);
    expect(node.podLsps()).toEqual(['web.ns1 sb-a']);
    expect(node.podPorts()).toEqual([]);
    expect(node.plumber.veths.size).toBe(0);
    expect(node.state().held).toContain(`10.16.0.2=${node.holderOf(A)}`);

    await del(A);
    expect(node.state()).toEqual(baseline);
    await del(A);
    expect(node.state()).toEqual(baseline);
  });

  it('after an ADD whose rollback could not remove its OVS port: DEL removes it', async () => {
    node.nbServer.faults.next({ kind: 'fail-commit', match: NB_ADD });
    const refused = node.ovsServer.faults.next({ kind: 'fail-commit', match: { comment: 'roll back port' } });
    const err = await node.addFails(A);
    expect(toCniError(err).code).toBe(103);
    expect(refused.outcomes).toHaveLength(1);
    await node.settle();
    expect(node.rollbackFailures()).toHaveLength(1);
    expect(node.podPorts()).toEqual([`${node.portOf(A)} sb-a`]);
    expect(node.podLsps()).toEqual([]);

    await del(A);
    expect(node.state()).toEqual(baseline);
  });
});

describe('DEL of an old sandbox racing ADD of a new sandbox of the same pod', () => {
  const OLD: Call = { sandbox: 'sb-old', pod: 'web', namespace: 'ns1' };
  const NEW: Call = { sandbox: 'sb-new', pod: 'web', namespace: 'ns1' };

  /** What must hold once both are done: the new sandbox intact, nothing of the old one left. */
  async function expectNewSurvives(addressOfNew: string): Promise<void> {
    await node.settle();
    expect(node.podLsps()).toEqual(['web.ns1 sb-new']);
    expect(node.podPorts()).toEqual([`${node.portOf(NEW)} sb-new`]);
    expect(node.state().veths).toEqual([node.portOf(NEW)]);
    expect(node.state().held.filter((h) => h.includes('web.ns1'))).toEqual([`${addressOfNew}=${node.holderOf(NEW)}`]);
    const lsp = node.nbServer.rows(NB.lsp).find((r) => r.name === 'web.ns1');
    expect(asArray<string>(lsp?.addresses)[0]?.split(' ')[1]).toBe(addressOfNew);
    const iface = node.ovsServer.rows(OVS.iface).find((r) => r.name === node.portOf(NEW));
    expect(asMap(iface?.external_ids)).toMatchObject({ sandbox: 'sb-new', 'ovn-installed': 'true' });
    expect(node.rollbackFailures()).toEqual([]);
  }

  it("DEL's NB transaction held before commit while the new ADD runs to completion", async () => {
    const old = await node.add(OLD);
    const oldIp = old.ips?.[0]?.address.split('/')[0] as string;
    const gate = node.nbServer.faults.hold(NB_DEL, { at: 'before-commit' });
    const deleting = node.del(OLD);
    await gate.reached;

    const fresh = await node.add(NEW);
    // A pod keeps its address across sandboxes.
    expect(fresh.ips?.[0]?.address).toBe(`${oldIp}/16`);

    gate.release();
    await deleting;
    const done = await gate.done;
    // The late delete ran, by the old row's UUID: it matched nothing.
    expect(done.committed).toBe(true);
    expect(done.results?.some((r) => (r as { count?: number }).count === 0)).toBe(true);
    await expectNewSurvives(oldIp);
    // And the new sandbox still passes CHECK.
    await node.check({ ...NEW, prevResult: fresh });
  });

  it("the new ADD's NB transaction held before commit while the DEL of the old one runs to completion", async () => {
    const old = await node.add(OLD);
    const oldIp = old.ips?.[0]?.address.split('/')[0] as string;
    const gate = node.nbServer.faults.hold(NB_ADD, { at: 'before-commit' });
    const adding = node.add(NEW);
    await gate.reached;

    await node.del(OLD);
    // The old LSP is gone (confirmed), but its address already belonged to the new sandbox.
    expect(node.podLsps()).toEqual([]);
    expect(node.policy.scheduled).toContain('pod removed');
    expect(node.pool.ownerOf(oldIp)).toBe(node.holderOf(NEW));
    gate.release();
    const fresh = await adding;
    expect(fresh.ips?.[0]?.address).toBe(`${oldIp}/16`);
    await expectNewSurvives(oldIp);
  });

  it('DEL of the old sandbox long after the new one took over: only the old leftovers go', async () => {
    const old = await node.add(OLD);
    const oldIp = old.ips?.[0]?.address.split('/')[0] as string;
    await node.add(NEW);
    await del(OLD);
    await expectNewSurvives(oldIp);
  });
});
