// deploy/02-ovs.yaml and deploy/03-ovnoded.yaml: the properties the datapath and the hand-over
// depend on (OnDelete for the OVS pod, host pid namespace for adoption, mount propagation for pod
// network namespaces, the API server address from the operator's ConfigMap, probes).
import { describe, expect, it } from 'vitest';
import { deployFiles, find, loadAll, loadFile, type Doc } from './manifests';

const ovs = find('DaemonSet', 'ovnode-ovs');
const daemon = find('DaemonSet', 'ovnode');

function container(ds: Doc): Doc {
  const list = ds.spec.template.spec.containers as Doc[];
  expect(list).toHaveLength(1);
  return list[0] as Doc;
}

/** mountPath -> { host path, hostPath type, readOnly, propagation } through the volume names. */
function mounts(ds: Doc): Record<string, { host: string; type?: string; readOnly?: boolean; propagation?: string }> {
  const volumes = new Map((ds.spec.template.spec.volumes as Doc[]).map((v) => [v.name as string, v]));
  const out: Record<string, { host: string; type?: string; readOnly?: boolean; propagation?: string }> = {};
  for (const m of container(ds).volumeMounts as Doc[]) {
    const v = volumes.get(m.name);
    if (!v?.hostPath) throw new Error(`${m.name}: not a hostPath volume`);
    out[m.mountPath] = {
      host: v.hostPath.path,
      ...(v.hostPath.type ? { type: v.hostPath.type } : {}),
      ...(m.readOnly ? { readOnly: true } : {}),
      ...(m.mountPropagation ? { propagation: m.mountPropagation } : {}),
    };
  }
  expect(Object.keys(out)).toHaveLength((container(ds).volumeMounts as Doc[]).length);
  expect(volumes.size, 'every volume is mounted').toBe(Object.keys(out).length);
  return out;
}

