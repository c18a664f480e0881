// Ports prepared before their ADD, on a fake node (real NB schema in a FakeOvsdbServer, real
// OvsdbClient, real subnet registry and cmdAdd, fake ovn-controller): a pod scheduled here gets
// its port at once (addresses held by the port's plain name, its key, port security), the ADD
// takes that port over (same addresses and MAC, one row with the sandbox, nothing left under the
// plain name), pods not to be prepared get nothing, a pod that goes takes its port and addresses
// with it, an ADD that fails leaves the port prepared again, and a restart finds stale ones.
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PreparedPorts, preparable } from '../../../../daemon/cluster/prepared-ports';
import type { PodObj } from '../../../../daemon/objects/types';
import { NB } from '../../../../daemon/ovs/schema';
import { asMap } from '../../../../daemon/ovsdb/values';
import { ANNOTATION, portSecurityLine } from '../../../../daemon/policy/port-settings';
import { FakeNode } from '../cmd/fake-node';

let node: FakeNode;
let prepared: PreparedPorts;

function start(): PreparedPorts {
  const p = new PreparedPorts({
    nb: node.nb, store: node.store, subnets: node.subnets, nodeName: 'n1', log: pino({ enabled: false }),
    switchFor: (pod, ns) => node.policy.switchFor(pod, ns),
    portSecurity: (pod, mac, ips) => portSecurityLine(node.store, pod, mac, ips),
  });
  p.start();
  node.deps.prepared = p;
  return p;
}

beforeEach(async () => {
  node = await FakeNode.start();
  prepared = start();
});
afterEach(async () => {
  prepared.stop();
  await node.close();
});

function pod(name: string, over: { node?: string; annotations?: Record<string, string>; hostNetwork?: boolean; finished?: boolean; deleting?: boolean } = {}): PodObj {
  const p: PodObj = {
    kind: 'Pod',
    metadata: { name, namespace: 'ns1', uid: `uid-${name}`, labels: {}, annotations: over.annotations ?? {} },
    spec: { containers: [{ name: 'c', ports: [] }], nodeName: over.node ?? 'n1' },
  };
  if (over.hostNetwork) p.spec.hostNetwork = true;
  if (over.finished || over.deleting) p.status = { ...(over.finished ? { finished: true } : {}), ...(over.deleting ? { deleting: true } : {}) };
  return p;
}

/** Settles the preparer and the NB monitor. */
async function settled(): Promise<void> {
  await prepared.idle();
  await node.settle();
}

const row = (name: string) => node.nbServer.rows(NB.lsp).find((r) => r.name === name);

describe('preparable', () => {
  it('is this node\'s pods only, not host-network, not done or going, with nothing static to honour', () => {
    expect(preparable(pod('a'), 'n1')).toBe(true);
    expect(preparable(pod('a', { node: 'n2' }), 'n1')).toBe(false);
    expect(preparable(pod('a', { hostNetwork: true }), 'n1')).toBe(false);
    expect(preparable(pod('a', { finished: true }), 'n1')).toBe(false);
    expect(preparable(pod('a', { deleting: true }), 'n1')).toBe(false);
    expect(preparable(pod('a', { annotations: { [ANNOTATION.ipAddress]: '10.16.0.9' } }), 'n1')).toBe(false);
    expect(preparable(pod('a', { annotations: { [ANNOTATION.macAddress]: '0a:00:00:00:00:01' } }), 'n1')).toBe(false);
    expect(preparable(pod('a', { annotations: { [ANNOTATION.allocated]: 'true' } }), 'n1')).toBe(false);
  });
});

