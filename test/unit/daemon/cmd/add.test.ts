// cmdAdd against a fake node (real schemas, real OvsdbClient sessions, FakeNative, FakePlumber,
// fake ovn-controller): the happy path writes exactly one LSP, one Port + Interface and one veth,
// and every step that fails (each in turn, including the unknown-outcome faults of either
// database) leaves EXACTLY nothing behind: both databases equal to before, no veth, no IPAM
// holding; the address the failed ADD took can be requested by another pod at once; the CNI code
// is the step's.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toCniError, type OvnodeError } from '../../../../common/errors';
import { NB, OVS } from '../../../../daemon/ovs/schema';
import { asArray, asMap } from '../../../../daemon/ovsdb/values';
import type { ArmedFault, FakeOvsdbServer, TransactMatcher } from '../../../fakes/fake-ovsdb-server';
import { FakeNode, type Call, type NodeOptions, type NodeState } from './fake-node';

let node: FakeNode;
beforeEach(async () => { node = await FakeNode.start(); });
afterEach(async () => { await node.close(); });

const A: Call = { sandbox: 'sb-a', pod: 'web', namespace: 'ns1' };
const OTHER: Call = { sandbox: 'sb-other', pod: 'other', namespace: 'ns1' };
/** What a fresh 10.16.0.0/16 pool hands out first (.1 is the gateway). */
const FIRST_IP = '10.16.0.2';

const NB_ADD: TransactMatcher = { table: NB.lsp, op: 'insert' };
const OVS_ADD: TransactMatcher = { table: OVS.iface, op: 'insert' };

describe('ADD: success', () => {
  it('writes one LSP, one port on br-int and one veth, waits for ovn-installed, returns the result', async () => {
    await node.settle();
    const mark = node.marks();
    const result = await node.add(A);
    // One transaction per database, nothing else.
    expect(node.requestsSince(mark)).toEqual({ ovs: { transact: 1 }, nb: { transact: 1 } });
    expect(result.ips).toEqual([{ address: `${FIRST_IP}/16`, gateway: '10.16.0.1', interface: 1 }]);
    expect(result.routes).toEqual([{ dst: '0.0.0.0/0', gw: '10.16.0.1' }]);
    expect(result.interfaces?.[1]).toMatchObject({ name: 'eth0', sandbox: node.netnsOf(A), mtu: 1400 });
    expect(node.podLsps()).toEqual(['web.ns1 sb-a']);
    expect(node.podPorts()).toEqual([`${node.portOf(A)} sb-a`]);
    expect([...node.plumber.veths.keys()]).toEqual([node.portOf(A)]);
    expect(node.state().held).toContain(`${FIRST_IP}=${node.holderOf(A)}`);
    const lsp = node.nbServer.rows(NB.lsp).find((r) => r.name === 'web.ns1');
    const mac = result.interfaces?.[1]?.mac as string;
    expect(asArray(lsp?.addresses)).toEqual([`${mac} ${FIRST_IP}`]);
    const iface = node.ovsServer.rows(OVS.iface).find((r) => r.name === node.portOf(A));
    expect(asMap(iface?.external_ids)).toMatchObject({ 'iface-id': 'web.ns1', sandbox: 'sb-a', 'ovn-installed': 'true' });
    expect(node.controller.installed.filter((name) => name !== 'ovn0')).toEqual([node.portOf(A)]);
    expect(node.plumber.announced).toEqual([{ netns: node.netnsOf(A), ifName: 'eth0', mac, ips: [FIRST_IP] }]);
    expect(node.policy.scheduled).toEqual(['pod added']);
    expect(node.rollbackFailures()).toEqual([]);
  });
});

interface Armed { call?: Partial<Call>; fault?: ArmedFault; committed?: boolean }

interface Row {
  desc: string;
  /** CNI code and catalogue code of the error. */
  code: number;
  errCode: string;
  node?: NodeOptions;
  /** Arms the failure; may return a Call override for the failing ADD and the armed fault. */
  arm: (n: FakeNode) => Armed | void;
  /** Address the failed ADD took (and must have given back); none for IPAM failures. */
  triedIp?: string;
  /** Databases whose write had committed, so the unwind had to send exactly one removal. */
  rollback: { nb: boolean; ovs: boolean };
}

const fault = (server: 'nb' | 'ovs', kind: 'commit-then-drop-reply' | 'commit-then-disconnect' | 'disconnect-before-commit' | 'fail-commit') =>
  (n: FakeNode): Armed => ({
    fault: (server === 'nb' ? n.nbServer : n.ovsServer).faults.next({ kind, match: server === 'nb' ? NB_ADD : OVS_ADD }),
    committed: kind.startsWith('commit-then'),
  });
