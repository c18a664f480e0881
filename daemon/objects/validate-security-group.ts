// kubeovn.io/v1 SecurityGroup: the CRD enums and the checks of Kube-OVN's webhook
// (validateSgRule): priority 1..200, remote by address or by group, port ranges for tcp/udp.

import { parseCidr, parseIp, type Family } from '../ipam/cidr';
import { child, FieldErrors, index, type Json } from './field-errors';
import { dns1123SubdomainErrors } from './validate-meta';
import type { ObjectMeta, SecurityGroupObj, SecurityGroupRule } from './types';

const IP_VERSIONS = ['ipv4', 'ipv6'] as const;
const PROTOCOLS = ['all', 'icmp', 'tcp', 'udp'] as const;
const REMOTE_TYPES = ['address', 'securityGroup'] as const;
const POLICIES = ['allow', 'drop'] as const;
const RULE_FIELDS = [
  'ipVersion',
  'protocol',
  'priority',
  'remoteType',
  'remoteAddress',
  'remoteSecurityGroup',
  'portRangeMin',
  'portRangeMax',
  'policy',
];

/** The family of an address or CIDR, or undefined when it is neither. */
function addressFamily(text: string): Family | undefined {
  try {
    return text.includes('/') ? parseCidr(text).family : parseIp(text).family;
  } catch {
    return undefined;
  }
}

function readRemote(errs: FieldErrors, obj: Json, path: string, rule: SecurityGroupRule): void {
  const addrPath = child(path, 'remoteAddress');
  const sgPath = child(path, 'remoteSecurityGroup');
  const address = errs.string(obj.remoteAddress, addrPath) ?? '';
  const group = errs.string(obj.remoteSecurityGroup, sgPath) ?? '';
  if (rule.remoteType === 'address') {
    if (group !== '') errs.forbidden(sgPath, 'may not be set when remoteType is address');
    if (address === '') {
      errs.required(addrPath, 'must be set when remoteType is address (an IP address or a CIDR)');
      return;
    }
    const family = addressFamily(address);
    if (family === undefined) errs.invalid(addrPath, address, 'must be an IP address or a CIDR');
    else if (`ipv${family}` !== rule.ipVersion) {
      errs.invalid(addrPath, address, `is an IPv${family} address but ipVersion is ${rule.ipVersion}`);
    }
    rule.remoteAddress = address;
  } else {
    if (address !== '') errs.forbidden(addrPath, 'may not be set when remoteType is securityGroup');
    if (group === '') {
      errs.required(sgPath, 'must be set when remoteType is securityGroup');
      return;
    }
    for (const m of dns1123SubdomainErrors(group)) errs.invalid(sgPath, group, m);
    rule.remoteSecurityGroup = group;
  }
}

function readPorts(errs: FieldErrors, obj: Json, path: string, rule: SecurityGroupRule): void {
  const minPath = child(path, 'portRangeMin');
  const maxPath = child(path, 'portRangeMax');
  const min = errs.integer(obj.portRangeMin, minPath);
  const max = errs.integer(obj.portRangeMax, maxPath);
  if (rule.protocol !== 'tcp' && rule.protocol !== 'udp') {
    if (min !== undefined) errs.forbidden(minPath, `may only be set when protocol is tcp or udp, not ${rule.protocol}`);
    if (max !== undefined) errs.forbidden(maxPath, `may only be set when protocol is tcp or udp, not ${rule.protocol}`);
    return;
  }
  // The webhook refuses an absent (zero) bound for tcp/udp rather than reading it as "any".
  const hint = 'must be set for tcp and udp rules (1 and 65535 cover every port)';
  let ok = true;
  const bounds = [
    { key: 'portRangeMin', path: minPath, value: min },
    { key: 'portRangeMax', path: maxPath, value: max },
  ];
  for (const b of bounds) {
    if (b.value === undefined) {
      if (obj[b.key] === undefined || obj[b.key] === null) errs.required(b.path, hint);
      ok = false;
    } else if (b.value < 1 || b.value > 65535) {
      errs.invalid(b.path, b.value, 'must be between 1 and 65535, inclusive');
      ok = false;
    }
  }
  if (!ok || min === undefined || max === undefined) return;
  if (min > max) errs.invalid(maxPath, max, `must be greater than or equal to portRangeMin (${min})`);
  rule.portRangeMin = min;
  rule.portRangeMax = max;
}

function readRule(errs: FieldErrors, v: unknown, path: string): SecurityGroupRule | undefined {
  const obj = errs.object(v, path) ?? {};
  errs.knownFields(obj, path, RULE_FIELDS);
  for (const k of ['protocol', 'priority', 'remoteType', 'policy']) {
    if (obj[k] === undefined || obj[k] === null) errs.required(child(path, k));
  }
  const ipVersion = errs.oneOf(obj.ipVersion, child(path, 'ipVersion'), IP_VERSIONS) ?? 'ipv4';
  const protocol = errs.oneOf(obj.protocol, child(path, 'protocol'), PROTOCOLS);
  const remoteType = errs.oneOf(obj.remoteType, child(path, 'remoteType'), REMOTE_TYPES);
  const policy = errs.oneOf(obj.policy, child(path, 'policy'), POLICIES);
  const priority = errs.integer(obj.priority, child(path, 'priority'));
  if (priority !== undefined && (priority < 1 || priority > 200)) {
    errs.invalid(child(path, 'priority'), priority, 'must be between 1 and 200, inclusive (lower is evaluated first)');
  }
  if (!protocol || !remoteType || !policy || priority === undefined) return undefined;
  const rule: SecurityGroupRule = { ipVersion, protocol, priority, remoteType, policy };
  readRemote(errs, obj, path, rule);
  readPorts(errs, obj, path, rule);
  return rule;
}

function readRules(errs: FieldErrors, v: unknown, path: string): SecurityGroupRule[] {
  const out: SecurityGroupRule[] = [];
  errs.array(v, path).forEach((x, i) => {
    const r = readRule(errs, x, index(path, i));
    if (r) out.push(r);
  });
  return out;
}

export function validateSecurityGroup(errs: FieldErrors, metadata: ObjectMeta, doc: Json): SecurityGroupObj {
  const spec = errs.object(doc.spec, 'spec') ?? {};
  return {
    kind: 'SecurityGroup',
    metadata,
    spec: {
      ingressRules: readRules(errs, spec.ingressRules, 'spec.ingressRules'),
      egressRules: readRules(errs, spec.egressRules, 'spec.egressRules'),
      allowSameGroupTraffic: errs.boolean(spec.allowSameGroupTraffic, 'spec.allowSameGroupTraffic') ?? false,
    },
  };
}
