// Projections of Services and EndpointSlices: what the reflectors keep of each object. Slices come
// in discovery.k8s.io/v1 and v1beta1 shapes (Kubernetes 1.20 serves only v1beta1): the same
// answer is expected from both.
import { describe, expect, it } from 'vitest';
import { projectEndpointSlice, projectService } from '../../../../daemon/services/project';
import type { KubeRawObject } from '../../../../daemon/sources/kube/reflector';

const meta = (name: string, extra: Record<string, unknown> = {}): KubeRawObject['metadata'] =>
  ({ name, namespace: 'default', uid: `uid-${name}`, resourceVersion: '7', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' }, managedFields: [{ manager: 'kubectl' }], ...extra });

const svc = (name: string, spec: Record<string, unknown>): KubeRawObject => ({ metadata: meta(name), spec, status: { loadBalancer: {} } });

describe('projectService', () => {
  it.each([
    {
      desc: 'a ClusterIP Service: its cluster IP and ports, protocol defaulting to TCP, no node ports',
      spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], selector: { app: 'web' }, ports: [
        { name: 'http', port: 80, targetPort: 8080 }, { name: 'dns', protocol: 'UDP', port: 53, targetPort: 'dns' },
      ] },
      want: { namespace: 'default', name: 's', clusterIPs: ['10.96.0.10'], nodePorts: false, ports: [
        { name: 'http', protocol: 'tcp', port: 80 }, { name: 'dns', protocol: 'udp', port: 53 },
      ] },
    },
    {
      desc: 'a NodePort Service: node ports kept',
      spec: { type: 'NodePort', clusterIP: '10.96.0.11', ports: [{ protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 30080 }] },
      want: { namespace: 'default', name: 's', clusterIPs: ['10.96.0.11'], nodePorts: true, ports: [{ name: '', protocol: 'tcp', port: 80, nodePort: 30080 }] },
    },
    {
      desc: 'a LoadBalancer Service: as a NodePort one; a port without node port (allocateLoadBalancerNodePorts false) has none',
      spec: { type: 'LoadBalancer', clusterIP: '10.96.0.12', ports: [
        { name: 'a', protocol: 'SCTP', port: 9, nodePort: 30009 }, { name: 'b', protocol: 'TCP', port: 10 },
      ] },
      want: { namespace: 'default', name: 's', clusterIPs: ['10.96.0.12'], nodePorts: true, ports: [
        { name: 'a', protocol: 'sctp', port: 9, nodePort: 30009 }, { name: 'b', protocol: 'tcp', port: 10 },
      ] },
    },
    {
      desc: 'a ClusterIP Service ignores a nodePort field',
      spec: { type: 'ClusterIP', clusterIP: '10.96.0.13', ports: [{ port: 80, nodePort: 30001 }] },
      want: { namespace: 'default', name: 's', clusterIPs: ['10.96.0.13'], nodePorts: false, ports: [{ name: '', protocol: 'tcp', port: 80 }] },
    },
    {
      desc: 'a dual-stack Service: spec.clusterIPs in order, one per family',
      spec: { type: 'ClusterIP', clusterIP: 'fd00:10:96::a', clusterIPs: ['fd00:10:96::a', '10.96.0.14', '10.96.0.99'], ports: [{ port: 80 }] },
      want: { namespace: 'default', name: 's', clusterIPs: ['fd00:10:96::a', '10.96.0.14'], nodePorts: false, ports: [{ name: '', protocol: 'tcp', port: 80 }] },
    },
    {
      desc: 'ClientIP affinity without a config: the 10800 s default',
      spec: { type: 'ClusterIP', clusterIP: '10.96.0.15', sessionAffinity: 'ClientIP', ports: [{ port: 80 }] },
      want: { namespace: 'default', name: 's', clusterIPs: ['10.96.0.15'], nodePorts: false, ports: [{ name: '', protocol: 'tcp', port: 80 }], affinityTimeoutSeconds: 10800 },
    },
    {
      desc: 'ClientIP affinity with its timeout',
      spec: { type: 'ClusterIP', clusterIP: '10.96.0.16', sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } }, ports: [{ port: 80 }] },
      want: { namespace: 'default', name: 's', clusterIPs: ['10.96.0.16'], nodePorts: false, ports: [{ name: '', protocol: 'tcp', port: 80 }], affinityTimeoutSeconds: 60 },
    },
    {
      desc: 'ports of an unknown protocol or without a valid port are dropped',
      spec: { type: 'ClusterIP', clusterIP: '10.96.0.17', ports: [{ name: 'x', protocol: 'ICMP', port: 1 }, { name: 'y', port: 0 }, { name: 'z', port: 443 }] },
      want: { namespace: 'default', name: 's', clusterIPs: ['10.96.0.17'], nodePorts: false, ports: [{ name: 'z', protocol: 'tcp', port: 443 }] },
    },
  ])('$desc', ({ spec, want }) => {
    expect(projectService(svc('s', spec))).toEqual(want);
  });

  it.each([
    { desc: 'ExternalName', spec: { type: 'ExternalName', externalName: 'db.example.com', ports: [{ port: 5432 }] } },
    { desc: 'headless (clusterIP None)', spec: { type: 'ClusterIP', clusterIP: 'None', clusterIPs: ['None'], ports: [{ port: 80 }] } },
    { desc: 'no cluster IP allocated yet', spec: { type: 'ClusterIP', ports: [{ port: 80 }] } },
    { desc: 'no spec', spec: undefined },
  ])('keeps nothing of a Service that gets no VIP: $desc', ({ spec }) => {
    expect(projectService(spec === undefined ? { metadata: meta('s') } : svc('s', spec))).toBeUndefined();
  });
});