const plainError = Object.assign(new Error('netlink: RTM_NEWADDR: Permission denied'), { errno: 13 });
const UNKNOWN = 'OVNODE_OVSDB_OUTCOME_UNKNOWN';
const NONE = { nb: false, ovs: false };
/** A reply overdue after 200 ms recycles the connection: the write's outcome becomes unknown. */
const DROPPED_REPLY: NodeOptions = { replyTimeoutMs: 200 };
const BOTH = { nb: true, ovs: true };

const rows: Row[] = [
  {
    desc: 'IPAM: subnet full', code: 101, errCode: 'OVNODE_IPAM', rollback: NONE,
    // A /30 has one address to give (.1 is the gateway, .3 the broadcast); someone holds it.
    node: { cidrs: ['10.16.0.0/30'] },
    arm: (n) => { expect(n.pool.allocate('filler.ns1|sb-f', 4)).toBe(FIRST_IP); },
  },
  { desc: 'IPAM: static IP outside the subnet', code: 101, errCode: 'OVNODE_IPAM', rollback: NONE, arm: () => ({ call: { ips: ['10.99.0.5/16'] } }) },
  {
    desc: 'IPAM: static IP held by another pod', code: 101, errCode: 'OVNODE_IPAM', rollback: NONE,
    arm: (n) => { n.pool.reserve('10.16.0.9', 'someone.else|sb-x'); return { call: { ips: ['10.16.0.9/16'] } }; },
  },
  {
    desc: 'IPAM: static IPv4 reserved, then the IPv6 one is outside the (IPv4-only) subnet', code: 101, errCode: 'OVNODE_IPAM', rollback: NONE,
    arm: () => ({ call: { ips: ['10.16.0.7/16', 'fd00::7/64'] } }),
  },
  {
    // The host end exists, so the OVS port was written alongside the pod side's configuration.
    desc: 'plumb: the plumber throws a plain Error after creating the veth', code: 102, errCode: 'OVNODE_PLUMB', triedIp: FIRST_IP,
    rollback: BOTH,
    arm: (n) => n.plumber.failCreate({ error: plainError, after: 'veth' }),
  },
  {
    desc: 'plumb: the plumber throws a TypeError before creating anything', code: 102, errCode: 'OVNODE_PLUMB', triedIp: FIRST_IP,
    rollback: { nb: true, ovs: false },
    arm: (n) => n.plumber.failCreate({ error: new TypeError('boom') }),
  },
  { desc: 'OVN NB write refused (fail-commit)', code: 103, errCode: 'OVNODE_OVSDB', triedIp: FIRST_IP, rollback: { nb: false, ovs: true }, arm: fault('nb', 'fail-commit') },
  { desc: 'OVS write refused (fail-commit)', code: 103, errCode: 'OVNODE_OVSDB', triedIp: FIRST_IP, rollback: { nb: true, ovs: false }, arm: fault('ovs', 'fail-commit') },
  {
    desc: 'ovn-installed never comes: the deadline aborts the wait', code: 11, errCode: 'OVNODE_DEADLINE', triedIp: FIRST_IP, rollback: BOTH,
    arm: (n) => { n.controller.hang.add(n.portOf(A)); return { call: { signal: n.deadlineAtWait() } }; },
  },
  {
    desc: 'NB commit-then-drop-reply (unknown outcome once the reply is overdue, resolved after the resync)', code: 11, errCode: UNKNOWN,
    triedIp: FIRST_IP, rollback: BOTH, node: DROPPED_REPLY, arm: fault('nb', 'commit-then-drop-reply'),
  },
  { desc: 'NB commit-then-disconnect', code: 11, errCode: UNKNOWN, triedIp: FIRST_IP, rollback: BOTH, arm: fault('nb', 'commit-then-disconnect') },
  { desc: 'NB disconnect-before-commit', code: 11, errCode: UNKNOWN, triedIp: FIRST_IP, rollback: { nb: false, ovs: true }, arm: fault('nb', 'disconnect-before-commit') },
  { desc: 'OVS commit-then-drop-reply', code: 11, errCode: UNKNOWN, triedIp: FIRST_IP, rollback: BOTH, node: DROPPED_REPLY, arm: fault('ovs', 'commit-then-drop-reply') },
  { desc: 'OVS commit-then-disconnect', code: 11, errCode: UNKNOWN, triedIp: FIRST_IP, rollback: BOTH, arm: fault('ovs', 'commit-then-disconnect') },
  { desc: 'OVS disconnect-before-commit', code: 11, errCode: UNKNOWN, triedIp: FIRST_IP, rollback: { nb: true, ovs: false }, arm: fault('ovs', 'disconnect-before-commit') },
];

