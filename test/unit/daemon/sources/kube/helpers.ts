// Shared by the kube client tests: an example projection (the lead's real one maps to the daemon's
// typed objects), pod builders and a seeded random source.

import type { KubeRawObject } from '../../../../../daemon/sources/kube/reflector';
import { seededRandom } from '../../../../support/seeded-random';

/** An example of what a daemon keeps of a pod: a handful of fields, never the raw object. */
export interface SlimPod {
  namespace: string;
  name: string;
  uid: string;
  resourceVersion: string;
  labels: Record<string, string>;
  nodeName: string | undefined;
  podIP: string | undefined;
}

export function slimPod(raw: KubeRawObject): SlimPod {
  const m = raw.metadata ?? {};
  const spec = (raw.spec ?? {}) as { nodeName?: string };
  const status = (raw.status ?? {}) as { podIP?: string };
  return {
    namespace: m.namespace ?? '',
    name: m.name ?? '',
    uid: m.uid ?? '',
    resourceVersion: m.resourceVersion ?? '',
    labels: { ...((m.labels as Record<string, string> | undefined) ?? {}) },
    nodeName: spec.nodeName,
    podIP: status.podIP,
  };
}

export function pod(name: string, opts: { namespace?: string; labels?: Record<string, string>; nodeName?: string } = {}): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: opts.namespace ?? 'default', labels: opts.labels ?? { app: name } },
    spec: { nodeName: opts.nodeName ?? 'node-1', containers: [{ name: 'c', image: 'busybox' }] },
  };
}

/** mulberry32: small, fast, good enough to drive a randomized test reproducibly from its seed. */
export const seeded = seededRandom;

/** Resolves on the next turn of the event loop after pending I/O callbacks. */
export function tick(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
