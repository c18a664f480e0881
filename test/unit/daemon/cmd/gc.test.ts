// cmdGc against a fake node: attachments of this network that the runtime no longer lists go
// (each under its sandbox lock), listed ones and other networks' stay, half attachments (an LSP
// an ADD could not roll back) go with their address, and a GC with nothing to do writes nothing.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toCniError } from '../../../../common/errors';
import { PROTOCOL_VERSION } from '../../../../common/protocol';
import { cmdGc } from '../../../../daemon/cmd/gc';
import { decodeRequest } from '../../../../daemon/server/request';
import { FakeNode, type Call, type NodeState } from './fake-node';

let node: FakeNode;
let baseline: NodeState;
beforeEach(async () => {
  node = await FakeNode.start();
  await node.settle();
  baseline = node.state();
});
afterEach(async () => { await node.close(); });

const A: Call = { sandbox: 'sb-a', pod: 'a', namespace: 'ns1' };
const B: Call = { sandbox: 'sb-b', pod: 'b', namespace: 'ns1' };
const C: Call = { sandbox: 'sb-c', pod: 'c', namespace: 'ns1', network: 'other-net' };
const B2: Call = { sandbox: 'sb-b', pod: 'b', namespace: 'ns1', ifName: 'net1' };

describe('GC', () => {
  it('removes what the runtime no longer lists, keeps what it lists and what other networks own', async () => {
    await node.add(A);
    await node.add(B);
    await node.add(B2);
    await node.add(C);
    await node.gc([{ sandbox: 'sb-a' }]);
    await node.settle();
    expect(node.locked.sort()).toEqual(['sb-b', 'sb-b']);
    expect(node.podLsps()).toEqual(['a.ns1 sb-a', 'c.ns1 sb-c']);
    expect(node.podPorts()).toEqual([`${node.portOf(A)} sb-a`, `${node.portOf(C)} sb-c`].sort());
    expect(node.state().veths).toEqual([node.portOf(A), node.portOf(C)].sort());
    expect(node.state().held.filter((h) => h.includes('|sb-'))).toEqual([`10.16.0.2=${node.holderOf(A)}`, `10.16.0.5=${node.holderOf(C)}`]);
    expect(node.rollbackFailures()).toEqual([]);

    // Listing the interface decides, not the sandbox alone.
    await node.gc([{ sandbox: 'sb-a', ifName: 'net1' }]);
    await node.settle();
    expect(node.podLsps()).toEqual(['c.ns1 sb-c']);
  });

  it('removes a half attachment (an LSP an ADD could not roll back) and frees its address', async () => {
    node.controller.hang.add(node.portOf(A));
    node.nbServer.faults.next({ kind: 'fail-commit', match: { comment: 'roll back logical switch port' } });
    expect(toCniError(await node.addFails({ ...A, signal: node.deadlineAtWait() })).code).toBe(11);
    await node.settle();
    expect(node.podLsps()).toEqual(['a.ns1 sb-a']);
    await node.gc([]);
    await node.settle();
    expect(node.state()).toEqual(baseline);
  });

  it('with nothing stale writes nothing', async () => {
    await node.add(A);
    await node.settle();
    const mark = node.marks();
    await node.gc([{ sandbox: 'sb-a' }]);
    expect(node.requestsSince(mark)).toEqual({ ovs: {}, nb: {} });
    expect(node.locked).toEqual([]);
  });

  it('without a valid-attachments list refuses with 7 and touches nothing', async () => {
    await node.add(A);
    await node.settle();
    const before = node.state();
    const mark = node.marks();
    const req = decodeRequest({ protocol: PROTOCOL_VERSION, env: { CNI_COMMAND: 'GC' }, config: JSON.stringify({ cniVersion: '1.1.0', name: 'ovn', type: 'ovnode' }), deadlineMs: 1000 });
    const err = await cmdGc(node.ctx(req), (_k, fn) => fn()).then(() => undefined, (e: unknown) => e);
    expect(toCniError(err).code).toBe(7);
    expect(node.requestsSince(mark)).toEqual({ ovs: {}, nb: {} });
    expect(node.state()).toEqual(before);
  });
});
