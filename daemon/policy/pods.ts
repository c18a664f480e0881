// The pods the engine acts on: ports ovnode created in the NB (pod name/namespace in their
// external_ids), joined with the Pod and Namespace objects of the store for labels and
// annotations. A port whose Pod object is unknown still counts, with no labels.

import type { ObjectStore, PodObj } from '../objects/types';
import { ANNOTATION } from './port-settings';
import type { OvsdbClient } from '../ovsdb/client';
import { nbAttachments } from '../store/lookup';
import { portBaseName, vmAddressPod, vmOf, VmPodIndex } from '../cluster/kubevirt';

export interface PodPort {
  lspName: string;
  name: string;
  namespace: string;
  logicalSwitch: string;
  mac: string;
  ips: string[];
  labels: Record<string, string>;
  namespaceLabels: Record<string, string>;
  pod?: PodObj;
}

export function namespaceLabels(store: ObjectStore, ns: string): Record<string, string> {
  // Kubernetes sets this label on every namespace; policies select namespaces by it.
  return { ...(store.get('Namespace', ns)?.metadata.labels ?? {}), 'kubernetes.io/metadata.name': ns };
}

export function podPorts(nb: OvsdbClient, store: ObjectStore): PodPort[] {
  const out: PodPort[] = [];
  for (const a of nbAttachments(nb)) {
    if (!a.podName || !a.podNamespace) continue;
    const pod = store.get('Pod', a.podName, a.podNamespace);
    const port: PodPort = {
      lspName: a.lspName, name: a.podName, namespace: a.podNamespace, logicalSwitch: a.logicalSwitch,
      mac: a.mac, ips: a.ips, labels: pod?.metadata.labels ?? {}, namespaceLabels: namespaceLabels(store, a.podNamespace),
    };
    if (pod) port.pod = pod;
    out.push(port);
  }
  return out.sort((x, y) => x.lspName.localeCompare(y.lspName));
}

/**
 * Pods of other nodes, as policy peers: their addresses come from the annotations their node
 * wrote back (`allocated=true`), so a selector that picks them admits them wherever they run.
 * Their lspName is the remote port this zone holds for them (cluster/remote-ports.ts): security
 * groups list it in their port groups, so northd's per-group address sets carry every member's
 * addresses cluster-wide (ACLs on remote ports never run here: their pipelines run on their node).
 */
export function remotePodPorts(store: ObjectStore, nodeName: string): PodPort[] {
  const out: PodPort[] = [];
  // One label map per namespace, shared by its pods: thousands of peers, a few dozen namespaces.
  const nsLabels = new Map<string, Record<string, string>>();
  const labelsOf = (ns: string): Record<string, string> => {
    let l = nsLabels.get(ns);
    if (!l) nsLabels.set(ns, (l = namespaceLabels(store, ns)));
    return l;
  };
  // A VM's pods (a live migration's source and target) share one port: it is listed once, with
  // the addresses the VM uses.
  let vms: VmPodIndex | undefined;
  for (const pod of store.list('Pod')) {
    const ips = recordedIps(pod);
    if (!ips || pod.spec.nodeName === nodeName) continue;
    const vm = vmOf(pod);
    if (vm && vmAddressPod((vms ??= new VmPodIndex(store.list('Pod'))).pods(vm), (p) => recordedIps(p) !== undefined) !== pod) continue;
    const ann = pod.metadata.annotations;
    const ns = pod.metadata.namespace;
    const lspName = `${portBaseName(pod)}.${ns}`;
    out.push({
      lspName, name: pod.metadata.name, namespace: ns, logicalSwitch: ann[ANNOTATION.logicalSwitch] ?? '',
      mac: ann[ANNOTATION.macAddress] ?? '', ips, labels: pod.metadata.labels, namespaceLabels: labelsOf(ns), pod,
    });
  }
  return out;
}

/**
 * The addresses a node wrote back for a pod that holds them now (bound to a node, not host
 * network, not finished, `allocated=true`); undefined for any other pod.
 */
export function recordedIps(pod: PodObj): string[] | undefined {
  const ann = pod.metadata.annotations;
  if (!pod.spec.nodeName || pod.spec.hostNetwork || pod.status?.finished || ann[ANNOTATION.allocated] !== 'true') return undefined;
  const ips = (ann[ANNOTATION.ipAddress] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return ips.length > 0 ? ips : undefined;
}

export const v4 = (ips: string[]): string[] => ips.filter((i) => !i.includes(':'));
export const v6 = (ips: string[]): string[] => ips.filter((i) => i.includes(':'));
