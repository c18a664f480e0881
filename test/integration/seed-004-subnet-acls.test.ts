// Seed 004 ("Kube-OVN Virtual Machine Isolation"), Subnet ACLs: the four published Subnet
// manifests (test/fixtures/seeds/subnet-acl-1..4.yaml), applied one after the other to the subnet
// vswitch1 (172.20.10.0/24, gateway 172.20.10.1) of five "VMs" VM1..VM5 at 172.20.10.2..6, and
// the reachability matrix each one gives, measured with real packets (ICMP and TCP, every ordered
// pair, plus ICMP to the gateway), compared with the matrix the seed's sentences describe.
//
// How the expectations are derived (Kube-OVN / OVN ACL semantics):
// - a connection A -> B is "ok" when its first packet (src A, dst B) passes the from-lport ACLs
//   (evaluated as it leaves A) and the to-lport ACLs (as it is delivered to B); of the matching
//   ACLs the highest priority decides; no match = allowed;
// - connections are stateful: the replies of an allowed connection always pass;
// - the gateway 172.20.10.1 is a router port in 172.20.10.0/30: ACLs on that range hit it too
//   ("communication to and from the gateway address is also affected"); it only answers, so it
//   is a column (ICMP), never a row.
//
// One ovnoded node (own netns, embedded OVS/OVN, --manifests DIR) for the whole file; pods are
// namespaces created here; everything is removed in afterAll, even when a test fails.

import { describe, expect, it } from 'vitest';
import { seedFixture } from './harness/cluster';
import { checkMatrix, matrix, uniform } from './harness/matrix';
import { ALL_OPEN, GATEWAY, SUBNET_FILE, subnetWithoutAcls, useFiveVms, VM_IPS, VMS } from './harness/seed-004-vms';
import {
  ACL_EXAMPLE_1 as EXAMPLE_1, ACL_EXAMPLE_2 as EXAMPLE_2, ACL_EXAMPLE_3 as EXAMPLE_3, ACL_EXAMPLE_4_TCP_FROM_9501 as EXAMPLE_4_TCP_FROM_9501,
} from './harness/seed-004-expected';

// ---------------------------------------------------------------- expected matrices, from the seed
// In harness/seed-004-expected.ts (shared with the cluster test), one per example, with why.

/**
 * Example 4: "TCP traffic originating from port 9501 and ip address 172.20.10.6 is blocked on the
 * vswitch1 subnet."
 * drop from-lport ip4.src == 172.20.10.6 && tcp.src == 9501: ICMP and TCP from any other source
 * port stay open; TCP from VM5's port 9501 reaches nobody; port 9501 of the other VMs is fine.
 */
const EXAMPLE_4_ICMP_AND_TCP = ALL_OPEN;

// ---------------------------------------------------------------- the cluster

const five = useFiveVms('acl');

/** Replaces the Subnet manifest and waits until the daemon applied it. */
async function applySubnet(yamlText: string, what: string): Promise<void> {
  const c = five.cluster;
  c.writeManifest(SUBNET_FILE, yamlText);
  const applied = await c.waitApplied();
  console.log(`${what}: applied after ${applied.ms} ms (version ${applied.version})`);
}

describe('seed 004: Subnet ACLs between five VMs on vswitch1 (real OVS/OVN userspace datapath)', () => {
  it('places VM1..VM5 at their static addresses in vswitch1; without ACLs everything is open, the gateway included', async () => {
    expect(five.vms.map((p) => p.ip)).toEqual(VM_IPS);
    for (const vm of five.vms) {
      const routes = five.cluster.netns.exec(vm.ns, ['ip', '-4', 'route', 'show', 'default']).stdout;
      expect(routes, `${vm.alias} default route`).toContain(`via ${GATEWAY.ip}`);
    }
    await five.expectMatrix('vswitch1 without ACLs', ALL_OPEN);
  });

  it('example 1: everything but 172.20.10.0/30 (VM1, VM2 and the gateway) communicates', async () => {
    await applySubnet(seedFixture('subnet-acl-1.yaml'), 'subnet ACL example 1');
    await five.expectMatrix('subnet ACL example 1', EXAMPLE_1);
  });

  it('example 2: the priority-1006 allows let VM1 (.2) through; VM2 (.3) and the gateway stay cut off', async () => {
    await applySubnet(seedFixture('subnet-acl-2.yaml'), 'subnet ACL example 2');
    await five.expectMatrix('subnet ACL example 2', EXAMPLE_2);
  });

  it('example 3: VM1 (.2) starts connections to everyone, nobody starts one to VM1', async () => {
    await applySubnet(seedFixture('subnet-acl-3.yaml'), 'subnet ACL example 3');
    await five.expectMatrix('subnet ACL example 3', EXAMPLE_3);
  });

  it('example 4: TCP from 172.20.10.6 source port 9501 is dropped; other source ports, other VMs and ICMP are not', async () => {
    await applySubnet(seedFixture('subnet-acl-4.yaml'), 'subnet ACL example 4');
    await five.expectMatrix('subnet ACL example 4 (any source port)', EXAMPLE_4_ICMP_AND_TCP);

    const c = five.cluster;
    const from9501 = await c.reachability(five.vms, { tcpSrcPort: 9501 });
    const blocked = checkMatrix(from9501, EXAMPLE_4_TCP_FROM_9501, 'tcp', 'TCP:9501');
    console.log(`subnet ACL example 4, TCP from source port 9501\n${blocked.pretty}`);
    expect(blocked.actual, blocked.pretty).toBe(blocked.expected);

    const from9502 = await c.reachability(five.vms, { tcpSrcPort: 9502 });
    const open = checkMatrix(from9502, uniform(VMS, VMS, true), 'tcp', 'TCP:9502');
    console.log(`subnet ACL example 4, TCP from source port 9502\n${open.pretty}`);
    expect(open.actual, open.pretty).toBe(open.expected);
  });

  it('replacing the Subnet with one without ACLs opens everything again', async () => {
    await applySubnet(subnetWithoutAcls(), 'vswitch1 without ACLs again');
    await five.expectMatrix('vswitch1 without ACLs again', ALL_OPEN);
  });
});
