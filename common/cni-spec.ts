// CNI specification facts shared by the shim and the daemon: versions, commands, result types
// and the conversion of our internal (1.x shaped) result to the caller's spec version.

import { IncompatibleVersionError } from './errors';

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'] as const;
export type CniCommand = (typeof COMMANDS)[number];

export function isSupportedVersion(v: unknown): v is CniVersion {
  return typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** Throws code 1 with the spec's wording when the config's version is not one we speak. */
export function assertSupportedVersion(v: unknown): CniVersion {
  if (isSupportedVersion(v)) return v;
  throw new IncompatibleVersionError('incompatible CNI versions', {
    details: `config is ${JSON.stringify(v ?? null)}, plugin supports ${JSON.stringify(SUPPORTED_VERSIONS)}`,
  });
}

/** Orders dotted versions numerically (0.4.0 < 1.0.0 < 1.1.0). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export interface CniInterface {
  name: string; mac?: string; mtu?: number; sandbox?: string;
  /** 1.1.0: a device the runtime hands over by PCI address (a VF bound to vfio-pci). */
  pciID?: string;
}
export interface CniIpConfig { address: string; gateway?: string; interface?: number }
export interface CniRoute { dst: string; gw?: string }
export interface CniDns { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] }

/** A result in the 1.0.0 / 1.1.0 shape; the form every daemon component works with. */
export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIpConfig[];
  routes?: CniRoute[];
  dns?: CniDns;
}

/** 0.3.x / 0.4.0 results additionally tag each IP with its family. */
interface LegacyIpConfig extends CniIpConfig { version: '4' | '6' }

/**
 * Converts a result to the requested version. 0.3.0-0.4.0 differ from 1.x only in the per-IP
 * "version" field (CNI spec, "Version considerations"); the interface "mtu"/"sandbox" fields are
 * harmless extras for older parsers.
 */
export function convertResult(result: CniResult, to: CniVersion): Record<string, unknown> {
  const base: Record<string, unknown> = { ...result, cniVersion: to };
  if (compareVersions(to, '1.0.0') >= 0) return base;
  const ips: LegacyIpConfig[] = (result.ips ?? []).map((ip) => ({
    ...ip,
    version: ip.address.includes(':') ? '6' : '4',
  }));
  return { ...base, ips };
}

/**
 * Parses a prevResult of any supported version into the 1.x shape, checking every field it
 * keeps (CHECK compares them with the live state); throws an Error naming the bad field.
 */
export function normalizeResult(raw: unknown): CniResult | undefined {
  if (raw === undefined || raw === null || typeof raw !== 'object') return undefined;
  const r = raw as Record<string, unknown>;
  const ips = list(r.ips, 'ips').map((x, i) => {
    const ip = entry(x, `ips[${i}]`);
    const out: CniIpConfig = { address: text(ip.address, `ips[${i}].address`) as string };
    const gateway = text(ip.gateway, `ips[${i}].gateway`, true);
    if (gateway !== undefined) out.gateway = gateway;
    if (ip.interface !== undefined) {
      if (!Number.isInteger(ip.interface) || (ip.interface as number) < 0) throw new Error(`ips[${i}].interface must be a non-negative integer`);
      out.interface = ip.interface as number;
    }
    return out;
  });
  const interfaces = list(r.interfaces, 'interfaces').map((x, i) => {
    const itf = entry(x, `interfaces[${i}]`);
    const out: CniInterface = { name: text(itf.name, `interfaces[${i}].name`) as string };
    const mac = text(itf.mac, `interfaces[${i}].mac`, true);
    if (mac !== undefined) out.mac = mac;
    const sandbox = text(itf.sandbox, `interfaces[${i}].sandbox`, true);
    if (sandbox !== undefined) out.sandbox = sandbox;
    if (typeof itf.mtu === 'number') out.mtu = itf.mtu;
    return out;
  });
  const routes = list(r.routes, 'routes').map((x, i) => {
    const route = entry(x, `routes[${i}]`);
    const out: CniRoute = { dst: text(route.dst, `routes[${i}].dst`) as string };
    const gw = text(route.gw, `routes[${i}].gw`, true);
    if (gw !== undefined) out.gw = gw;
    return out;
  });
  const result: CniResult = { cniVersion: typeof r.cniVersion === 'string' ? r.cniVersion : '1.0.0', interfaces, ips, routes };
  if (r.dns !== undefined && r.dns !== null) result.dns = parseDns(r.dns, 'dns');
  return result;
}

/** The CNI "dns" type: strings only (it is echoed back to the runtime). */
export function parseDns(v: unknown, field: string): CniDns {
  const o = entry(v, field);
  const dns: CniDns = {};
  for (const key of Object.keys(o)) {
    if (!['nameservers', 'domain', 'search', 'options'].includes(key)) throw new Error(`${field}.${key} is not a CNI dns field (nameservers, domain, search, options)`);
  }
  const domain = text(o.domain, `${field}.domain`, true);
  if (domain !== undefined) dns.domain = domain;
  for (const key of ['nameservers', 'search', 'options'] as const) {
    const items = o[key];
    if (items === undefined) continue;
    if (!Array.isArray(items) || !items.every((x) => typeof x === 'string')) throw new Error(`${field}.${key} must be an array of strings`);
    dns[key] = [...(items as string[])];
  }
  return dns;
}

function list(v: unknown, field: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new Error(`${field} must be an array`);
  return v;
}

function entry(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${field} must be an object`);
  return v as Record<string, unknown>;
}

function text(v: unknown, field: string, optional = false): string | undefined {
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'string') throw new Error(`${field} must be a string`);
  return v;
}
