// ovnode on the lab cluster for the tests: a namespace per test file with ovnode deployed, probes
// from pods, and looking at a node's OVS/OVN through its own sockets (the per-node state directory
// is /var/lib/ovnode in the node's mount namespace). Deploying ovnode and the test pods are in
// ./pods (no vitest there, so benchmarks use them too) and re-exported here.

import { afterAll, beforeAll } from 'vitest';
import { kubectl, kubectlJson, nodeExec, readLab, uniqueName, type KubeObject, type RunResult } from './lab';
import { createNamespace, deployOvnode, SYSTEM_NS } from './pods';

export { createNamespace, deployOvnode, SYSTEM_NS, testPod, waitDaemonSetReady, type TestPodSpec } from './pods';

const NB_DB = 'unix:/var/lib/ovnode/ovn/nb.sock';
const OVS_DB = 'unix:/var/lib/ovnode/ovs/db.sock';
const SB_DB = 'unix:/var/lib/ovnode/ovn/sb.sock';

/** The pod of a DaemonSet (`app` label) on a node. */
export async function daemonPod(app: 'ovnode' | 'ovnode-ovs', node: string): Promise<KubeObject> {
  const list = await kubectlJson<{ items: KubeObject[] }>(['-n', SYSTEM_NS, 'get', 'pods', '-l', `app=${app}`, '--field-selector', `spec.nodeName=${node}`]);
  const pod = list.items.find((p) => !p.metadata.deletionTimestamp);
  if (!pod) throw new Error(`no ${app} pod on ${node}`);
  return pod;
}

export async function nbctl(node: string, args: string[]): Promise<string> {
  return mustRun(await nodeExec(node, ['ovn-nbctl', `--db=${NB_DB}`, ...args]), `ovn-nbctl ${args.join(' ')} on ${node}`);
}

export async function sbctl(node: string, args: string[]): Promise<string> {
  return mustRun(await nodeExec(node, ['ovn-sbctl', `--db=${SB_DB}`, ...args]), `ovn-sbctl ${args.join(' ')} on ${node}`);
}

export async function vsctl(node: string, args: string[]): Promise<string> {
  return mustRun(await nodeExec(node, ['ovs-vsctl', `--db=${OVS_DB}`, ...args]), `ovs-vsctl ${args.join(' ')} on ${node}`);
}

/** A Logical_Switch_Port of a node's NB, as the tests look at it. */
export interface NbPort {
  type: string;
  /** The first addresses line ("MAC IP..."). */
  line: string;
  options: Record<string, string>;
  /** The node whose pod (or node port) this zone holds the port for; undefined for the node's own ports. */
  remoteNode: string | undefined;
}

/** Every Logical_Switch_Port of the node's NB, by name (ovn-nbctl's JSON output: sets and maps as OVSDB writes them). */
export async function nbPorts(node: string, r: RunResult | undefined = undefined): Promise<Map<string, NbPort>> {
  const out = r ? mustRun(r, `ovn-nbctl list on ${node}`) : await nbctl(node, ['--format=json', '--columns=name,type,addresses,options,external_ids', 'list', 'Logical_Switch_Port']);
  const { data } = JSON.parse(out) as { data: unknown[][] };
  const map = (v: unknown): Record<string, string> => (Array.isArray(v) && v[0] === 'map' ? Object.fromEntries(v[1] as Array<[string, string]>) : {});
  const first = (v: unknown): string => (Array.isArray(v) ? String((v[1] as unknown[])[0] ?? '') : String(v ?? ''));
  const ports = new Map<string, NbPort>();
  for (const [name, type, addresses, options, ids] of data) {
    ports.set(String(name), { type: String(type), line: first(addresses), options: map(options), remoteNode: map(ids)['ovnode:remote-node'] });
  }
  return ports;
}

/** The first 172.21.N.0/24 that no Subnet of the cluster overlaps (a test run's own Subnet). */
export async function freeSubnetCidr(): Promise<string> {
  const subnets = (await kubectlJson<{ items: KubeObject[] }>(['get', 'subnets'])).items;
  const used = new Set(subnets.flatMap((s) => String(s.spec?.cidrBlock ?? '').split(',')).filter((c) => c.startsWith('172.21.')));
  for (let n = 10; n < 256; n++) if (!used.has(`172.21.${n}.0/24`)) return `172.21.${n}.0/24`;
  throw new Error('no free 172.21.N.0/24');
}