describe.each([
  ['ovnode-ovs', ovs],
  ['ovnode', daemon],
])('DaemonSet %s: common properties', (_name, ds) => {
  const pod = ds.spec.template.spec as Doc;

  it('apps/v1 in kube-system, selector matching the template', () => {
    expect(ds.apiVersion).toBe('apps/v1');
    expect(ds.metadata.namespace).toBe('kube-system');
    for (const [k, v] of Object.entries(ds.spec.selector.matchLabels as Record<string, string>)) expect(ds.spec.template.metadata.labels[k]).toBe(v);
  });

  it('host network and pid namespace, privileged, system-node-critical, every taint tolerated', () => {
    expect(pod.hostNetwork).toBe(true);
    expect(pod.hostPID).toBe(true);
    expect(container(ds).securityContext).toEqual({ privileged: true });
    expect(pod.priorityClassName).toBe('system-node-critical');
    expect(pod.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(pod.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
  });

  it('the project image, never pulled when present, no registry host', () => {
    expect(container(ds).image).toBe('ovnode:0.1.0');
    expect(container(ds).imagePullPolicy).toBe('IfNotPresent');
  });

  it('modest requests and no limits (an OOM kill must not be a sizing accident)', () => {
    const res = container(ds).resources as Doc;
    expect(Object.keys(res)).toEqual(['requests']);
    expect(Object.keys(res.requests).sort()).toEqual(['cpu', 'memory']);
  });

  it('the state and run directories on the host, shared by both pods', () => {
    const m = mounts(ds);
    expect(m['/var/lib/ovnode']).toEqual({ host: '/var/lib/ovnode', type: 'DirectoryOrCreate' });
    expect(m['/run/ovnode']).toEqual({ host: '/run/ovnode', type: 'DirectoryOrCreate' });
  });
});

describe('DaemonSet ovnode-ovs (the OVS/OVN stack)', () => {
  const pod = ovs.spec.template.spec as Doc;
  const c = container(ovs);

  it('is replaced only on delete: deleting the pod stops the datapath', () => {
    expect(ovs.spec.updateStrategy).toEqual({ type: 'OnDelete' });
  });

  it('runs the stack on the shared state dir', () => {
    expect(c.command).toEqual(['/usr/local/bin/ovnoded', 'stack', '--state-dir', '/var/lib/ovnode']);
  });

  it('is ready when the stack answers, and has no liveness probe (a restart would stop the datapath)', () => {
    expect(c.readinessProbe.exec.command).toEqual(['/usr/local/bin/ovnoded', 'probe', 'stack', '--state-dir', '/var/lib/ovnode']);
    expect(c.livenessProbe).toBeUndefined();
    expect(c.startupProbe).toBeUndefined();
  });

  it('uses the ServiceAccount without rights, and no token', () => {
    expect(pod.serviceAccountName).toBe('ovnode-ovs');
    expect(pod.automountServiceAccountToken).toBe(false);
  });

  it('leaves OVS time for a clean exit (about 35 s of stop steps)', () => {
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(45);
  });

  it('mounts /lib/modules read-only and /sys', () => {
    expect(mounts(ovs)).toEqual({
      '/var/lib/ovnode': { host: '/var/lib/ovnode', type: 'DirectoryOrCreate' },
      '/run/ovnode': { host: '/run/ovnode', type: 'DirectoryOrCreate' },
      '/lib/modules': { host: '/lib/modules', readOnly: true },
      '/sys': { host: '/sys', type: 'Directory' },
    });
  });
});

describe('DaemonSet ovnode (ovnoded)', () => {
  const pod = daemon.spec.template.spec as Doc;
  const c = container(daemon);
  const PROBE = ['/usr/local/bin/ovnoded', 'probe', 'daemon', '--socket', '/run/ovnode/ovnoded.sock'];

  it('rolls one node at a time', () => {
    expect(daemon.spec.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });
  });

  it('runs the daemon against the external stack, with the CNI directories of the host', () => {
    expect(c.command).toEqual([
      '/usr/local/bin/ovnoded', 'run', '--kubernetes', '--stack', 'external', '--state-dir', '/var/lib/ovnode',
      '--socket', '/run/ovnode/ovnoded.sock', '--cni-bin-dir', '/host/opt/cni/bin', '--cni-conf-dir', '/host/etc/cni/net.d',
      '--metrics-address', '127.0.0.1:9476',
    ]);
  });

  it('uses the ovnode ServiceAccount (its token mounted)', () => {
    expect(pod.serviceAccountName).toBe('ovnode');
    expect(pod.automountServiceAccountToken).not.toBe(false);
  });

  it('takes the node and pod names from the downward API and the API server from the ConfigMap', () => {
    const env = Object.fromEntries((c.env as Doc[]).map((e) => [e.name, e.valueFrom]));
    expect(env).toEqual({
      NODE_NAME: { fieldRef: { fieldPath: 'spec.nodeName' } },
      POD_NAME: { fieldRef: { fieldPath: 'metadata.name' } },
      POD_NAMESPACE: { fieldRef: { fieldPath: 'metadata.namespace' } },
      KUBERNETES_SERVICE_HOST: { configMapKeyRef: { name: 'ovnode-apiserver', key: 'host' } },
      KUBERNETES_SERVICE_PORT: { configMapKeyRef: { name: 'ovnode-apiserver', key: 'port' } },
      OVNODE_ENCAP_INTERFACE: { configMapKeyRef: { name: 'ovnode-config', key: 'encap-interface', optional: true } },
      OVNODE_SERVICE_CIDR: { configMapKeyRef: { name: 'ovnode-config', key: 'service-cidr', optional: true } },
      OVNODE_JOIN_CIDR: { configMapKeyRef: { name: 'ovnode-config', key: 'join-cidr', optional: true } },
      OVNODE_HW_OFFLOAD: { configMapKeyRef: { name: 'ovnode-config', key: 'hw-offload', optional: true } },
      OVNODE_SRIOV_SYSFS_ROOT: { configMapKeyRef: { name: 'ovnode-config', key: 'sriov-sysfs-root', optional: true } },
      OVNODE_SRIOV_FAKE_NIC: { configMapKeyRef: { name: 'ovnode-config', key: 'sriov-fake-nic', optional: true } },
    });
    expect(c.envFrom).toBeUndefined();
  });

  it('the ConfigMap is left to the operator (not in deploy/)', () => {
    expect(loadAll().filter((d) => d.doc.kind === 'ConfigMap')).toEqual([]);
  });

  it('probes the CNI socket: readiness often, liveness generously, after a long start-up allowance', () => {
    expect(c.readinessProbe.exec.command).toEqual(PROBE);
    expect(c.readinessProbe.periodSeconds).toBeLessThanOrEqual(5);
    expect(c.livenessProbe.exec.command).toEqual(PROBE);
    expect(c.livenessProbe.periodSeconds * c.livenessProbe.failureThreshold).toBeGreaterThanOrEqual(60);
    expect(c.startupProbe.exec.command).toEqual(PROBE);
    // The daemon waits up to 10 minutes for the stack's sockets on a first start.
    expect(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold).toBeGreaterThanOrEqual(600);
    for (const p of [c.readinessProbe, c.livenessProbe, c.startupProbe]) expect(p.timeoutSeconds).toBeGreaterThanOrEqual(2);
  });

  it('stops within 30 s: SIGTERM is a hand-over, the datapath keeps running', () => {
    expect(pod.terminationGracePeriodSeconds).toBe(30);
  });

  it('mounts the CNI directories and /run/netns with host-to-container propagation', () => {
    expect(mounts(daemon)).toEqual({
      '/var/lib/ovnode': { host: '/var/lib/ovnode', type: 'DirectoryOrCreate' },
      '/run/ovnode': { host: '/run/ovnode', type: 'DirectoryOrCreate' },
      '/host/opt/cni/bin': { host: '/opt/cni/bin', type: 'DirectoryOrCreate' },
      '/host/etc/cni/net.d': { host: '/etc/cni/net.d', type: 'DirectoryOrCreate' },
      '/run/netns': { host: '/run/netns', type: 'DirectoryOrCreate', propagation: 'HostToContainer' },
    });
  });
});

describe('deploy/ as a whole', () => {
  it('applies in order: CRDs, RBAC, the stack, the daemon', () => {
    expect(deployFiles()).toEqual(['00-crds.yaml', '01-rbac.yaml', '02-ovs.yaml', '03-ovnoded.yaml']);
    expect(loadFile('02-ovs.yaml').map((d) => d.kind)).toEqual(['DaemonSet']);
    expect(loadFile('03-ovnoded.yaml').map((d) => d.kind)).toEqual(['DaemonSet']);
  });

  it('only API versions a 1.20 server serves, namespaced objects in kube-system', () => {
    const allowed: Record<string, string> = {
      CustomResourceDefinition: 'apiextensions.k8s.io/v1',
      ServiceAccount: 'v1',
      ClusterRole: 'rbac.authorization.k8s.io/v1',
      ClusterRoleBinding: 'rbac.authorization.k8s.io/v1',
      DaemonSet: 'apps/v1',
    };
    for (const { file, doc } of loadAll()) {
      expect(allowed[doc.kind], `${file}: ${doc.kind}`).toBe(doc.apiVersion);
      const namespaced = doc.kind === 'ServiceAccount' || doc.kind === 'DaemonSet';
      expect(doc.metadata.namespace, `${file}: ${doc.kind} ${doc.metadata.name}`).toBe(namespaced ? 'kube-system' : undefined);
      expect(doc.metadata.labels?.['app.kubernetes.io/part-of']).toBe('ovnode');
    }
  });
});
