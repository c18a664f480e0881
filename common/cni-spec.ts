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

export interface CniInterface { name: string; mac?: string; mtu?: number; sandbox?: string }
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

/** Parses a prevResult of any supported version into the 1.x shape. */
export function normalizeResult(raw: unknown): CniResult | undefined {
  if (raw === undefined || raw === null || typeof raw !== 'object') return undefined;
  const r = raw as Record<string, unknown>;
  const ips = Array.isArray(r.ips)
    ? (r.ips as Record<string, unknown>[]).filter((ip) => typeof ip?.address === 'string').map((ip) => {
        const out: CniIpConfig = { address: String(ip.address) };
        if (typeof ip.gateway === 'string') out.gateway = ip.gateway;
        if (typeof ip.interface === 'number') out.interface = ip.interface;
        return out;
      })
    : [];
  const result: CniResult = {
    cniVersion: typeof r.cniVersion === 'string' ? r.cniVersion : '1.0.0',
    interfaces: Array.isArray(r.interfaces) ? (r.interfaces as CniInterface[]) : [],
    ips,
    routes: Array.isArray(r.routes) ? (r.routes as CniRoute[]) : [],
  };
  if (r.dns && typeof r.dns === 'object') result.dns = r.dns as CniDns;
  return result;
}
