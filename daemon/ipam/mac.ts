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
