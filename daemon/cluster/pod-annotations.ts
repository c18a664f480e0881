// What a node writes back on its pods: Kube-OVN's annotations, so tools and users that read them
// keep working. Written after the ADD has answered (never on its critical path) as one merge
// patch per pod, skipped when the pod already carries exactly these values.

import type { Logger } from 'pino';
import type { KubeApi } from '../sources/kube/api';
import { RetryQueue } from './retry-queue';

import { ANNOTATION } from '../policy/port-settings';
import { PRIMARY_PROVIDER } from '../intent/provider';

export const POD_ANNOTATION = {
  ipAddress: ANNOTATION.ipAddress,
  macAddress: ANNOTATION.macAddress,
  cidr: 'ovn.kubernetes.io/cidr',
  gateway: 'ovn.kubernetes.io/gateway',
  logicalSwitch: ANNOTATION.logicalSwitch,
  allocated: ANNOTATION.allocated,
} as const;

/** One pod interface's network as the daemon allocated it. */
export interface PodNetwork {
  ips: string[];
  mac: string;
  cidrs: string[];
  gateways: string[];
  logicalSwitch: string;
  /** A secondary network's provider: its annotations are `<provider>.kubernetes.io/*`. */
  provider?: string;
}

/** Kube-OVN's form: dual-stack values are comma-separated, IPv4 first. */
export function podNetworkAnnotations(n: PodNetwork): Record<string, string> {
  const v4First = (xs: string[]): string[] => [...xs.filter((x) => !x.includes(':')), ...xs.filter((x) => x.includes(':'))];
  const key = (k: string): string => `${n.provider ?? PRIMARY_PROVIDER}.kubernetes.io/${k}`;
  return {
    [key('ip_address')]: v4First(n.ips).join(','),
    [key('mac_address')]: n.mac,
    [key('cidr')]: v4First(n.cidrs).join(','),
    [key('gateway')]: v4First(n.gateways).join(','),
    [key('logical_switch')]: n.logicalSwitch,
    [key('allocated')]: 'true',
  };
}

export interface PodRef { namespace: string; name: string; uid?: string }

export class PodAnnotationWriter {
  private readonly queue: RetryQueue;

  constructor(
    private readonly api: KubeApi,
    /** The pod's annotations as the watch last saw them; undefined when the pod is not known. */
    private readonly current: (namespace: string, name: string) => Readonly<Record<string, string>> | undefined,
    log: Logger,
  ) {
    this.queue = new RetryQueue('pod-annotations', log);
  }

  /**
   * Queues the write; a newer one for the same pod and `part` (one of its interfaces) replaces
   * it, the other interfaces' writes stay queued.
   */
  write(pod: PodRef, annotations: Record<string, string>, part = PRIMARY_PROVIDER): void {
    this.queue.enqueue(`${pod.namespace}/${pod.name}/${part}`, async () => {
      const have = this.current(pod.namespace, pod.name);
      if (have && Object.entries(annotations).every(([k, v]) => have[k] === v)) return true;
      const res = await this.api.request({
        method: 'PATCH',
        path: `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/pods/${encodeURIComponent(pod.name)}`,
        contentType: 'application/merge-patch+json',
        // With the uid the patch cannot land on a newer pod of the same name.
        body: { metadata: { annotations, ...(pod.uid ? { uid: pod.uid } : {}) } },
      });
      // Gone, or replaced by a pod of the same name: nothing left to annotate.
      // (A uid mismatch is refused as a conflict or as an immutable-field change, by version.)
      if (res.status === 404 || res.status === 409 || res.status === 422) return true;
      if (res.status < 200 || res.status > 299) throw new Error(`PATCH pod ${pod.namespace}/${pod.name}: HTTP ${res.status}`);
      return true;
    });
  }

  idle(): Promise<void> { return this.queue.idle(); }
  close(): void { this.queue.close(); }
}
