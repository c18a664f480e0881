// The setting shared by the seed 004 ("Kube-OVN Virtual Machine Isolation") suites: five "VMs"
// VM1..VM5 (label vm.kubevirt.io/name) at the static addresses 172.20.10.2..6 in namespace default
// on the Subnet vswitch1 (172.20.10.0/24, gateway 172.20.10.1), started as one ovnoded node for
// the whole test file, and the ICMP + TCP reachability matrix over them (ICMP also to the gateway).
//
// useFiveVms() registers the file's beforeAll (start) and afterAll (destroy, even when a test or
// the start failed); call it once, at the top level of a test file.

import YAML from 'yaml';
import { afterAll, beforeAll, expect } from 'vitest';
import { seedFixture, TestCluster, type ClusterPod } from './cluster';
import { checkMatrix, onlyColumns, uniform, type ExpectedMatrix, type Reach } from './matrix';
import { requireArtefacts } from './paths';

/** The manifest file of the Subnet vswitch1. */
export const SUBNET_FILE = 'subnet-vswitch1.yaml';
export const GATEWAY = { alias: 'GW', ip: '172.20.10.1' };
export const VMS = ['VM1', 'VM2', 'VM3', 'VM4', 'VM5'];
export const VM_IPS = ['172.20.10.2', '172.20.10.3', '172.20.10.4', '172.20.10.5', '172.20.10.6'];
/** Every VM reaches every VM and the gateway. */
export const ALL_OPEN = uniform(VMS, [...VMS, 'GW'], true);

/** The seed's Subnet vswitch1 (from the subnet ACL examples) without its ACLs: everything open. */
export function subnetWithoutAcls(): string {
  const doc = YAML.parse(seedFixture('subnet-acl-1.yaml')) as { spec: Record<string, unknown> };
  delete doc.spec.acls;
  return YAML.stringify(doc);
}

export interface FiveVms {
  /** The running cluster; throws before beforeAll started it. */
  readonly cluster: TestCluster;
  /** VM1..VM5, in that order (empty before beforeAll). */
  readonly vms: ClusterPod[];
  /** ICMP (with the gateway) and TCP over every ordered pair of VMs, printed; asserts both. */
  expectMatrix(what: string, icmp: ExpectedMatrix, tcp?: ExpectedMatrix): Promise<void>;
}

/**
 * One node named `name` with namespace default, the Subnet vswitch1 without ACLs and the five
 * VMs, started in beforeAll and destroyed in afterAll.
 */
export function useFiveVms(name: string): FiveVms {
  let cluster: TestCluster | undefined;
  let vms: ClusterPod[] = [];
  const theCluster = (): TestCluster => {
    if (!cluster) throw new Error('cluster not started');
    return cluster;
  };

  beforeAll(async () => {
    requireArtefacts();
    cluster = await TestCluster.start({ name });
    cluster.writeNamespace('default');
    cluster.writeManifest(SUBNET_FILE, subnetWithoutAcls());
    await cluster.waitApplied();
    vms = await cluster.addPods(VMS.map((vm, i) => ({
      name: vm.toLowerCase(),
      namespace: 'default',
      alias: vm,
      labels: { 'vm.kubevirt.io/name': vm },
      annotations: {
        'ovn.kubernetes.io/logical_switch': 'vswitch1',
        'ovn.kubernetes.io/ip_address': VM_IPS[i] as string,
      },
    })));
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  return {
    get cluster() { return theCluster(); },
    get vms() { return vms; },
    async expectMatrix(what, icmp, tcp = onlyColumns(icmp, VMS)) {
      const measured: Reach[] = await theCluster().reachability(vms, { icmp: true, tcp: true, extraTargets: [GATEWAY] });
      const i = checkMatrix(measured, icmp, 'icmp', 'ICMP');
      const t = checkMatrix(measured, tcp, 'tcp', 'TCP');
      console.log(`${what}\n${i.pretty}\n\n${t.pretty}`);
      expect(i.actual, `${what}, ICMP:\n${i.pretty}`).toBe(i.expected);
      expect(t.actual, `${what}, TCP:\n${t.pretty}`).toBe(t.expected);
    },
  };
}