/** Transactions a server received since `from` whose comment contains `text`. */
function transactsWith(server: FakeOvsdbServer, from: number, text: string): number {
  return server.requests.slice(from).filter((r) => r.method === 'transact'
    && (r.params as Array<{ op?: string; comment?: string }>).some((o) => o.op === 'comment' && o.comment?.includes(text))).length;
}

/** Asserts that nothing of A is left anywhere, and that the state is exactly `before`. */
async function expectNothingLeft(n: FakeNode, before: NodeState): Promise<void> {
  await n.settle();
  expect(n.state()).toEqual(before);
  expect(n.state().held.filter((h) => h.includes('|sb-a'))).toEqual([]);
  expect(n.podLsps()).toEqual([]);
  expect(n.podPorts()).toEqual([]);
  expect(n.plumber.veths.size).toBe(0);
  // The daemon's own caches agree (DEL, CHECK and GC read them).
  expect([...n.nb.rows(NB.lsp).values()].filter((r) => r.name === 'web.ns1')).toEqual([]);
  expect([...n.ovs.rows(OVS.iface).values()].filter((r) => r.name === n.portOf(A))).toEqual([]);
  // Every rollback step succeeded (a failed one is only logged), and no policy run was asked for.
  expect(n.rollbackFailures()).toEqual([]);
  expect(n.policy.scheduled).toEqual([]);
}

describe('ADD: a failure at any step leaves exactly nothing', () => {
  for (const row of rows) {
    it(`${row.desc} -> CNI code ${row.code}`, async () => {
      if (row.node) { await node.close(); node = await FakeNode.start(row.node); }
      const armed = row.arm(node) ?? {};
      await node.settle();
      const before = node.state();
      const mark = node.marks();

      const err = await node.addFails({ ...A, ...armed.call });
      const sent = node.requestsSince(mark);
      expect(toCniError(err).code, String(err)).toBe(row.code);
      expect((err as OvnodeError).code).toBe(row.errCode);
      if (row.errCode === 'OVNODE_PLUMB') expect((err as OvnodeError).cause).toBeInstanceOf(Error);
      if (armed.fault) {
        expect(armed.fault.outcomes).toHaveLength(1);
        expect(armed.fault.outcomes[0]?.committed).toBe(armed.committed);
      }
      await expectNothingLeft(node, before);
      expect(transactsWith(node.nbServer, mark.nb, 'roll back'), 'NB removals').toBe(row.rollback.nb ? 1 : 0);
      expect(transactsWith(node.ovsServer, mark.ovs, 'roll back'), 'OVS removals').toBe(row.rollback.ovs ? 1 : 0);
      if (row.errCode === 'OVNODE_IPAM') expect(sent).toEqual({ ovs: {}, nb: {} });

      node.controller.hang.clear();
      if (row.triedIp) {
        // Another pod can be given that very address at once.
        const r = await node.add({ ...OTHER, ips: [`${row.triedIp}/16`] });
        expect(r.ips?.map((i) => i.address)).toEqual([`${row.triedIp}/16`]);
      }
      if (row.desc !== 'IPAM: subnet full') {
        // And the same pod can be attached again.
        const again = await node.add(A);
        expect(again.ips).toHaveLength(1);
        expect(node.podLsps()).toContain('web.ns1 sb-a');
        expect(node.podPorts()).toContain(`${node.portOf(A)} sb-a`);
      } else {
        expect(node.state().held).toContain(`${FIRST_IP}=filler.ns1|sb-f`);
      }
    });
  }

  it('plumb fails while the NB write is still in flight: the unwind waits for it, then removes the LSP', async () => {
    const nbGate = node.nbServer.faults.hold(NB_ADD, { at: 'before-commit' });
    const plumbGate = node.plumber.holdCreate();
    await node.settle();
    const before = node.state();
    const adding = node.addFails(A);
    await Promise.all([nbGate.reached, plumbGate.reached]);
    plumbGate.release(new Error('netlink: EBUSY'));
    // The plumb step has failed for good while the NB transaction is still held before its commit.
    await node.logged((r) => r.step === 'plumb' && r.msg === 'step done');
    const mark = node.marks();
    expect(node.rollbackFailures()).toEqual([]);
    // Had the unwind started now, the LSP undo would have found no row (not committed yet) and the
    // commit below would leave the LSP behind.
    nbGate.release();
    const outcome = await nbGate.done;
    expect(outcome.committed).toBe(true);
    const err = await adding;
    expect(toCniError(err).code).toBe(102);
    expect(transactsWith(node.nbServer, mark.nb, 'roll back')).toBe(1);
    await expectNothingLeft(node, before);
  });
});
