// Where the long patterns of deploy/00-crds.yaml come from. Each is composed here from the rules
// ovnode's validators apply (Node's net.isIP, parseCidr, String.prototype.trim), and
// crds.test.ts checks that the YAML holds exactly these strings; crd-fuzz.test.ts checks them
// against the validators. To change one: edit it here, run the test, paste the YAML scalar the
// failure prints.

/** Every character String.prototype.trim removes (ovnode trims these around values). */
export const WS_CLASS = '[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]';
const WS = `${WS_CLASS}*`;

/** An IPv4 octet as Node reads it: 0-255, no leading zeros. */
const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])';
export const IPV4 = `${OCTET}([.]${OCTET}){3}`;

const HEX = '[0-9a-fA-F]{1,4}';

/**
 * The IPv6 forms Node accepts, without a zone: eight groups; six groups and a dotted quad; and,
 * for k groups before "::", up to 7-k groups after it (or 5-k groups and a dotted quad).
 */
function ipv6Forms(): string {
  const forms = [`(${HEX}:){7}${HEX}`, `(${HEX}:){6}${IPV4}`];
  const head = (k: number): string => (k === 0 ? ':' : `(${HEX}:){${k}}`);
  for (let k = 0; k <= 7; k++) forms.push(`${head(k)}:${k < 7 ? `(${HEX}(:${HEX}){0,${6 - k}})?` : ''}`);
  for (let k = 0; k <= 5; k++) forms.push(`${head(k)}:(${HEX}:){0,${5 - k}}${IPV4}`);
  return `(${forms.join('|')})`;
}
export const IPV6_NO_ZONE = ipv6Forms();
/** Node also accepts a zone (`fe80::1%eth0`), and so does ovnode. */
export const IPV6 = `${IPV6_NO_ZONE}(%[-0-9a-zA-Z.:]+)?`;
const IP = `(${IPV4}|${IPV6})`;

// Prefix lengths as parseCidr reads them: one to three digits, leading zeros allowed.
const PREFIX4 = '(0{0,2}[0-9]|0?[12][0-9]|0?3[0-2])';
const PREFIX4_NOT_HOST = '(0{0,2}[0-9]|0?[12][0-9]|0?3[01])';
const PREFIX6 = '(0{0,2}[0-9]|0?[1-9][0-9]|1[01][0-9]|12[0-8])';
const PREFIX6_NOT_HOST = '(0{0,2}[0-9]|0?[1-9][0-9]|1[01][0-9]|12[0-7])';
const CIDR4 = `${IPV4}/${PREFIX4}`;
const CIDR6 = `${IPV6}/${PREFIX6}`;
const SUBNET4 = `${IPV4}/${PREFIX4_NOT_HOST}`;
const SUBNET6 = `${IPV6}/${PREFIX6_NOT_HOST}`;

const LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const SUBDOMAIN = `${LABEL}([.]${LABEL})*`;

export const PATTERNS = {
  /** Subnet.spec.cidrBlock: one CIDR or an IPv4,IPv6 pair (either order), not /32 or /128. */
  cidrBlock: `^${WS}(${SUBNET4}(${WS},${WS}${SUBNET6})?|${SUBNET6}(${WS},${WS}${SUBNET4})?)${WS}$`,
  /** Subnet.spec.gateway: empty, one address or two. */
  gateway: `^(${WS}${IP}(${WS},${WS}${IP})?${WS})?$`,
  /** Subnet.spec.excludeIps[]: an address or a range of one family. */
  excludeIp: `^${WS}(${IPV4}(${WS}[.][.]${WS}${IPV4})?|${IPV6}(${WS}[.][.]${WS}${IPV6})?)${WS}$`,
  /** Subnet.spec.allowSubnets[]: any CIDR. */
  allowSubnet: `^${WS}(${CIDR4}|${CIDR6})${WS}$`,
  /** Subnet.spec.acls[].match: at least one character trim() keeps. */
  nonBlank: `[^${WS_CLASS.slice(1)}`,
  /** Namespace names (RFC 1123 labels). */
  label: `^${LABEL}$`,
  /** Object names (RFC 1123 subdomains). */
  subdomain: `^${SUBDOMAIN}$`,
  /** SecurityGroup rule remoteAddress for ipv4 rules: an address, or a CIDR (trimmed). */
  remoteV4: `^(${IPV4}|${WS}${CIDR4}${WS})$`,
  remoteV6: `^(${IPV6}|${WS}${CIDR6}${WS})$`,
  /** Vip.spec.v4ip / v6ip: empty or an address. */
  v4ip: `^(${IPV4})?$`,
  v6ip: `^(${IPV6})?$`,
  /** Vip.spec.macAddress: empty or six octets, one separator throughout, first octet even. */
  mac: '^([0-9a-fA-F][02468aceACE](:[0-9a-fA-F]{2}){5}|[0-9a-fA-F][02468aceACE](-[0-9a-fA-F]{2}){5})?$',
  macZero: '^00(:00){5}$|^00(-00){5}$',
  /** IPClaim.spec.cidr: a block or one address as ovnode writes it (no spaces, zone or leading zeros in the prefix). */
  claimCidr: `^(${IPV4}/(3[0-2]|[12][0-9]|[0-9])|${IPV6_NO_ZONE}/(12[0-8]|1[01][0-9]|[1-9][0-9]|[0-9]))$`,
  /** IPClaim.spec.pod: namespace/name. */
  claimPod: `^${LABEL}/${SUBDOMAIN}$`,
  /** ProviderNetwork interface names. */
  ifName: '^[^/\t\n\v\f\r ]+$',
  vlanIfName: '^[-a-zA-Z0-9_]+[.][0-9]{1,4}$',
  /** An address claim is one address. */
  hostPrefix: '/(32|128)$',
} as const;

export type PatternName = keyof typeof PATTERNS;

/** A pattern as a YAML double-quoted scalar (control and non-ASCII characters escaped). */
export function yamlQuoted(s: string): string {
  const esc: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\v': '\\v', '\f': '\\f', '\r': '\\r' };
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    if (esc[ch]) out += esc[ch];
    else if (c < 0x20 || c > 0x7e) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}
