// kubeovn.io/v1 ProviderNetwork and Vlan, the underlay's two kinds: the CRD's shape and limits
// (deploy/00-crds.yaml) plus what the node needs to act on them: NIC names the kernel accepts,
// one NIC per node, a bridge name `br-<provider>` that fits IFNAMSIZ. References between the
// kinds (a Vlan's provider, a Subnet's vlan) are names only: the other object may come later.

import { child, FieldErrors, index, type Json } from './field-errors';
import { dns1123LabelErrors, dns1123SubdomainErrors, readSelector } from './validate-meta';
import type { ObjectMeta, ProviderNetworkInterface, ProviderNetworkObj, VlanObj } from './types';

/** Kube-OVN's limit: the bridge br-<name> must be a valid interface name (15 bytes). */
export const MAX_PROVIDER_NAME = 12;
/** Linux IFNAMSIZ minus the terminating NUL. */
const MAX_IFNAME = 15;
export const MAX_VLAN_ID = 4095;

/**
 * Problems with `v` as a Linux interface name (the kernel's dev_valid_name): empty if valid.
 * ':' is refused too: the kernel reserves it for the old alias notation (eth0:1).
 */
export function interfaceNameErrors(v: string): string[] {
  const errs: string[] = [];
  if (Buffer.byteLength(v) > MAX_IFNAME) errs.push(`must be no more than ${MAX_IFNAME} bytes (a Linux interface name)`);
  if (v === '.' || v === '..') errs.push('must not be "." or ".."');
  if (/[/:\s]/.test(v)) errs.push("must not contain '/', ':' or whitespace (a Linux interface name)");
  return errs;
}

/** A required interface name at `path`; '' when absent or wrong. */
function readInterface(errs: FieldErrors, v: unknown, path: string, what: string): string {
  const name = errs.string(v, path);
  if (name === undefined || name === '') {
    if (name === '' || v === undefined || v === null) errs.required(path, what);
    return '';
  }
  const problems = interfaceNameErrors(name);
  for (const m of problems) errs.invalid(path, name, m);
  return problems.length === 0 ? name : '';
}

/** The valid node names of a list (Kubernetes node names are DNS subdomains), each with its path. */
function readNodes(errs: FieldErrors, v: unknown, path: string): Array<{ node: string; path: string }> {
  const out: Array<{ node: string; path: string }> = [];
  errs.array(v, path).forEach((x, i) => {
    const p = index(path, i);
    const node = errs.string(x, p);
    if (node === undefined) return;
    const problems = dns1123SubdomainErrors(node);
    for (const m of problems) errs.invalid(p, node, `is not a node name: ${m}`);
    if (problems.length === 0) out.push({ node, path: p });
  });
  return out;
}

function readCustomInterfaces(errs: FieldErrors, v: unknown): ProviderNetworkInterface[] {
  const path = 'spec.customInterfaces';
  const out: ProviderNetworkInterface[] = [];
  // Which entry gave each node its NIC: a node with two would have two uplinks in one bridge.
  const owner = new Map<string, { entry: number; iface: string }>();
  errs.array(v, path).forEach((x, i) => {
    const p = index(path, i);
    const obj = errs.object(x, p);
    if (!obj) {
      if (x === undefined || x === null) errs.invalid(p, x, 'must be an object with interface and nodes');
      return;
    }
    errs.knownFields(obj, p, ['interface', 'nodes']);
    const iface = readInterface(errs, obj.interface, child(p, 'interface'), 'the NIC these nodes use');
    const nodesPath = child(p, 'nodes');
    const listed = Array.isArray(obj.nodes) ? obj.nodes.length : 0;
    const nodes = readNodes(errs, obj.nodes, nodesPath);
    // An entry for no node does nothing; most likely `node:` was meant (which the API server prunes).
    if (listed === 0 && (obj.nodes === undefined || obj.nodes === null || Array.isArray(obj.nodes))) {
      errs.required(nodesPath, `the nodes that use ${iface ? `interface ${iface}` : 'this interface'}`);
    }
    for (const { node, path: at } of nodes) {
      const first = owner.get(node);
      if (!first) owner.set(node, { entry: i, iface });
      else if (first.entry !== i) {
        errs.invalid(
          at,
          node,
          `node already has interface ${JSON.stringify(first.iface)} from ${index(path, first.entry)}: a node has one NIC per provider network`,
        );
      }
    }
    out.push({ interface: iface, nodes: [...new Set(nodes.map((n) => n.node))] });
  });
  return out;
}

