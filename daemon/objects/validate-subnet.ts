// kubeovn.io/v1 Subnet: the checks of Kube-OVN's webhook (pkg/util/validator.go ValidateSubnet)
// and CRD schema for the fields ovnode uses, plus the controller's defaulting (gateway, protocol,
// gateway added to excludeIps). `vlan` makes it an underlay subnet (validate-underlay.ts).

import { contains, formatIp, lastAddress, parseCidr, parseIp, type Cidr, type Family } from '../ipam/cidr';
import { child, FieldErrors, index, type Json } from './field-errors';
import { dns1123LabelErrors, dns1123SubdomainErrors } from './validate-meta';
import type { ObjectMeta, SubnetAcl, SubnetAclAction, SubnetObj } from './types';

const ACL_ACTIONS: readonly SubnetAclAction[] = ['allow', 'allow-related', 'allow-stateless', 'drop', 'reject'];
const ACL_DIRECTIONS = ['from-lport', 'to-lport'] as const;
const PROTOCOLS = ['IPv4', 'IPv6', 'Dual'] as const;

type Ip = { family: Family; value: bigint };

function tryIp(text: string): Ip | undefined {
  try {
    return parseIp(text);
  } catch {
    return undefined;
  }
}

function readCidrBlock(errs: FieldErrors, spec: Json): Cidr[] {
  const path = 'spec.cidrBlock';
  const text = errs.string(spec.cidrBlock, path);
  if (text === undefined || text.trim() === '') {
    if (spec.cidrBlock === undefined || spec.cidrBlock === null || text !== undefined) errs.required(path);
    return [];
  }
  const parts = text.split(',').map((s) => s.trim());
  if (parts.length > 2) {
    errs.invalid(path, text, 'must be one CIDR or an IPv4,IPv6 pair');
    return [];
  }
  const cidrs: Cidr[] = [];
  for (const part of parts) {
    let c: Cidr;
    try {
      c = parseCidr(part);
    } catch {
      errs.invalid(path, text, `${JSON.stringify(part)} is not a valid CIDR (e.g. 10.16.0.0/16 or fd00:10:16::/64)`);
      continue;
    }
    if (c.prefix === (c.family === 4 ? 32 : 128)) {
      errs.invalid(path, text, `${part} has a /${c.prefix} mask and so no addresses to hand out`);
      continue;
    }
    cidrs.push(c);
  }
  if (cidrs.length === 2 && cidrs[0]?.family === cidrs[1]?.family) {
    errs.invalid(path, text, 'a dual-stack cidrBlock is one IPv4 and one IPv6 CIDR');
    return [];
  }
  return cidrs.length === parts.length ? cidrs : [];
}

function cidrFor(cidrs: Cidr[], ip: Ip): Cidr | undefined {
  return cidrs.find((c) => c.family === ip.family);
}

function readGateway(errs: FieldErrors, spec: Json, cidrs: Cidr[]): string {
  const path = 'spec.gateway';
  const text = errs.string(spec.gateway, path);
  if (text === undefined || text === '') {
    // Kube-OVN's default: the first address of each CIDR, in cidrBlock order.
    return cidrs.map((c) => formatIp(c.family, c.network + 1n)).join(',');
  }
  const parts = text.split(',').map((s) => s.trim());
  if (cidrs.length > 0 && parts.length !== cidrs.length) {
    errs.invalid(path, text, `must hold one address per CIDR of cidrBlock (${cidrs.length})`);
    return text;
  }
  for (const part of parts) {
    const ip = tryIp(part);
    if (!ip) {
      errs.invalid(path, text, `${JSON.stringify(part)} is not a valid IP address`);
      continue;
    }
    const cidr = cidrFor(cidrs, ip);
    if (!cidr) {
      if (cidrs.length > 0) errs.invalid(path, text, `gateway ${part} is not in cidr ${cidrs.map((c) => c.text).join(',')}`);
      continue;
    }
    if (!contains(cidr, ip)) errs.invalid(path, text, `gateway ${part} is not in cidr ${cidr.text}`);
    else if (ip.value === cidr.network) errs.invalid(path, text, `${part} is the network number ip in cidr ${cidr.text}`);
    else if (cidr.family === 4 && ip.value === lastAddress(cidr)) {
      errs.invalid(path, text, `${part} is the broadcast ip in cidr ${cidr.text}`);
    }
  }
  return parts.join(',');
}

/** One excludeIps entry: an address or an `a..b` range, inside the CIDR of its family. */
function checkExclude(errs: FieldErrors, entry: string, path: string, cidrs: Cidr[]): { from: Ip; to: Ip } | undefined {
  const ends = entry.split('..');
  if (ends.length > 2) {
    errs.invalid(path, entry, 'must be an IP address or a range "first..last"');
    return undefined;
  }
  const ips: Ip[] = [];
  for (const end of ends) {
    const ip = tryIp(end.trim());
    if (!ip) {
      errs.invalid(path, entry, `${JSON.stringify(end)} is not a valid IP address`);
      return undefined;
    }
    ips.push(ip);
  }
  const from = ips[0] as Ip;
  const to = ips[ips.length - 1] as Ip;
  if (from.family !== to.family || from.value > to.value) {
    errs.invalid(path, entry, 'is not a valid ip range: the first address must not be after the last, in one family');
    return undefined;
  }
  const cidr = cidrFor(cidrs, from);
  if (cidrs.length > 0 && (!cidr || !contains(cidr, from) || !contains(cidr, to))) {
    errs.invalid(path, entry, `is not in cidr ${cidrs.map((c) => c.text).join(',')}`);
    return undefined;
  }
  return { from, to };
}

