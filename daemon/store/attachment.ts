// What one CNI attachment (sandbox + interface) is made of, as the daemon records it.

import type { VfCheckpoint } from '../sriov/vf-checkpoint';

export interface Attachment {
  sandbox: string;
  ifName: string;
  netns: string;
  /** CNI network name (netconf "name"), so GC only touches its own network. */
  network: string;
  /** Logical_Switch_Port name; also the OVS Interface's external_ids:iface-id. */
  lspName: string;
  logicalSwitch: string;
  /** Host-side veth name, which is the OVS port name. */
  hostIfName: string;
  mac: string;
  /** Plain addresses (no prefix), IPv4 first. */
  ips: string[];
  podName?: string;
  podNamespace?: string;
  podUid?: string;
  /** A secondary network's provider as named on the pod (intent/provider.ts); none for the cluster network. */
  provider?: string;
  /** An SR-IOV VF's checkpoint (hostIfName is then its representor): OVS side only. */
  vf?: VfCheckpoint;
}

/** Key of an attachment: the CNI spec identifies one by container id + interface name. */
export function attachmentKey(sandbox: string, ifName: string): string {
  return `${sandbox}/${ifName}`;
}
