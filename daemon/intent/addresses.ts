// Validation of the addresses a caller may ask for (static IPs, MAC), whichever path they come
// by: runtimeConfig, args.cni, CNI_ARGS or pod annotations. A bad value is a configuration error
// (CNI code 7) naming where it came from, decided before anything is allocated or plumbed.

import { isIP } from 'node:net';
import { InvalidConfigError } from '../../common/errors';
import { checkUnicastMac } from '../ipam/mac';

/** A unicast MAC in canonical form; `source` names the field for the error message. */
export function requireMac(value: unknown, source: string): string {
  if (typeof value !== 'string') throw new InvalidConfigError(`invalid ${source}: MAC must be a string`);
  const r = checkUnicastMac(value);
  if ('error' in r) throw new InvalidConfigError(`invalid ${source}: MAC ${JSON.stringify(value)} ${r.error}`);
  return r.mac;
}

/**
 * A plain IP address from "IP" or "IP/prefix" (the ips capability carries CIDR notation; the
 * prefix itself comes from the subnet, but a malformed one is still refused).
 */
export function requireStaticIp(value: unknown, source: string): string {
  if (typeof value !== 'string') throw new InvalidConfigError(`invalid ${source}: IP must be a string`);
  const slash = value.indexOf('/');
  const ip = slash < 0 ? value : value.slice(0, slash);
  const family = isIP(ip);
  if (family === 0) throw new InvalidConfigError(`invalid ${source}: ${JSON.stringify(value)} is not an IP address`);
  if (slash >= 0) {
    const prefix = value.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > (family === 4 ? 32 : 128)) {
      throw new InvalidConfigError(`invalid ${source}: ${JSON.stringify(value)} has an invalid prefix length`);
    }
  }
  return family === 6 ? ip.toLowerCase() : ip;
}

/** Static IPs of one request: at most one per family, each valid. */
export function requireStaticIps(values: readonly unknown[], source: string): string[] {
  const ips = values.map((v) => requireStaticIp(v, source));
  const v4 = ips.filter((ip) => !ip.includes(':')).length;
  if (v4 > 1 || ips.length - v4 > 1) {
    throw new InvalidConfigError(`invalid ${source}: at most one IPv4 and one IPv6 address, got ${ips.join(',')}`);
  }
  return ips;
}