// ---- EndpointSlices ----

const sliceMeta = (service: string | undefined): KubeRawObject['metadata'] =>
  meta(`${service ?? 'x'}-abcde`, { labels: { 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io', ...(service === undefined ? {} : { 'kubernetes.io/service-name': service }) } });

/** An EndpointSlice as Kubernetes 1.20 (discovery.k8s.io/v1beta1) writes it: topology map, no serving/terminating. */
function v1beta1Slice(addressType: string, endpoints: Array<{ ip: string; ready?: boolean }>): KubeRawObject {
  return {
    metadata: sliceMeta('web'),
    addressType,
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: e.ready === undefined ? {} : { ready: e.ready },
      targetRef: { kind: 'Pod', namespace: 'default', name: `web-${e.ip}`, uid: 'u' },
      topology: { 'kubernetes.io/hostname': 'node1', 'topology.kubernetes.io/zone': 'z1' },
    })),
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }, { name: 'metrics', port: 9090 }],
  };
}

/** The same slice as discovery.k8s.io/v1 writes it: nodeName/zone, serving and terminating. */
function v1Slice(addressType: string, endpoints: Array<{ ip: string; ready?: boolean }>): KubeRawObject {
  return {
    metadata: sliceMeta('web'),
    addressType,
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: e.ready === undefined ? {} : { ready: e.ready, serving: true, terminating: e.ready === false },
      targetRef: { kind: 'Pod', namespace: 'default', name: `web-${e.ip}`, uid: 'u' },
      nodeName: 'node1',
      zone: 'z1',
    })),
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }, { name: 'metrics', port: 9090 }],
  };
}

describe.each([
  { version: 'v1beta1', make: v1beta1Slice },
  { version: 'v1', make: v1Slice },
])('projectEndpointSlice ($version)', ({ make }) => {
  it('keeps the Service, family, ports and the first address of ready endpoints; a nil ready counts as ready', () => {
    const raw = make('IPv4', [{ ip: '10.16.0.5', ready: true }, { ip: '10.16.0.6', ready: false }, { ip: '10.16.0.7' }]);
    expect(projectEndpointSlice(raw)).toEqual({
      service: 'default/web', family: 4,
      ports: [{ name: 'http', protocol: 'tcp', port: 8080 }, { name: 'metrics', protocol: 'tcp', port: 9090 }],
      ready: ['10.16.0.5', '10.16.0.7'],
    });
  });

  it('reads IPv6 slices, skipping addresses of the other family', () => {
    const raw = make('IPv6', [{ ip: 'fd00:10:16::5', ready: true }, { ip: '10.16.0.9', ready: true }]);
    expect(projectEndpointSlice(raw)).toMatchObject({ family: 6, ready: ['fd00:10:16::5'] });
  });

  it('keeps nothing of an FQDN slice', () => {
    expect(projectEndpointSlice(make('FQDN', [{ ip: 'db.example.com', ready: true }]))).toBeUndefined();
  });
});

describe('projectEndpointSlice', () => {
  it('keeps nothing of a slice without a Service label', () => {
    expect(projectEndpointSlice({ metadata: sliceMeta(undefined), addressType: 'IPv4', endpoints: [], ports: [] })).toBeUndefined();
  });

  it('keeps an empty slice (no endpoints yet) and unnamed ports; drops ports without a number', () => {
    const raw: KubeRawObject = { metadata: sliceMeta('web'), addressType: 'IPv4', endpoints: null, ports: [{ port: 8080 }, { name: 'any', port: null }] };
    expect(projectEndpointSlice(raw)).toEqual({ service: 'default/web', family: 4, ports: [{ name: '', protocol: 'tcp', port: 8080 }], ready: [] });
  });

  it('uses the first address of an endpoint listing several', () => {
    const raw: KubeRawObject = { metadata: sliceMeta('web'), addressType: 'IPv4', endpoints: [{ addresses: ['10.16.0.5', '10.16.0.50'] }], ports: [{ port: 80 }] };
    expect(projectEndpointSlice(raw)?.ready).toEqual(['10.16.0.5']);
  });
});
