// The whole desired state from the object store and the pods known in the NB.

import type { ObjectStore } from '../objects/types';
import type { DesiredPort, DesiredQos, DesiredState } from './model';
import { translateNetworkPolicies, type PolicyTranslations } from './network-policy';
import { podQos, portSecurityLine } from './port-settings';
import type { PeerIndex } from './peer-index';
import type { PodPort } from './pods';
import { translateSecurityGroups } from './security-groups';
import { translateSubnets, type SubnetContext } from './subnets';

export interface DesiredInput {
  store: ObjectStore;
  pods: PodPort[];
  /** Other nodes' pods (policy peers only). */
  remotePods?: PodPort[];
  builtin: SubnetContext['builtin'];
  joinCidrs: readonly string[];
  nodeIps: string[];
  /** The engine's, kept across runs (see peer-index.ts and network-policy.ts). */
  peerIndex?: PeerIndex;
  translations?: PolicyTranslations;
}

export function computeDesired(input: DesiredInput): DesiredState {
  const { store, pods } = input;
  const qosBySwitch = new Map<string, DesiredQos[]>();
  const ports: DesiredPort[] = [];
  for (const p of pods) {
    const qos = podQos(p.pod, p.lspName);
    if (qos.length > 0) qosBySwitch.set(p.logicalSwitch, [...(qosBySwitch.get(p.logicalSwitch) ?? []), ...qos]);
    ports.push({ lspName: p.lspName, portSecurity: portSecurityLine(store, p.pod, p.mac, p.ips) });
  }
  const switches = translateSubnets({ store, builtin: input.builtin, joinCidrs: input.joinCidrs, qosBySwitch });
  const families: Array<4 | 6> = pods.some((p) => p.ips.some((ip) => ip.includes(':'))) ? [4, 6] : [4];
  const np = translateNetworkPolicies({ store, pods, peers: [...pods, ...(input.remotePods ?? [])], nodeIps: input.nodeIps, families, ...(input.peerIndex ? { peerIndex: input.peerIndex } : {}), ...(input.translations ? { translations: input.translations } : {}) });
  // Remote members too: their remote ports put their addresses in the groups' address sets.
  const sg = translateSecurityGroups(store, [...pods, ...(input.remotePods ?? [])]);
  return {
    switches,
    portGroups: [...np.portGroups, ...sg.portGroups],
    addressSets: [...np.addressSets, ...sg.addressSets],
    ports,
  };
}
