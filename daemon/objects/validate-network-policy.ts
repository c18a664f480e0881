// networking.k8s.io/v1 NetworkPolicy: the API server's defaulting (SetDefaults_NetworkPolicy) and
// validation (ValidateNetworkPolicySpec), with its messages, over an untyped document.

import { contains, parseCidr, type Cidr } from '../ipam/cidr';
import { child, FieldErrors, index, type Json } from './field-errors';
import { checkPortNumber, portNameErrors, readSelector } from './validate-meta';
import type { IpBlock, NetworkPolicyObj, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicyRule, ObjectMeta } from './types';

const PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;
const POLICY_TYPES = ['Ingress', 'Egress'] as const;

const CIDR_HINT = 'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)';

function tryCidr(text: string): Cidr | undefined {
  try {
    return parseCidr(text);
  } catch {
    return undefined;
  }
}

function readIpBlock(errs: FieldErrors, obj: Json, path: string): IpBlock {
  errs.knownFields(obj, path, ['cidr', 'except']);
  const cidrPath = child(path, 'cidr');
  const cidr = errs.string(obj.cidr, cidrPath) ?? '';
  const except: string[] = [];
  const exceptItems = errs.array(obj.except, child(path, 'except'));
  if (cidr === '') {
    errs.required(cidrPath);
    return { cidr, except };
  }
  const outer = tryCidr(cidr);
  if (!outer) errs.invalid(cidrPath, cidr, CIDR_HINT);
  exceptItems.forEach((x, i) => {
    const p = index(child(path, 'except'), i);
    const text = errs.string(x, p);
    if (text === undefined) return;
    except.push(text);
    const inner = tryCidr(text);
    if (!inner) errs.invalid(p, text, CIDR_HINT);
    else if (outer && !strictSubset(inner, outer)) errs.invalid(p, text, 'must be a strict subset of `cidr`');
  });
  return { cidr, except };
}

function strictSubset(inner: Cidr, outer: Cidr): boolean {
  if (inner.family !== outer.family || inner.prefix <= outer.prefix) return false;
  return contains(outer, { family: inner.family, value: inner.network });
}

function readPeer(errs: FieldErrors, v: unknown, path: string): NetworkPolicyPeer | undefined {
  const obj = errs.object(v, path) ?? {};
  errs.knownFields(obj, path, ['podSelector', 'namespaceSelector', 'ipBlock']);
  const peer: NetworkPolicyPeer = {};
  const set = (k: string) => obj[k] !== undefined && obj[k] !== null;
  if (set('podSelector')) peer.podSelector = readSelector(errs, obj.podSelector, child(path, 'podSelector'));
  if (set('namespaceSelector')) {
    peer.namespaceSelector = readSelector(errs, obj.namespaceSelector, child(path, 'namespaceSelector'));
  }
  const ipBlock = errs.object(obj.ipBlock, child(path, 'ipBlock'));
  if (ipBlock) peer.ipBlock = readIpBlock(errs, ipBlock, child(path, 'ipBlock'));
  const kinds = Object.keys(peer).length;
  if (kinds === 0 && !set('ipBlock')) {
    errs.required(path, 'must specify a peer');
    return undefined;
  }
  if (kinds > 1 && peer.ipBlock) errs.forbidden(path, 'may not specify both ipBlock and another peer');
  return peer;
}

function readPort(errs: FieldErrors, v: unknown, path: string): NetworkPolicyPort {
  const obj = errs.object(v, path) ?? {};
  errs.knownFields(obj, path, ['protocol', 'port', 'endPort']);
  // SetDefaults_NetworkPolicy: an unset protocol is TCP.
  const out: NetworkPolicyPort = { protocol: errs.oneOf(obj.protocol, child(path, 'protocol'), PROTOCOLS) ?? 'TCP' };
  const portPath = child(path, 'port');
  const endPath = child(path, 'endPort');
  const endPort = errs.integer(obj.endPort, endPath);
  const raw = obj.port;
  if (typeof raw === 'number') {
    // An IntOrString: a bare number is a port number, anything quoted is a port name.
    const port = errs.integer(raw, portPath);
    if (port === undefined) return out;
    checkPortNumber(errs, port, portPath);
    out.port = port;
    if (endPort !== undefined) {
      if (endPort < port) errs.invalid(endPath, endPort, 'must be greater than or equal to `port`');
      checkPortNumber(errs, endPort, endPath);
      out.endPort = endPort;
    }
  } else if (raw !== undefined && raw !== null) {
    const name = errs.string(raw, portPath);
    if (name === undefined) return out;
    for (const m of portNameErrors(name)) errs.invalid(portPath, name, m);
    if (endPort !== undefined) errs.invalid(endPath, endPort, 'may not be specified when `port` is non-numeric');
    out.port = name;
  } else if (endPort !== undefined) {
    errs.invalid(endPath, endPort, 'may not be specified when `port` is not specified');
  }
  return out;
}

function readRules(errs: FieldErrors, v: unknown, path: string, peersField: 'from' | 'to'): NetworkPolicyRule[] {
  return errs.array(v, path).map((item, i) => {
    const rulePath = index(path, i);
    const obj = errs.object(item, rulePath) ?? {};
    errs.knownFields(obj, rulePath, ['ports', peersField]);
    const portsPath = child(rulePath, 'ports');
    const ports = errs.array(obj.ports, portsPath).map((p, j) => readPort(errs, p, index(portsPath, j)));
    const peersPath = child(rulePath, peersField);
    const peers: NetworkPolicyPeer[] = [];
    errs.array(obj[peersField], peersPath).forEach((p, j) => {
      const peer = readPeer(errs, p, index(peersPath, j));
      if (peer) peers.push(peer);
    });
    return { peers, ports };
  });
}

function readPolicyTypes(errs: FieldErrors, v: unknown, egressRules: number): Array<'Ingress' | 'Egress'> {
  const items = errs.array(v, 'spec.policyTypes');
  if (items.length === 0) {
    // SetDefaults_NetworkPolicy: Ingress always, Egress when there are egress rules.
    return egressRules > 0 ? ['Ingress', 'Egress'] : ['Ingress'];
  }
  if (items.length > POLICY_TYPES.length) {
    errs.invalid('spec.policyTypes', items, 'may not specify more than two policyTypes');
    return [];
  }
  const out: Array<'Ingress' | 'Egress'> = [];
  items.forEach((x, i) => {
    const t = errs.oneOf(x, index('spec.policyTypes', i), POLICY_TYPES);
    if (t && !out.includes(t)) out.push(t);
  });
  return out;
}

/**
 * spec.podSelector may be omitted: the API server decodes it as `{}` (all pods of the namespace),
 * and Kubernetes documents it as optional since kubernetes/kubernetes#131354.
 */
export function validateNetworkPolicy(errs: FieldErrors, metadata: ObjectMeta, doc: Json): NetworkPolicyObj {
  const spec = errs.object(doc.spec, 'spec') ?? {};
  errs.knownFields(spec, 'spec', ['podSelector', 'policyTypes', 'ingress', 'egress']);
  const podSelector = readSelector(errs, spec.podSelector, 'spec.podSelector');
  const ingress = readRules(errs, spec.ingress, 'spec.ingress', 'from');
  const egress = readRules(errs, spec.egress, 'spec.egress', 'to');
  const policyTypes = readPolicyTypes(errs, spec.policyTypes, egress.length);
  return { kind: 'NetworkPolicy', metadata, spec: { podSelector, policyTypes, ingress, egress } };
}