describe('prepared ports (fake node)', () => {
  it('writes a scheduled pod\'s port at once: marked, no sandbox, addresses held by the port name, key and port security', async () => {
    node.store.apply(pod('web'));
    node.store.apply(pod('elsewhere', { node: 'n2' }));
    node.store.apply(pod('host', { hostNetwork: true }));
    node.store.apply(pod('static', { annotations: { [ANNOTATION.ipAddress]: '10.16.0.50' } }));
    await settled();
    expect(node.podLsps()).toEqual(['web.ns1 undefined']);
    const r = row('web.ns1');
    const ids = asMap(r?.external_ids);
    expect(ids).toMatchObject({ 'ovnode:owner': 'ovnode', 'ovnode:prepared': 'true', pod_name: 'web', pod_namespace: 'ns1', 'ovnode:logical_switch': 'ovn-default', 'iface-id-ver': 'uid-web' });
    expect(ids.sandbox).toBeUndefined();
    expect(r?.addresses).toEqual(['0a:58:0a:10:00:02 10.16.0.2']);
    expect(r?.port_security).toEqual(['0a:58:0a:10:00:02 10.16.0.2']);
    expect(asMap(r?.options)['requested-tnl-key']).toBe('2');
    expect(node.state().held).toContain('10.16.0.2=web.ns1');
    expect(prepared.prepared).toBe(1);
  });

  it('the ADD takes the prepared port over: same address and MAC, one row with its sandbox, nothing left under the plain name', async () => {
    node.store.apply(pod('web'));
    await settled();
    node.store.apply(pod('other'));
    await settled();
    const result = await node.add({ sandbox: 'sb-web', pod: 'web', namespace: 'ns1' });
    await settled();
    expect(result.ips?.[0]?.address).toBe('10.16.0.2/16');
    expect(node.podLsps()).toEqual(['other.ns1 undefined', 'web.ns1 sb-web']);
    expect(asMap(row('web.ns1')?.external_ids)['ovnode:prepared']).toBeUndefined();
    const held = node.state().held.filter((h) => h.includes('web.ns1'));
    expect(held).toEqual(['10.16.0.2=web.ns1|sb-web']);
    // The write-back a real node does marks the pod allocated: nothing is prepared again.
    node.store.apply(pod('web', { annotations: { [ANNOTATION.allocated]: 'true', [ANNOTATION.ipAddress]: '10.16.0.2' } }));
    await settled();
    expect(node.podLsps()).toEqual(['other.ns1 undefined', 'web.ns1 sb-web']);
  });

  it('a pod that goes, finishes or moves takes its prepared port and addresses with it', async () => {
    for (const n of ['a', 'b', 'c']) node.store.apply(pod(n));
    await settled();
    expect(node.podLsps()).toEqual(['a.ns1 undefined', 'b.ns1 undefined', 'c.ns1 undefined']);
    node.store.remove('Pod', 'a', 'ns1');
    node.store.apply(pod('b', { finished: true }));
    node.store.apply(pod('c', { node: 'n2' }));
    await settled();
    expect(node.podLsps()).toEqual([]);
    expect(node.state().held.filter((h) => h.includes('.ns1'))).toEqual([]);
    expect(prepared.removed).toBe(3);
  });

  it('an ADD that fails after replacing the port leaves the pod prepared again, with nothing leaked', async () => {
    node.store.apply(pod('web'));
    await settled();
    const call = { sandbox: 'sb-web', pod: 'web', namespace: 'ns1' };
    node.controller.hang.add(node.portOf(call));
    expect(await node.addFails({ ...call, signal: node.deadlineAtWait() })).toBeInstanceOf(Error);
    await settled();
    expect(node.podLsps()).toEqual(['web.ns1 undefined']);
    expect(node.state().held.filter((h) => h.includes('web.ns1'))).toEqual(['10.16.0.2=web.ns1']);
    expect(node.podPorts()).toEqual([]);
  });

  it('an ADD arriving while the port is being prepared waits for it and then takes it over', async () => {
    node.store.apply(pod('web'));
    // No settling: the preparation is in flight when the ADD begins.
    const result = await node.add({ sandbox: 'sb-web', pod: 'web', namespace: 'ns1' });
    await settled();
    expect(result.ips?.[0]?.address).toBe('10.16.0.2/16');
    expect(node.podLsps()).toEqual(['web.ns1 sb-web']);
    expect(node.state().held.filter((h) => h.includes('web.ns1'))).toEqual(['10.16.0.2=web.ns1|sb-web']);
  });

  it('on start, a prepared port whose pod is gone is removed and its addresses freed; one whose pod waits is kept', async () => {
    node.store.apply(pod('keep'));
    node.store.apply(pod('gone'));
    await settled();
    prepared.stop();
    node.store.remove('Pod', 'gone', 'ns1');
    await node.settle();
    // A restart: the registry holds the addresses again from the NB, a new preparer looks.
    prepared = start();
    await settled();
    expect(node.podLsps()).toEqual(['keep.ns1 undefined']);
    expect(node.state().held.filter((h) => h.includes('.ns1')).sort()).toEqual(['10.16.0.2=keep.ns1']);
  });
});
