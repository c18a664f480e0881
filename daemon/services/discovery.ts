// Which EndpointSlice API to watch: discovery.k8s.io/v1 where the server serves it (Kubernetes
// 1.21 and later), else v1beta1 (1.17 to 1.24; the lab's 1.20 serves only v1beta1). Decided once
// at start from the API group document, GET /apis/discovery.k8s.io (an APIGroup listing its
// versions), as client-go's discovery does, rather than by trying a list and reading a 404.

import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeApi } from '../sources/kube/api';
import { Backoff, type BackoffOptions } from '../sources/kube/backoff';

export type EndpointSliceVersion = 'v1' | 'v1beta1';

export const DISCOVERY_GROUP_PATH = '/apis/discovery.k8s.io';

export function endpointSlicesPath(version: EndpointSliceVersion): string {
  return `${DISCOVERY_GROUP_PATH}/${version}/endpointslices`;
}

/** The version to use from an APIGroup document, or undefined when it lists neither. */
export function pickEndpointSliceVersion(group: unknown): EndpointSliceVersion | undefined {
  const versions = (group as { versions?: unknown } | null)?.versions;
  const served = new Set(Array.isArray(versions) ? versions.map((v) => (v as { version?: unknown } | null)?.version) : []);
  if (served.has('v1')) return 'v1';
  if (served.has('v1beta1')) return 'v1beta1';
  return undefined;
}

/** The server cannot give EndpointSlices: retrying will not help. */
export class EndpointSliceDiscoveryError extends Error {}

export interface DiscoveryOptions {
  signal?: AbortSignal;
  backoff?: BackoffOptions;
  /** Told about each failed attempt that will be retried. */
  onRetry?: (err: Error, delayMs: number) => void;
}

/**
 * Asks the server which EndpointSlice version it serves. Retries while the server is unreachable
 * or failing (5xx, 429); a server that does not serve the group or refuses the request is a
 * configuration problem and fails at once.
 */
export async function endpointSliceVersion(api: KubeApi, opts: DiscoveryOptions = {}): Promise<EndpointSliceVersion> {
  const backoff = new Backoff(opts.backoff);
  for (;;) {
    opts.signal?.throwIfAborted();
    let failure: Error;
    try {
      const res = await api.request({ method: 'GET', path: DISCOVERY_GROUP_PATH, ...(opts.signal ? { signal: opts.signal } : {}) });
      if (res.status === 200) {
        const version = pickEndpointSliceVersion(res.body);
        if (version) return version;
        throw new EndpointSliceDiscoveryError(`${DISCOVERY_GROUP_PATH} lists neither v1 nor v1beta1: ${JSON.stringify(res.body).slice(0, 200)}`);
      }
      if (res.status === 404) throw new EndpointSliceDiscoveryError(`the API server does not serve ${DISCOVERY_GROUP_PATH}: EndpointSlices need Kubernetes 1.17 or later`);
      if (res.status === 401 || res.status === 403) throw new EndpointSliceDiscoveryError(`GET ${DISCOVERY_GROUP_PATH}: HTTP ${res.status}`);
      failure = new Error(`GET ${DISCOVERY_GROUP_PATH}: HTTP ${res.status}`);
    } catch (e) {
      if (opts.signal?.aborted || e instanceof EndpointSliceDiscoveryError) throw e;
      failure = e instanceof Error ? e : new Error(String(e));
    }
    const delayMs = backoff.next();
    opts.onRetry?.(failure, delayMs);
    try {
      await sleep(delayMs, undefined, opts.signal ? { signal: opts.signal } : undefined);
    } catch (e) {
      // The caller's reason, not the timer's AbortError.
      opts.signal?.throwIfAborted();
      throw e;
    }
  }
}
