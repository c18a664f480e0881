// The request path's view of the cluster: the pod an ADD is for, from the watch (never an API
// call), and the write-back of what the ADD allocated, queued off the request path.

import { TryAgainLaterError } from '../../common/errors';
import type { ClusterHooks } from '../context';
import type { SubnetPool } from '../ipam/pool';
import type { PodObj } from '../objects/types';
import type { Attachment } from '../store/attachment';
import { podNetworkAnnotations, type PodAnnotationWriter } from './pod-annotations';

/** The watched pods, as the hooks need them. */
export interface PodLookup {
  pod(namespace: string, name: string): PodObj | undefined;
  /**
   * Resolves with the pod once a watch event makes `accept` true for it (at once if it already
   * is), or undefined after `timeoutMs` or when `signal` aborts.
   */
  waitFor(namespace: string, name: string, accept: (pod: PodObj) => boolean, timeoutMs: number, signal: AbortSignal): Promise<PodObj | undefined>;
}

/** OVN-Kubernetes waits up to a second for a pod its informer has not delivered yet. */
export const POD_WAIT_MS = 1_000;

export class KubeClusterHooks implements ClusterHooks {
  constructor(
    private readonly pods: PodLookup,
    private readonly writer: PodAnnotationWriter,
    private readonly waitMs = POD_WAIT_MS,
    private readonly vmOptions: (pod: PodObj | undefined) => Record<string, string> = () => ({}),
  ) {}

  vmPortOptions(pod: PodObj | undefined): Record<string, string> { return this.vmOptions(pod); }

  async podFor(namespace: string, name: string, uid: string | undefined, signal: AbortSignal): Promise<PodObj> {
    // An earlier pod of the same name may still be in the cache: the runtime's uid decides.
    const accept = (p: PodObj): boolean => uid === undefined || p.metadata.uid === undefined || p.metadata.uid === uid;
    const pod = await this.pods.waitFor(namespace, name, accept, this.waitMs, signal);
    if (pod) return pod;
    const seen = this.pods.pod(namespace, name);
    throw new TryAgainLaterError(
      seen ? `pod ${namespace}/${name} with uid ${uid ?? '?'} is not in the API yet (the watch has uid ${seen.metadata.uid ?? '?'})`
        : `pod ${namespace}/${name} is not in the API yet`,
      { details: `waited ${this.waitMs} ms for the pod watch` },
    );
  }

  attached(a: Attachment, network: { cidrs: string[]; gateways: string[] }): void {
    if (!a.podName || !a.podNamespace) return;
    // ovn.kubernetes.io/* are the cluster network's; a secondary network's are provider-prefixed.
    // An extra interface without a provider (a plain conflist) has no annotations of its own.
    if (a.provider === undefined && a.ifName !== 'eth0') return;
    const ref = a.podUid ? { namespace: a.podNamespace, name: a.podName, uid: a.podUid } : { namespace: a.podNamespace, name: a.podName };
    const net = { ips: a.ips, mac: a.mac, cidrs: network.cidrs, gateways: network.gateways, logicalSwitch: a.logicalSwitch };
    this.writer.write(ref, podNetworkAnnotations(a.provider === undefined ? net : { ...net, provider: a.provider }), a.provider);
  }
}

/** The subnet CIDR and gateway of each address (same order), as the annotations carry them. */
export function poolNetwork(pool: SubnetPool, ips: readonly string[]): { cidrs: string[]; gateways: string[] } {
  return {
    cidrs: ips.map((ip) => pool.cidr(ip.includes(':') ? 6 : 4)?.text ?? ''),
    gateways: ips.map((ip) => pool.gateway(ip.includes(':') ? 6 : 4) ?? ''),
  };
}