function readExcludeIps(errs: FieldErrors, spec: Json, cidrs: Cidr[], gateway: string): string[] {
  const path = 'spec.excludeIps';
  const out: string[] = [];
  const ranges: Array<{ from: Ip; to: Ip }> = [];
  errs.array(spec.excludeIps, path).forEach((x, i) => {
    const entry = errs.string(x, index(path, i));
    if (entry === undefined) return;
    const range = checkExclude(errs, entry.trim(), index(path, i), cidrs);
    if (range) ranges.push(range);
    out.push(entry.trim());
  });
  // The Kube-OVN controller reserves the gateway by adding it to excludeIps.
  for (const gw of gateway === '' ? [] : gateway.split(',')) {
    const ip = tryIp(gw);
    if (!ip) continue;
    const covered = ranges.some((r) => r.from.family === ip.family && r.from.value <= ip.value && ip.value <= r.to.value);
    if (!covered) out.push(gw);
  }
  return out;
}

function readAcl(errs: FieldErrors, v: unknown, path: string): SubnetAcl | undefined {
  const obj = errs.object(v, path) ?? {};
  errs.knownFields(obj, path, ['action', 'direction', 'match', 'priority']);
  const need = (k: string) => {
    if (obj[k] === undefined || obj[k] === null) errs.required(child(path, k));
  };
  ['action', 'direction', 'match', 'priority'].forEach(need);
  const action = errs.oneOf(obj.action, child(path, 'action'), ACL_ACTIONS);
  const direction = errs.oneOf(obj.direction, child(path, 'direction'), ACL_DIRECTIONS);
  const match = errs.string(obj.match, child(path, 'match'));
  if (match !== undefined && match.trim() === '') errs.invalid(child(path, 'match'), match, 'must be a non-empty OVN match expression');
  const priority = errs.integer(obj.priority, child(path, 'priority'));
  if (priority !== undefined && (priority < 0 || priority > 32767)) {
    errs.invalid(child(path, 'priority'), priority, 'must be between 0 and 32767, inclusive');
  }
  if (action === undefined || direction === undefined || match === undefined || priority === undefined) return undefined;
  return { action, direction, match, priority };
}

function readStrings(errs: FieldErrors, v: unknown, path: string, check: (s: string, p: string) => void): string[] {
  const out: string[] = [];
  errs.array(v, path).forEach((x, i) => {
    const s = errs.string(x, index(path, i));
    if (s === undefined) return;
    check(s, index(path, i));
    out.push(s);
  });
  return out;
}

/** spec.vlan: a Vlan's name (the Vlan itself may come later); '' and absent mean overlay. */
function readVlanRef(errs: FieldErrors, v: unknown): string | undefined {
  const vlan = errs.string(v, 'spec.vlan');
  if (!vlan) return undefined;
  for (const m of dns1123SubdomainErrors(vlan)) errs.invalid('spec.vlan', vlan, `is not a Vlan name: ${m}`);
  return vlan;
}

function readLogicalGateway(errs: FieldErrors, spec: Json): boolean {
  const logical = errs.boolean(spec.logicalGateway, 'spec.logicalGateway') ?? false;
  // Kube-OVN's webhook: with OVN as the gateway there is no underlay-to-overlay link to make.
  if (logical && spec.u2oInterconnection === true) {
    errs.forbidden('spec.logicalGateway', "logicalGateway and u2oInterconnection can't both be true");
  }
  return logical;
}

export function validateSubnet(errs: FieldErrors, metadata: ObjectMeta, doc: Json): SubnetObj {
  const spec = errs.object(doc.spec, 'spec') ?? {};
  const cidrs = readCidrBlock(errs, spec);
  const derived = cidrs.length === 2 ? 'Dual' : cidrs[0]?.family === 6 ? 'IPv6' : 'IPv4';
  const protocol = errs.oneOf(spec.protocol, 'spec.protocol', PROTOCOLS);
  if (protocol !== undefined && cidrs.length > 0 && protocol !== derived) {
    errs.invalid('spec.protocol', protocol, `does not match cidrBlock, which is ${derived}`);
  }
  const gateway = readGateway(errs, spec, cidrs);
  const excludeIps = readExcludeIps(errs, spec, cidrs, gateway);
  const acls: SubnetAcl[] = [];
  errs.array(spec.acls, 'spec.acls').forEach((x, i) => {
    const acl = readAcl(errs, x, index('spec.acls', i));
    if (acl) acls.push(acl);
  });
  const namespaces = readStrings(errs, spec.namespaces, 'spec.namespaces', (s, p) => {
    for (const m of dns1123LabelErrors(s)) errs.invalid(p, s, m);
  });
  const allowSubnets = readStrings(errs, spec.allowSubnets, 'spec.allowSubnets', (s, p) => {
    try {
      parseCidr(s);
    } catch {
      errs.invalid(p, s, 'is not a valid CIDR');
    }
  });
  const out: SubnetObj['spec'] = {
    cidrBlock: cidrs.map((c) => c.text).join(','),
    gateway,
    excludeIps,
    acls,
    namespaces,
    provider: errs.string(spec.provider, 'spec.provider') || 'ovn',
    private: errs.boolean(spec.private, 'spec.private') ?? false,
    allowSubnets,
    protocol: protocol ?? derived,
    logicalGateway: readLogicalGateway(errs, spec),
  };
  const vpc = errs.string(spec.vpc, 'spec.vpc');
  if (vpc) out.vpc = vpc;
  const vlan = readVlanRef(errs, spec.vlan);
  if (vlan) out.vlan = vlan;
  return { kind: 'Subnet', metadata, spec: out };
}