function mustRun(r: RunResult, what: string): string {
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/**
 * A test file's own namespace, unique per run: ovnode deployed and the namespace created before
 * the file's tests, the namespace deleted (pods first) after them, also after a failure.
 */
export function useTestNamespace(prefix: string): string {
  const name = uniqueName(prefix);
  beforeAll(async () => {
    await deployOvnode();
    await createNamespace(name);
  }, 600_000);
  afterAll(async () => {
    // Pods first, then the namespace: seconds instead of the namespace controller's minute-plus here.
    await deleteNamespace(name);
  });
  return name;
}

/** `kubectl exec` in a pod; never rejects for an exit code. */
export function podExec(namespace: string, pod: string, argv: string[], timeoutMs = 20_000): Promise<RunResult> {
  return kubectl(['exec', '-n', namespace, pod, '--', ...argv], { timeoutMs });
}

/** True when one of `tries` pings from the pod reaches ip. */
export async function pingFrom(namespace: string, pod: string, ip: string, tries = 3): Promise<boolean> {
  const r = await podExec(namespace, pod, ['ping', '-c', String(tries), '-W', '1', ip]);
  return r.code === 0;
}

/** What the pod's HTTP server on 8080 answered at ip ("" when nothing did within 2 s). */
export async function httpFrom(namespace: string, pod: string, ip: string): Promise<string> {
  const r = await podExec(namespace, pod, ['sh', '-c', `printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${ip} 8080 | tail -n 1`]);
  return r.stdout.trim();
}

/**
 * Deletes a test namespace quickly and completely. Deleting a namespace with pods takes a minute
 * or more on the lab: kubelet 1.20 removes a terminated pod's API object only long after it has
 * stopped it (tens of seconds here), and the namespace controller re-checks with exponential
 * backoff meanwhile. So: the pods are deleted gracefully, then, once every node's NB has no port
 * of the namespace left (the containers are stopped and their CNI DELs done), whatever pod
 * objects kubelet has not yet removed are force-deleted, then the empty namespace is deleted.
 * Never rejects (afterAll hooks call it); what fails is printed.
 */
export async function deleteNamespace(name: string, timeoutMs = 120_000): Promise<void> {
  const warn = (what: string, r: RunResult): void => { if (r.code !== 0) console.warn(`cleanup of namespace ${name}: ${what} failed (${r.code}): ${r.stderr.trim()}`); };
  warn('deleting its pods', await kubectl(['-n', name, 'delete', 'pods', '--all', '--wait=false'], { timeoutMs: 60_000 }));
  const nodes = readLab().nodes.map((n) => n.name);
  const end = Date.now() + timeoutMs;
  for (;;) {
    const left = (await Promise.all(nodes.map(async (node) => {
      // The node's own ports: other nodes' pods stay as remote ports until their API objects go.
      const r = await nodeExec(node, ['ovn-nbctl', `--db=${NB_DB}`, '--format=json', '--columns=name,type,addresses,options,external_ids', 'list', 'Logical_Switch_Port']);
      if (r.code !== 0) return [`${node}: ovn-nbctl failed: ${r.stderr.trim()}`];
      return [...(await nbPorts(node, r))].filter(([port, p]) => p.remoteNode === undefined && port.endsWith(`.${name}`)).map(([port]) => `${node}:${port}`);
    }))).flat();
    if (left.length === 0) break;
    if (Date.now() > end) { console.warn(`cleanup of namespace ${name}: ports still in the NB after ${timeoutMs} ms: ${left.join(' ')}`); break; }
    await new Promise((r) => setTimeout(r, 500));
  }
  warn('force-deleting the stopped pods', await kubectl(['-n', name, 'delete', 'pods', '--all', '--grace-period=0', '--force', '--wait=true'], { timeoutMs: 60_000 }));
  warn('deleting it', await kubectl(['delete', 'namespace', name, '--ignore-not-found', '--wait=true', `--timeout=${Math.ceil(timeoutMs / 1000)}s`], { timeoutMs: timeoutMs + 15_000 }));
}
