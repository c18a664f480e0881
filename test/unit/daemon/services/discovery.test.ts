// EndpointSlice version discovery: one GET of the discovery.k8s.io APIGroup, v1 preferred,
// v1beta1 on servers that serve only it (Kubernetes 1.20), retried while the server fails.
import { describe, expect, it, vi } from 'vitest';
import type { KubeApi, KubeRequest, KubeResponse } from '../../../../daemon/sources/kube/api';
import {
  DISCOVERY_GROUP_PATH, EndpointSliceDiscoveryError, endpointSlicesPath, endpointSliceVersion, pickEndpointSliceVersion,
} from '../../../../daemon/services/discovery';

const group = (...versions: string[]): unknown => ({
  kind: 'APIGroup', apiVersion: 'v1', name: 'discovery.k8s.io',
  versions: versions.map((version) => ({ groupVersion: `discovery.k8s.io/${version}`, version })),
  preferredVersion: { groupVersion: `discovery.k8s.io/${versions[0]}`, version: versions[0] },
});

/** A KubeApi answering the group path with the given answers in turn (the last one repeats). */
function apiAnswering(...answers: Array<KubeResponse | Error>): KubeApi & { paths: string[] } {
  const paths: string[] = [];
  let i = 0;
  return {
    paths,
    request: <T>(req: KubeRequest): Promise<KubeResponse<T>> => {
      paths.push(req.path);
      const a = answers[Math.min(i++, answers.length - 1)] as KubeResponse | Error;
      return a instanceof Error ? Promise.reject(a) : Promise.resolve(a as KubeResponse<T>);
    },
  };
}

const FAST = { initialMs: 1, maxMs: 2 };

describe('pickEndpointSliceVersion', () => {
  it.each([
    { desc: 'v1 when served (1.21 to 1.24 serve both)', doc: group('v1', 'v1beta1'), want: 'v1' },
    { desc: 'v1 alone (1.25+)', doc: group('v1'), want: 'v1' },
    { desc: 'v1beta1 when it is all there is (1.17 to 1.20)', doc: group('v1beta1'), want: 'v1beta1' },
    { desc: 'nothing known', doc: group('v1alpha1'), want: undefined },
    { desc: 'not an APIGroup', doc: { kind: 'Status' }, want: undefined },
    { desc: 'null', doc: null, want: undefined },
  ])('$desc', ({ doc, want }) => {
    expect(pickEndpointSliceVersion(doc)).toBe(want);
  });

  it('names the collection path of each version', () => {
    expect(endpointSlicesPath('v1')).toBe('/apis/discovery.k8s.io/v1/endpointslices');
    expect(endpointSlicesPath('v1beta1')).toBe('/apis/discovery.k8s.io/v1beta1/endpointslices');
  });
});

describe('endpointSliceVersion', () => {
  it('asks the group document once', async () => {
    const api = apiAnswering({ status: 200, body: group('v1beta1') });
    await expect(endpointSliceVersion(api)).resolves.toBe('v1beta1');
    expect(api.paths).toEqual([DISCOVERY_GROUP_PATH]);
  });

  it('retries while the server fails or cannot be reached', async () => {
    const onRetry = vi.fn();
    const api = apiAnswering({ status: 503, body: {} }, new Error('ECONNREFUSED'), { status: 200, body: group('v1', 'v1beta1') });
    await expect(endpointSliceVersion(api, { backoff: FAST, onRetry })).resolves.toBe('v1');
    expect(onRetry).toHaveBeenCalledTimes(2);
    expect(api.paths).toHaveLength(3);
  });

  it.each([
    { desc: 'the group is not served', answer: { status: 404, body: {} }, msg: /does not serve \/apis\/discovery\.k8s\.io/ },
    { desc: 'access is refused', answer: { status: 403, body: {} }, msg: /HTTP 403/ },
    { desc: 'no known version is listed', answer: { status: 200, body: group('v1alpha1') }, msg: /lists neither v1 nor v1beta1/ },
  ])('fails at once when $desc', async ({ answer, msg }) => {
    const api = apiAnswering(answer);
    const err = await endpointSliceVersion(api, { backoff: FAST }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EndpointSliceDiscoveryError);
    expect((err as Error).message).toMatch(msg);
    expect(api.paths).toHaveLength(1);
  });

  it('stops retrying when aborted', async () => {
    const ac = new AbortController();
    const api = apiAnswering({ status: 500, body: {} });
    const p = endpointSliceVersion(api, { signal: ac.signal, backoff: { initialMs: 10_000, maxMs: 10_000, jitter: 0 } });
    setTimeout(() => ac.abort(new Error('shutting down')), 10);
    await expect(p).rejects.toThrow('shutting down');
  });
});
