// Objects from the Kubernetes API to the daemon's typed objects. The watch hands each raw object
// to a projection as soon as it is parsed, which keeps only the fields the daemon reads (a pod's
// managedFields, status and most of its spec are dropped at once: 5000 pods stay cheap), and then
// the same validators as for manifests decide: the apiserver's schema is the first line, ours the
// second, and an object ours refuses is reported with the same wording.

import { objectKey } from '../objects/object-index';
import { validateObject } from '../objects/validate';
import { SUPPORTED_KINDS } from '../objects/parse';
import type { Kind, KubeObject, RejectedObject } from '../objects/types';

/** The API collection each kind is watched at (cluster-wide): KubeStore watches every one. */
export const RESOURCE_PATHS: Readonly<Record<Kind, string>> = {
  Namespace: '/api/v1/namespaces',
  Pod: '/api/v1/pods',
  NetworkPolicy: '/apis/networking.k8s.io/v1/networkpolicies',
  Subnet: '/apis/kubeovn.io/v1/subnets',
  SecurityGroup: '/apis/kubeovn.io/v1/security-groups',
  Vip: '/apis/kubeovn.io/v1/vips',
  ProviderNetwork: '/apis/kubeovn.io/v1/provider-networks',
  Vlan: '/apis/kubeovn.io/v1/vlans',
};

/** A raw object reduced to what validation and the daemon read, plus the bookkeeping of the watch. */
export interface SlimObject {
  kind: Kind;
  /** The store's key of the object (objects/object-index objectKey). */
  key: string;
  name: string;
  /** Empty for cluster-scoped kinds. */
  namespace: string;
  resourceVersion: string;
  /** The object's uid: Events name it, so `kubectl describe` finds them. */
  uid?: string;
  /** Validated and defaulted, or why not. */
  result: { ok: true; object: KubeObject } | { ok: false; rejected: RejectedObject };
}

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function slimMeta(meta: Json): Json {
  const out: Json = { name: meta.name };
  if (meta.namespace !== undefined) out.namespace = meta.namespace;
  if (meta.labels !== undefined) out.labels = meta.labels;
  if (meta.annotations !== undefined) {
    // kubectl apply stores the whole object here: large, and never read by the daemon.
    const { 'kubectl.kubernetes.io/last-applied-configuration': _applied, ...rest } = meta.annotations as Json;
    out.annotations = rest;
  }
  return out;
}

function slimPodSpec(spec: Json): Json {
  const containers = Array.isArray(spec.containers) ? spec.containers : [];
  return {
    containers: containers.map((c: unknown) => {
      if (!isObj(c)) return c;
      return c.ports === undefined ? { name: c.name } : { name: c.name, ports: c.ports };
    }),
  };
}

/** The projection the watch of `kind` runs on every raw object; undefined for what is not an object. */
export function projectObject(kind: Kind, raw: unknown): SlimObject | undefined {
  if (!isObj(raw) || !isObj(raw.metadata)) return undefined;
  const meta = raw.metadata;
  const name = typeof meta.name === 'string' ? meta.name : '';
  const namespace = typeof meta.namespace === 'string' ? meta.namespace : '';
  const resourceVersion = typeof meta.resourceVersion === 'string' ? meta.resourceVersion : '';
  const body: Json = { apiVersion: SUPPORTED_KINDS[kind], kind, metadata: slimMeta(meta) };
  if (kind === 'Pod') body.spec = slimPodSpec(isObj(raw.spec) ? raw.spec : {});
  else if (kind !== 'Namespace') body.spec = raw.spec;
  const source = `${RESOURCE_PATHS[kind]}${namespace ? ` (${namespace})` : ''}`;
  const result = validateObject({ source, document: 1, apiVersion: SUPPORTED_KINDS[kind], kind, body: body as never });
  if (result.ok) {
    const object = result.object;
    if (typeof meta.uid === 'string') object.metadata.uid = meta.uid;
    if (object.kind === 'Pod' && isObj(raw.spec)) {
      if (typeof raw.spec.nodeName === 'string' && raw.spec.nodeName) object.spec.nodeName = raw.spec.nodeName;
      if (raw.spec.hostNetwork === true) object.spec.hostNetwork = true;
      // Its addresses are free for reuse: no other node may keep routing or admitting them to it.
      const phase = isObj(raw.status) ? raw.status.phase : undefined;
      const status: NonNullable<typeof object.status> = {};
      if (phase === 'Succeeded' || phase === 'Failed') status.finished = true;
      if (typeof meta.deletionTimestamp === 'string') status.deleting = true;
      if (typeof meta.creationTimestamp === 'string') status.createdAt = meta.creationTimestamp;
      if (Object.keys(status).length > 0) object.status = status;
    }
  }
  const slim: SlimObject = { kind, key: objectKey(kind, name, namespace), name, namespace, resourceVersion, result };
  if (typeof meta.uid === 'string') slim.uid = meta.uid;
  return slim;
}
