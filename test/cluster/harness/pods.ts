// ovnode deployed on the lab as an operator would (kubectl apply -f deploy/), test pods of the
// tools image pinned to a node, a pod's address and its network namespace as the host sees it.
// No vitest here: benchmarks compiled into dist/ (scripts/bench-cross-node.ts) use these too;
// ./ovnode and ./matrix re-export them for the tests.

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { apply, kubectl, kubectlJson, kubectlOk, readLab, REPO, TOOLS_IMAGE, waitForObject, type KubeObject } from './lab';

export const SYSTEM_NS = 'kube-system';
/** The join network the lab's ovnode runs with (ConfigMap ovnode-config). */
export const LAB_JOIN_CIDRS = '100.64.0.0/16,fd00:100:64::/112';
/** Where each lab node's fake SR-IOV sysfs tree is (the node's /var/lib/ovnode, the daemon's too). */
export const LAB_FAKE_SYSFS = '/var/lib/ovnode/fake-sysfs';

/** Deploys ovnode unless it already runs; resolves once both DaemonSets are rolled out on every node. */
export async function deployOvnode(): Promise<{ fresh: boolean }> {
  const existing = await kubectl(['-n', SYSTEM_NS, 'get', 'ds', 'ovnode', '-o', 'name']);
  const fresh = existing.code !== 0;
  if (fresh) {
    const lab = readLab();
    await kubectlOk(['-n', SYSTEM_NS, 'create', 'configmap', 'ovnode-apiserver', `--from-literal=host=${lab.apiserver.host}`, `--from-literal=port=${lab.apiserver.port}`]);
    // Geneve on the lab's overlay network (eth1), apart from the API traffic on eth0; the lab's
    // Service CIDR; a dual-stack join network, so dual-stack pods have IPv6 egress and node routes.
    await kubectlOk(['-n', SYSTEM_NS, 'create', 'configmap', 'ovnode-config', `--from-literal=encap-interface=${lab.overlay.interface}`,
      `--from-literal=service-cidr=${lab.serviceCidr}`, `--from-literal=join-cidr=${LAB_JOIN_CIDRS}`,
      // SR-IOV on the FAKE NIC the sriov tests build under each node's /var/lib/ovnode (no
      // hardware here), with OVS hardware offload on as a smart-NIC node runs it.
      `--from-literal=sriov-sysfs-root=${LAB_FAKE_SYSFS}`, '--from-literal=sriov-fake-nic=true', '--from-literal=hw-offload=true']);
    await kubectlOk(['apply', '-f', join(REPO, 'deploy')], { timeoutMs: 120_000 });
  }
  for (const ds of ['ovnode-ovs', 'ovnode']) await waitDaemonSetReady(ds);
  return { fresh };
}

/**
 * Every scheduled pod of the DaemonSet is up to date and Ready (a watch; `rollout status` refuses
 * OnDelete DaemonSets).
 */
export async function waitDaemonSetReady(name: string, timeoutMs = 300_000): Promise<void> {
  await waitForObject('daemonsets', (o) => {
    const st = o.status ?? {};
    return o.metadata?.name === name && st.observedGeneration >= o.metadata.generation && st.desiredNumberScheduled > 0
      && st.numberReady === st.desiredNumberScheduled && (st.updatedNumberScheduled ?? 0) === st.desiredNumberScheduled;
  }, { namespace: SYSTEM_NS, fieldSelector: `metadata.name=${name}`, timeoutMs, description: `DaemonSet ${name} ready on every node` });
}

export interface TestPodSpec {
  name: string;
  namespace: string;
  node: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** A pod of the tools image on `node`: an HTTP server on 8080 and a TCP echo on 9000. */
export function testPod(s: TestPodSpec): KubeObject {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: s.name, namespace: s.namespace, labels: { 'ovnode-test': 'true', ...(s.labels ?? {}) }, annotations: s.annotations ?? {} },
    spec: {
      nodeName: s.node,
      terminationGracePeriodSeconds: 1,
      containers: [{
        name: 'tools', image: TOOLS_IMAGE, imagePullPolicy: 'Never',
        command: ['/bin/sh', '-c', "trap 'exit 0' TERM; echo ok > /tmp/index.html; httpd -f -p 8080 -h /tmp & nc -ll -p 9000 -e /bin/cat & wait"],
        ports: [{ name: 'http', containerPort: 8080 }],
        readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
      }],
    },
  };
}

export async function createNamespace(name: string, labels: Record<string, string> = {}): Promise<void> {
  await apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
}

/**
 * A host path to the pod's network namespace: /proc/<pid>/ns/net of its oldest process (the
 * sandbox's pause; short-lived processes, such as other probes' execs, come and go meanwhile).
 */
export async function podNetnsPath(p: { namespace: string; pod: string }): Promise<string> {
  const r = await kubectl(['exec', '-n', p.namespace, p.pod, '--', 'readlink', '/proc/self/ns/net']);
  const id = r.stdout.trim();
  if (r.code !== 0 || !/^net:\[\d+\]$/.test(id)) throw new Error(`network namespace of ${p.namespace}/${p.pod}: ${r.stderr.trim() || id}`);
  let oldest: { pid: string; start: number } | undefined;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readlinkSync(`/proc/${pid}/ns/net`) !== id) continue;
      // Field 22 of stat, counted after the ")" that ends the command name.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const start = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
      if (!oldest || start < oldest.start) oldest = { pid, start };
    } catch { /* gone, or a kernel thread */ }
  }
  if (!oldest) throw new Error(`no process in ${id} of ${p.namespace}/${p.pod} seen from the host`);
  return `/proc/${oldest.pid}/ns/net`;
}

/** A pod's address as ovnode wrote it back (annotation ovn.kubernetes.io/ip_address). */
export async function podAddress(namespace: string, pod: string): Promise<string> {
  const obj = await kubectlJson<KubeObject>(['-n', namespace, 'get', 'pod', pod]);
  const ip = obj.metadata?.annotations?.['ovn.kubernetes.io/ip_address'] as string | undefined;
  if (!ip) throw new Error(`pod ${namespace}/${pod} has no ovn.kubernetes.io/ip_address annotation`);
  return ip;
}
