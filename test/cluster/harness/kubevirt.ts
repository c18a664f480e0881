// KubeVirt's pods FAKED as plain pods (KubeVirt is not installed on the lab): a virt-launcher pod
// is a pod of the tools image carrying the labels and annotations KubeVirt puts on it, and a
// migration target is one more such pod with the migration job's label and annotation, pinned to
// another node while the source runs. What ovnode reads of them is exactly these. Also: the
// chassis of each node (its contract annotation), the VM's port in each zone's NB, read until a
// predicate holds (bounded retries: OVSDB rows have no watch through kubectl), and the activation
// annotation awaited through the API's watch. No vitest here: the benchmark uses it too.

import { NODE_ANNOTATION } from '../../../daemon/cluster/node-contract';
import { kubectlJson, nodeExec, TOOLS_IMAGE, waitForObject, type KubeObject } from './lab';

export const KUBEVIRT = {
  /** Label of every virt-launcher pod. */
  launcherLabel: 'kubevirt.io',
  launcherValue: 'virt-launcher',
  vmNameLabel: 'vm.kubevirt.io/name',
  /** Kube-OVN's condition for migrating a VM on the pod network with the bridge binding. */
  allowBridgeMigration: 'kubevirt.io/allow-pod-bridge-network-live-migration',
  migrationUidLabel: 'kubevirt.io/migrationJobUID',
  migrationNameAnnotation: 'kubevirt.io/migrationJobName',
} as const;

/** Written by the target node's daemon on the target pod once the target port is active. */
export const ACTIVATED_ANNOTATION = 'ovnode.io/migration-activated';

const NB_DB = 'unix:/var/lib/ovnode/ovn/nb.sock';

export interface LauncherSpec {
  vm: string;
  namespace: string;
  /** Pod name (KubeVirt's: virt-launcher-<vm>-<random>). */
  pod: string;
  node: string;
  /** For a migration target: the migration job. */
  migration?: { uid: string; name: string };
}

/**
 * A virt-launcher pod as KubeVirt creates one (the parts ovnode reads). No readiness probe: a
 * launcher is Ready when its container runs, and its address is the guest's, which a probe of the
 * pod's own would not reach once the guest has taken the interface.
 */
export function launcherPod(s: LauncherSpec): KubeObject {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: {
      name: s.pod, namespace: s.namespace,
      labels: {
        'ovnode-test': 'true', [KUBEVIRT.launcherLabel]: KUBEVIRT.launcherValue, [KUBEVIRT.vmNameLabel]: s.vm,
        ...(s.migration ? { [KUBEVIRT.migrationUidLabel]: s.migration.uid } : {}),
      },
      annotations: {
        [KUBEVIRT.allowBridgeMigration]: 'true',
        ...(s.migration ? { [KUBEVIRT.migrationNameAnnotation]: s.migration.name } : {}),
      },
    },
    spec: {
      nodeName: s.node,
      terminationGracePeriodSeconds: 1,
      containers: [{
        name: 'compute', image: TOOLS_IMAGE, imagePullPolicy: 'Never',
        command: ['/bin/sh', '-c', "trap 'exit 0' TERM; sleep 1000000 & wait"],
      }],
    },
  };
}

/** The Logical_Switch_Port all pods of one VM share. */
export function vmPortName(vm: string, namespace: string): string {
  return `${vm}.${namespace}`;
}

/** Each node's OVN chassis name, from the contract annotation its daemon publishes on its Node. */
export async function chassisByNode(nodes: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const n of nodes) {
    const node = await kubectlJson<KubeObject>(['get', 'node', n]);
    const id = node.metadata?.annotations?.[NODE_ANNOTATION.chassis] as string | undefined;
    if (!id) throw new Error(`node ${n} has no ${NODE_ANNOTATION.chassis} annotation (ovnode not running there?)`);
    out.set(n, id);
  }
  return out;
}

