// Raw object to a validated, defaulted KubeObject, or a RejectedObject worded as the API server
// (or Kube-OVN's webhook) would answer. An object with any error is refused whole.

import { FieldErrors, formatFieldError } from './field-errors';
import type { RawObject } from './parse';
import { readMeta, type MetaRules } from './validate-meta';
import { validateNetworkPolicy } from './validate-network-policy';
import { validateNamespace, validatePod } from './validate-pod';
import { validateSecurityGroup } from './validate-security-group';
import { validateSubnet } from './validate-subnet';
import { validateProviderNetwork, validateVlan } from './validate-underlay';
import { validateVip } from './validate-vip';
import type { Kind, KubeObject, ObjectMeta, RejectedObject } from './types';

export type ValidationResult = { ok: true; object: KubeObject } | { ok: false; rejected: RejectedObject };

type KindValidator = (errs: FieldErrors, metadata: ObjectMeta, doc: Record<string, unknown>) => KubeObject;

const KINDS: Record<Kind, MetaRules & { validate: KindValidator }> = {
  Namespace: { scope: 'Cluster', nameRule: 'label', validate: validateNamespace },
  Pod: { scope: 'Namespaced', nameRule: 'subdomain', validate: validatePod },
  NetworkPolicy: { scope: 'Namespaced', nameRule: 'subdomain', validate: validateNetworkPolicy },
  Subnet: { scope: 'Cluster', nameRule: 'subdomain', validate: validateSubnet },
  SecurityGroup: { scope: 'Cluster', nameRule: 'subdomain', validate: validateSecurityGroup },
  Vip: { scope: 'Cluster', nameRule: 'subdomain', validate: validateVip },
  // A label: the name becomes part of interface and OVS names (br-<name>); validate-underlay.ts adds the 12-character limit.
  ProviderNetwork: { scope: 'Cluster', nameRule: 'label', validate: validateProviderNetwork },
  Vlan: { scope: 'Cluster', nameRule: 'subdomain', validate: validateVlan },
};

/** Whether objects of `kind` live in a namespace (Pod, NetworkPolicy). */
export function isNamespaced(kind: Kind): boolean {
  return KINDS[kind].scope === 'Namespaced';
}

/** `NetworkPolicy default/ip-block`, `Subnet vswitch1`: how messages name an object. */
export function describeObject(kind: string, name: string | undefined, namespace: string | undefined): string {
  return `${kind} ${namespace ? `${namespace}/` : ''}${name || '(unnamed)'}`;
}

export function validateObject(raw: RawObject): ValidationResult {
  const rules = KINDS[raw.kind];
  const errs = new FieldErrors();
  const metadata = readMeta(errs, raw.body.metadata, rules);
  const object = rules.validate(errs, metadata, raw.body);
  if (errs.empty) return { ok: true, object };
  const rejected: RejectedObject = {
    source: raw.source,
    kind: raw.kind,
    message: `${describeObject(raw.kind, metadata.name, metadata.namespace)}: ${errs.list.map(formatFieldError).join('; ')}`,
  };
  if (metadata.name) rejected.name = metadata.name;
  if (metadata.namespace) rejected.namespace = metadata.namespace;
  return { ok: false, rejected };
}