/** The ProviderNetwork's own name rule on top of the DNS label rule: br-<name> is its bridge. */
function checkProviderName(errs: FieldErrors, name: string): void {
  // Longer than 63 is reported by the label rule already.
  if (name.length > MAX_PROVIDER_NAME && name.length <= 63) {
    errs.invalid('metadata.name', name, `must be no more than ${MAX_PROVIDER_NAME} characters (the node's bridge is br-<name>, a Linux interface name)`);
  }
  if (name === 'int') errs.invalid('metadata.name', name, 'br-int is the integration bridge: choose another name');
}

export function validateProviderNetwork(errs: FieldErrors, metadata: ObjectMeta, doc: Json): ProviderNetworkObj {
  checkProviderName(errs, metadata.name);
  const spec = errs.object(doc.spec, 'spec') ?? {};
  const out: ProviderNetworkObj['spec'] = {
    defaultInterface: readInterface(errs, spec.defaultInterface, 'spec.defaultInterface', 'the NIC of every node not in customInterfaces'),
    customInterfaces: readCustomInterfaces(errs, spec.customInterfaces),
    excludeNodes: [...new Set(readNodes(errs, spec.excludeNodes, 'spec.excludeNodes').map((n) => n.node))],
  };
  if (spec.nodeSelector !== undefined && spec.nodeSelector !== null) out.nodeSelector = readSelector(errs, spec.nodeSelector, 'spec.nodeSelector');
  return { kind: 'ProviderNetwork', metadata, spec: out };
}

/** A Vlan id: an integer 0..4095 at `path`, undefined when absent. */
function readVlanId(errs: FieldErrors, v: unknown, path: string): number | undefined {
  const id = errs.integer(v, path);
  if (id !== undefined && (id < 0 || id > MAX_VLAN_ID)) {
    errs.invalid(path, id, `must be between 0 and ${MAX_VLAN_ID}, inclusive (0: untagged)`);
    return undefined;
  }
  return id;
}

export function validateVlan(errs: FieldErrors, metadata: ObjectMeta, doc: Json): VlanObj {
  const spec = errs.object(doc.spec, 'spec') ?? {};
  let id = readVlanId(errs, spec.id, 'spec.id');
  // Kube-OVN before v1.9 wrote the tag as vlanId. Read silently as 0 it would put the subnet on
  // the untagged network, so an old Vlan is refused until it says id.
  const legacyId = readVlanId(errs, spec.vlanId, 'spec.vlanId');
  if (legacyId !== undefined && (spec.id === undefined || spec.id === null)) {
    errs.required('spec.id', `spec.vlanId is the name Kube-OVN before v1.9 used: write id: ${legacyId}`);
  } else if (legacyId !== undefined && id !== undefined && legacyId !== id) {
    errs.invalid('spec.vlanId', legacyId, `contradicts spec.id (${id}); remove vlanId`);
  }
  id ??= 0; // Kube-OVN's zero value: no tag.
  const provider = errs.string(spec.provider, 'spec.provider') ?? '';
  if (provider === '') {
    if (typeof (spec.provider ?? '') === 'string') {
      errs.required(
        'spec.provider',
        "the name of the ProviderNetwork carrying this VLAN (Kube-OVN's controller fills in its default provider network; ovnode has no default: name it)",
      );
    }
  } else {
    const problems = dns1123LabelErrors(provider);
    for (const m of problems) errs.invalid('spec.provider', provider, `is not a ProviderNetwork name: ${m}`);
    if (problems.length === 0 && provider.length > MAX_PROVIDER_NAME) {
      errs.invalid('spec.provider', provider, `is not a ProviderNetwork name: those have at most ${MAX_PROVIDER_NAME} characters`);
    }
  }
  return { kind: 'Vlan', metadata, spec: { id, provider } };
}