/** A port of one zone's NB: undefined when the zone has no such port. */
export interface LspView { addresses: string; options: Record<string, string>; externalIds: Record<string, string> }

/** The port `lsp` in `node`'s NB. */
export async function lspInZone(node: string, lsp: string): Promise<LspView | undefined> {
  const r = await nodeExec(node, ['ovn-nbctl', `--db=${NB_DB}`, '--format=json', '--columns=addresses,options,external_ids', 'find', 'Logical_Switch_Port', `name=${JSON.stringify(lsp)}`]);
  if (r.code !== 0) throw new Error(`ovn-nbctl find ${lsp} on ${node} failed (${r.code}): ${r.stderr.trim()}`);
  const { data } = JSON.parse(r.stdout) as { data: unknown[][] };
  const row = data[0];
  if (!row) return undefined;
  const map = (v: unknown): Record<string, string> => (Array.isArray(v) && v[0] === 'map' ? Object.fromEntries(v[1] as Array<[string, string]>) : {});
  const addr = row[0];
  const addresses = Array.isArray(addr) ? (addr[0] === 'set' ? String((addr[1] as unknown[])[0] ?? '') : String(addr)) : String(addr ?? '');
  return { addresses, options: map(row[1]), externalIds: map(row[2]) };
}

/**
 * Re-reads `lsp` in every zone of `nodes` until `ok` holds in all of them (each zone gets its port
 * from its own daemon, at its own pace); the views then. Throws after timeoutMs with what each
 * zone had last.
 */
export async function waitForVmPort(nodes: string[], lsp: string, ok: (p: LspView | undefined, node: string) => boolean,
  opts: { timeoutMs?: number; description?: string } = {}): Promise<Map<string, LspView | undefined>> {
  const end = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    const seen = new Map<string, LspView | undefined>();
    for (const n of nodes) seen.set(n, await lspInZone(n, lsp));
    if ([...seen].every(([n, p]) => ok(p, n))) return seen;
    if (Date.now() > end) {
      const last = [...seen].map(([n, p]) => `${n}: ${p ? JSON.stringify(p.options) : 'no port'}`).join('; ');
      throw new Error(`timed out after ${opts.timeoutMs ?? 60_000} ms waiting for ${opts.description ?? `port ${lsp}`}; last seen: ${last}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The port is pinned to `want` (a chassis name, or "source,target" while a migration is pending):
 * with `rarpOn`, the zones named there also have activation-strategy=rarp (the others may have it
 * or not: it only matters where the port can bind); without it, no zone has an activation strategy.
 */
export function pinnedTo(want: string, rarpOn?: string[]): (p: LspView | undefined, node: string) => boolean {
  return (p, node) => {
    if (p?.options['requested-chassis'] !== want) return false;
    const strategy = p.options['activation-strategy'];
    return rarpOn === undefined ? strategy === undefined : !rarpOn.includes(node) || strategy === 'rarp';
  };
}

/** The target pod carries the activation annotation naming its node (a watch). */
export function waitForActivation(namespace: string, pod: string, node: string, timeoutMs = 60_000): Promise<KubeObject> {
  return waitForObject('pods', (o) => o.metadata?.name === pod && o.metadata?.annotations?.[ACTIVATED_ANNOTATION] === node,
    { namespace, fieldSelector: `metadata.name=${pod}`, timeoutMs, description: `pod ${namespace}/${pod} annotated ${ACTIVATED_ANNOTATION}=${node}` });
}

/** The address and MAC ovnode wrote back on a pod. */
export async function podNetworkAnnotations(namespace: string, pod: string): Promise<{ ip: string; mac: string }> {
  const o = await kubectlJson<KubeObject>(['-n', namespace, 'get', 'pod', pod]);
  const a = (o.metadata?.annotations ?? {}) as Record<string, string>;
  return { ip: a['ovn.kubernetes.io/ip_address'] ?? '', mac: a['ovn.kubernetes.io/mac_address'] ?? '' };
}
