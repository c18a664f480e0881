// What a node tells the others on its own Node object, so that every zone can join every other
// without a controller: the OVN chassis it runs, the address its Geneve tunnels end on, and its
// zone. Versioned both ways, so that a rolling update has one version of skew in either
// direction: a node reads its peers' annotations of its own version and the one before, and a
// newer peer's too when that peer says its annotations still hold for this version's readers
// (`contract-min-reader`: a later version that only adds keys keeps it, one that changes a key's
// meaning raises it). What a node cannot read it ignores, with one warning per node. Writes are
// merge patches of these keys only.

import { isIP } from 'node:net';
import type { KubeApi } from '../sources/kube/api';

export const CONTRACT_VERSION = 1;
/** The oldest version whose readers understand what this version publishes. */
export const CONTRACT_MIN_READER = 1;
/** Versions this daemon reads (its own and the previous one, when there is one). */
export const READABLE_VERSIONS: readonly number[] = [CONTRACT_VERSION];

export const NODE_ANNOTATION = {
  version: 'ovnode.io/contract-version',
  /** The oldest contract version whose readers understand these annotations (default: the version itself). */
  minReader: 'ovnode.io/contract-min-reader',
  chassis: 'ovnode.io/chassis-id',
  encapIp: 'ovnode.io/encap-ip',
  zone: 'ovnode.io/zone',
  transitIp: 'ovnode.io/transit-ip',
} as const;

export interface NodeContract {
  chassisId: string;
  encapIp: string;
  zone: string;
  /** The node's join address (claimed, unique): other zones route replies to its ovn0 there. Optional: a peer without it is reached for pods only. */
  transitIp?: string;
}

/** A node as another node sees it. */
export interface PeerNode extends NodeContract {
  node: string;
}

export type ParsedContract = { ok: true; peer: PeerNode } | { ok: false; reason: string };

/** A chassis id OVN accepts as a name and ovs-vsctl as a system-id: no spaces, no quotes. */
const CHASSIS_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,252}$/;

/** Reads a peer's contract from its Node annotations; `ok: false` says what is missing or wrong. */
export function parseNodeContract(node: string, annotations: Readonly<Record<string, string>>): ParsedContract {
  const raw = annotations[NODE_ANNOTATION.version];
  if (raw === undefined) return { ok: false, reason: 'no ovnode contract published (ovnode not running there yet)' };
  const version = Number(raw);
  if (!Number.isInteger(version) || version < 1) return { ok: false, reason: `contract version ${JSON.stringify(raw)} is not a version number` };
  const rawMin = annotations[NODE_ANNOTATION.minReader] ?? raw;
  const minReader = Number(rawMin);
  if (!Number.isInteger(minReader) || minReader < 1 || minReader > version) {
    return { ok: false, reason: `${NODE_ANNOTATION.minReader} ${JSON.stringify(rawMin)} is not a version number up to the contract version ${version}` };
  }
  // A newer peer is read when it says readers of this version understand it (its extra keys are ignored).
  const readable = READABLE_VERSIONS.includes(version) || (version > CONTRACT_VERSION && minReader <= CONTRACT_VERSION);
  if (!readable) {
    return { ok: false, reason: `contract version ${version} (readable from version ${minReader}) is not one this daemon reads (${READABLE_VERSIONS.join(', ')}${version > CONTRACT_VERSION ? '; upgrade this node' : ''})` };
  }
  const chassisId = annotations[NODE_ANNOTATION.chassis] ?? '';
  const encapIp = annotations[NODE_ANNOTATION.encapIp] ?? '';
  const zone = annotations[NODE_ANNOTATION.zone] ?? '';
  if (!CHASSIS_ID.test(chassisId)) return { ok: false, reason: `${NODE_ANNOTATION.chassis} ${JSON.stringify(chassisId)} is not a valid chassis id` };
  if (isIP(encapIp) === 0) return { ok: false, reason: `${NODE_ANNOTATION.encapIp} ${JSON.stringify(encapIp)} is not an IP address` };
  if (zone === '') return { ok: false, reason: `${NODE_ANNOTATION.zone} is empty` };
  const transitIp = annotations[NODE_ANNOTATION.transitIp];
  if (transitIp !== undefined && isIP(transitIp) === 0) return { ok: false, reason: `${NODE_ANNOTATION.transitIp} ${JSON.stringify(transitIp)} is not an IP address` };
  return { ok: true, peer: { node, chassisId, encapIp, zone, ...(transitIp === undefined ? {} : { transitIp }) } };
}

/** The annotations that publish `c` (and nothing else). */
export function contractAnnotations(c: NodeContract): Record<string, string> {
  return {
    [NODE_ANNOTATION.version]: String(CONTRACT_VERSION),
    [NODE_ANNOTATION.minReader]: String(CONTRACT_MIN_READER),
    [NODE_ANNOTATION.chassis]: c.chassisId,
    [NODE_ANNOTATION.encapIp]: c.encapIp,
    [NODE_ANNOTATION.zone]: c.zone,
    ...(c.transitIp === undefined ? {} : { [NODE_ANNOTATION.transitIp]: c.transitIp }),
  };
}

/** Publishes this node's contract on its Node object (merge patch of the annotations only). */
export async function publishNodeContract(api: KubeApi, nodeName: string, c: NodeContract): Promise<void> {
  const res = await api.request({
    method: 'PATCH',
    path: `/api/v1/nodes/${encodeURIComponent(nodeName)}`,
    contentType: 'application/merge-patch+json',
    body: { metadata: { annotations: contractAnnotations(c) } },
  });
  if (res.status < 200 || res.status > 299) throw new Error(`PATCH node ${nodeName} annotations: HTTP ${res.status}`);
}
