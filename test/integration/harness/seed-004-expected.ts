// Seed 004's expected reachability, one matrix per published example, shared by the embedded
// tests (test/integration/seed-004-*.test.ts) and the cluster ones (test/cluster/seed-004.test.ts):
// the same five VMs (.2-.6 of 172.20.10.0/24) and the gateway, whatever runs them. Each comment
// quotes the seed and says why the matrix follows from the rules. Rows start the connection,
// columns are where it goes ("ok" = it succeeds; "-" = not measured).

import { matrix } from './matrix';

// ---------------------------------------------------------------- NetworkPolicy examples 1-4

/**
 * Example 1: "VM1 and VM2 are allowed to communicate with each other because their addresses are
 * within the subnet 172.20.10.0/30. All other traffic in the default namespace, including traffic
 * to and from VM3, VM4, and VM5, is blocked."
 * Every pod isolated both ways, ingress from and egress to 172.20.10.0/30 only (the gateway .1 is
 * in it: egress to it is admitted).
 */
export const NP_EXAMPLE_1 = matrix(`
        VM1 VM2 VM3 VM4 VM5 GW
  VM1    -  ok  no  no  no  ok
  VM2   ok   -  no  no  no  ok
  VM3   no  no   -  no  no  ok
  VM4   no  no  no   -  no  ok
  VM5   no  no  no  no   -  ok
`);

/**
 * Example 2: "VM1 and VM2 are allowed to communicate with each other and with other virtual
 * machines in the subnet 172.20.10.0/24. However, other virtual machines in that subnet cannot
 * communicate with VM1, VM2, and each other. This is because the ingress policy only allows
 * traffic originating from 172.20.10.0/30."
 * Every pod ingress-isolated (from 172.20.10.0/30 only); egress open (gateway reachable).
 */
export const NP_EXAMPLE_2 = matrix(`
        VM1 VM2 VM3 VM4 VM5 GW
  VM1    -  ok  ok  ok  ok  ok
  VM2   ok   -  ok  ok  ok  ok
  VM3   no  no   -  no  no  ok
  VM4   no  no  no   -  no  ok
  VM5   no  no  no  no   -  ok
`);

/**
 * Example 3 (with `Egress`): "VM1 and VM2 are allowed to communicate with each other, but not with
 * other virtual machines in the subnet 172.20.10.0/24. The other virtual machines in the same
 * subnet can communicate with VM1 and VM2. This is because the egress policy allows traffic to be
 * sent to 172.20.10.0/30."
 * Every pod egress-isolated (to 172.20.10.0/30 only: VM1, VM2, gateway); ingress open.
 */
export const NP_EXAMPLE_3 = matrix(`
        VM1 VM2 VM3 VM4 VM5 GW
  VM1    -  ok  no  no  no  ok
  VM2   ok   -  no  no  no  ok
  VM3   ok  ok   -  no  no  ok
  VM4   ok  ok  no   -  no  ok
  VM5   ok  ok  no  no   -  ok
`);

/**
 * Example 4: "VM2 is allowed to communicate with VM1, but not with other virtual machines in the
 * subnet 172.20.10.0/24. This is because a pod selector label is applied to VM2. All other virtual
 * machines in the same subnet can communicate with VM1 and each other."
 * Only VM2 (label vm.kubevirt.io/name: VM2) isolated, both ways, to/from 172.20.10.0/30.
 */
export const NP_EXAMPLE_4 = matrix(`
        VM1 VM2 VM3 VM4 VM5 GW
  VM1    -  ok  ok  ok  ok  ok
  VM2   ok   -  no  no  no  ok
  VM3   ok  no   -  ok  ok  ok
  VM4   ok  no  ok   -  ok  ok
  VM5   ok  no  ok  ok   -  ok
`);

// ---------------------------------------------------------------- Subnet ACL examples 1-4

/**
 * Example 1: "All virtual machines within the 172.20.10.0/24 subnet, except those with the
 * addresses 172.20.10.2 and 172.20.10.3 in the subnet range 172.20.10.0/30, are allowed to
 * communicate with each other. [...] However, communication to and from the gateway address is
 * also affected."
 * drop to-lport ip4.dst == 172.20.10.0/30; drop from-lport ip4.src == 172.20.10.0/30 (both 1005):
 * VM1/VM2 can start nothing, nobody reaches VM1/VM2/GW.
 */
export const ACL_EXAMPLE_1 = matrix(`
        VM1 VM2 VM3 VM4 VM5 GW
  VM1    -  no  no  no  no  no
  VM2   no   -  no  no  no  no
  VM3   no  no   -  ok  ok  no
  VM4   no  no  ok   -  ok  no
  VM5   no  no  ok  ok   -  no
`);

/**
 * Example 2: "All virtual machines within the 172.20.10.0/24 subnet, except those with the address
 * 172.20.10.3, are allowed to communicate with each other. Virtual machines with the address
 * 172.20.10.2 are allowed to communicate because ACL rule execution is based on priority. For
 * this subnet, rules with a priority value of 1006 are executed before 1005. [...] communication
 * to and from the gateway address is also affected."
 * allow to/from 172.20.10.2 (1006) beats the /30 drops (1005): VM1 talks to VM3..5 both ways;
 * VM2 (.3) and the gateway (.1) stay dropped, also for VM1.
 */
export const ACL_EXAMPLE_2 = matrix(`
        VM1 VM2 VM3 VM4 VM5 GW
  VM1    -  no  ok  ok  ok  no
  VM2   no   -  no  no  no  no
  VM3   ok  no   -  ok  ok  no
  VM4   ok  no  ok   -  ok  no
  VM5   ok  no  ok  ok   -  no
`);

/**
 * Example 3: "Virtual machines with the address 172.20.10.2 are allowed to communicate with other
 * virtual machines. However, traffic in the opposite direction is blocked. No virtual machines
 * are allowed to communicate with 172.20.10.2."
 * drop to-lport ip4.dst == 172.20.10.2 only: nothing can start a connection to VM1; VM1's own
 * connections work (their replies to .2 are replies). The gateway is not affected.
 */
export const ACL_EXAMPLE_3 = matrix(`
        VM1 VM2 VM3 VM4 VM5 GW
  VM1    -  ok  ok  ok  ok  ok
  VM2   no   -  ok  ok  ok  ok
  VM3   no  ok   -  ok  ok  ok
  VM4   no  ok  ok   -  ok  ok
  VM5   no  ok  ok  ok   -  ok
`);

export const ACL_EXAMPLE_4_TCP_FROM_9501 = matrix(`
        VM1 VM2 VM3 VM4 VM5
  VM1    -  ok  ok  ok  ok
  VM2   ok   -  ok  ok  ok
  VM3   ok  ok   -  ok  ok
  VM4   ok  ok  ok   -  ok
  VM5   no  no  no  no   -
`);
