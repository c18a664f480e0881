// MAC addresses for ports: derived from the IPv4 address under the locally administered
// 0a:58 prefix (as OVN-Kubernetes does), so a pod's MAC follows its IP and never collides
// within a subnet; random locally administered for IPv6-only ports.

import { randomBytes } from 'node:crypto';
import { parseIp } from './cidr';

export function macForIp(ip: string | undefined): string {
  if (ip && !ip.includes(':')) {
    const v = parseIp(ip).value;
    const bytes = [24n, 16n, 8n, 0n].map((s) => Number((v >> s) & 0xffn));
    return ['0a', '58', ...bytes.map((b) => b.toString(16).padStart(2, '0'))].join(':');
  }
  const b = randomBytes(6);
  b[0] = ((b[0] as number) & 0xfe) | 0x02; // unicast, locally administered
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

const MAC = /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$/;

/**
 * The MAC in canonical form (lower case, colons), or why it cannot be a port's address. Every
 * MAC a caller supplies goes through here: OVN rejects a malformed port_security line as a whole,
 * which silently turns port security off for that port.
 */
export function checkUnicastMac(text: string): { mac: string } | { error: string } {
  if (!MAC.test(text)) return { error: 'must be six hexadecimal octets separated by colons (e.g. 00:00:00:12:34:56)' };
  const mac = text.toLowerCase().replace(/-/g, ':');
  if (parseInt(mac.slice(0, 2), 16) & 1) return { error: 'must be a unicast address (the first octet must be even)' };
  if (mac === '00:00:00:00:00:00') return { error: 'must not be all zeros' };
  return { mac };
}
