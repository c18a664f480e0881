// cmdCheck against a fake node: CHECK is read-only. It answers from the monitored caches, the
// netns check and the plumber's inspection, so neither OVSDB server receives a single request
// (no transact, no select, no echo), whether the check passes or fails, and nothing changes.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CniResult } from '../../../../common/cni-spec';
import { toCniError } from '../../../../common/errors';
import { NB, OVS } from '../../../../daemon/ovs/schema';
import { ovsMap, ovsSet, uuid } from '../../../../daemon/ovsdb/values';
import { FakeNode, type Call, type NodeState } from './fake-node';

let node: FakeNode;
let added: CniResult;
beforeEach(async () => {
  node = await FakeNode.start();
  added = await node.add(A);
});
afterEach(async () => { await node.close(); });

const A: Call = { sandbox: 'sb-a', pod: 'web', namespace: 'ns1' };

/** Runs CHECK with nothing in flight and proves it sent nothing and changed nothing. */
async function checkReadOnly(call: Call): Promise<unknown> {
  await node.settle();
  const before: NodeState = node.state();
  const mark = node.marks();
  const outcome = await node.check(call).then(() => undefined, (e: unknown) => e);
  expect(node.requestsSince(mark)).toEqual({ ovs: {}, nb: {} });
  expect(node.state()).toEqual(before);
  return outcome;
}

describe('CHECK is read-only', () => {
  it('passes for an intact attachment without sending a request', async () => {
    expect(await checkReadOnly({ ...A, prevResult: added })).toBeUndefined();
  });

  it('passes for a 0.4.0 prevResult too', async () => {
    const legacy = { ...added, cniVersion: '0.4.0', ips: added.ips?.map((ip) => ({ ...ip, version: '4' })) };
    expect(await checkReadOnly({ ...A, cniVersion: '0.4.0', prevResult: legacy })).toBeUndefined();
  });

  const failures: Array<{ desc: string; code: number; call?: () => Call; breakIt?: (n: FakeNode) => void }> = [
    { desc: 'no prevResult', code: 7, call: () => A },
    { desc: 'an unknown sandbox', code: 104, call: () => ({ ...A, sandbox: 'sb-unknown', prevResult: added }) },
    {
      desc: 'ovn-controller has not installed the port',
      code: 104,
      breakIt: (n) => {
        n.controller.hang.add(n.portOf(A)); // (or the fake ovn-controller would mark it again)
        const iface = n.ovsServer.rows(OVS.iface).find((r) => r.name === n.portOf(A));
        n.ovsServer.apply([{ op: 'mutate', table: OVS.iface, where: [['_uuid', '==', uuid(iface!._uuid)]], mutations: [['external_ids', 'delete', ovsSet(['ovn-installed'])]] }]);
      },
    },
    {
      desc: 'the LSP is gone',
      code: 104,
      breakIt: (n) => {
        const lsp = n.nbServer.rows(NB.lsp).find((r) => r.name === 'web.ns1');
        n.nbServer.apply([{ op: 'mutate', table: NB.ls, where: [['name', '==', 'ovn-default']], mutations: [['ports', 'delete', ovsSet([uuid(lsp!._uuid)])]] }]);
      },
    },
    {
      desc: 'the LSP carries other addresses',
      code: 104,
      breakIt: (n) => void n.nbServer.apply([{ op: 'update', table: NB.lsp, where: [['name', '==', 'web.ns1']], row: { addresses: ovsSet(['0a:58:0a:10:00:63 10.16.0.99']) } }]),
    },
    {
      desc: 'prevResult names other IPs',
      code: 104,
      call: () => ({ ...A, prevResult: { ...added, ips: [{ address: '10.16.0.77/16', gateway: '10.16.0.1', interface: 1 }] } }),
    },
    { desc: 'the interface is missing in the netns', code: 104, breakIt: (n) => void n.plumber.veths.clear() },
    { desc: 'the interface has another MAC', code: 104, breakIt: (n) => { n.plumber.veths.get(n.portOf(A))!.mac = '0a:58:0a:10:00:63'; } },
    { desc: 'the interface lacks its address', code: 104, breakIt: (n) => { n.plumber.veths.get(n.portOf(A))!.addresses = []; } },
    { desc: 'the default route is missing', code: 104, breakIt: (n) => { n.plumber.veths.get(n.portOf(A))!.routes = []; } },
    { desc: 'the netns is gone', code: 4, breakIt: (n) => n.native.removeNetns(n.netnsOf(A)) },
    {
      desc: 'the Interface row is gone from OVS',
      code: 104,
      breakIt: (n) => {
        const port = n.ovsServer.rows(OVS.port).find((r) => r.name === n.portOf(A));
        n.ovsServer.apply([{ op: 'mutate', table: OVS.bridge, where: [['name', '==', 'br-int']], mutations: [['ports', 'delete', ovsSet([uuid(port!._uuid)])]] }]);
      },
    },
  ];

  for (const f of failures) {
    it(`fails with ${f.code} when ${f.desc}, without sending a request`, async () => {
      f.breakIt?.(node);
      const err = await checkReadOnly(f.call?.() ?? { ...A, prevResult: added });
      expect(err, 'CHECK passed').toBeDefined();
      expect(toCniError(err).code, String(err)).toBe(f.code);
    });
  }

  it('an external_ids change that is not ovnode\'s own does not fail it', async () => {
    const iface = node.ovsServer.rows(OVS.iface).find((r) => r.name === node.portOf(A));
    node.ovsServer.apply([{ op: 'mutate', table: OVS.iface, where: [['_uuid', '==', uuid(iface!._uuid)]], mutations: [['external_ids', 'insert', ovsMap({ 'someone-else': 'x' })]] }]);
    expect(await checkReadOnly({ ...A, prevResult: added })).toBeUndefined();
  });
});
