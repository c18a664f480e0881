// kubeovn.io/v1 Vip: a reserved address in a subnet. Addresses must be of their family; a fixed
// MAC must be a usable unicast address (normalised to lower-case, colon-separated).

import { isIPv4, isIPv6 } from 'node:net';
import { FieldErrors, type Json } from './field-errors';
import type { ObjectMeta, VipObj } from './types';

const MAC = /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$/;

/** The MAC in canonical form, or an explanation of why it cannot be a port's address. */
export function checkUnicastMac(text: string): { mac: string } | { error: string } {
  if (!MAC.test(text)) return { error: 'must be six hexadecimal octets separated by colons (e.g. 00:00:00:12:34:56)' };
  const mac = text.toLowerCase().replace(/-/g, ':');
  if (parseInt(mac.slice(0, 2), 16) & 1) return { error: 'must be a unicast address (the first octet must be even)' };
  if (mac === '00:00:00:00:00:00') return { error: 'must not be all zeros' };
  return { mac };
}

export function validateVip(errs: FieldErrors, metadata: ObjectMeta, doc: Json): VipObj {
  const spec = errs.object(doc.spec, 'spec') ?? {};
  const subnet = errs.string(spec.subnet, 'spec.subnet') ?? '';
  if (subnet === '' && (spec.subnet === undefined || spec.subnet === null || spec.subnet === '')) {
    errs.required('spec.subnet', 'the name of the Subnet the address is reserved in');
  }
  const out: VipObj['spec'] = { subnet };
  const v4ip = errs.string(spec.v4ip, 'spec.v4ip');
  if (v4ip) {
    if (!isIPv4(v4ip)) errs.invalid('spec.v4ip', v4ip, 'must be a valid IPv4 address');
    out.v4ip = v4ip;
  }
  const v6ip = errs.string(spec.v6ip, 'spec.v6ip');
  if (v6ip) {
    if (!isIPv6(v6ip)) errs.invalid('spec.v6ip', v6ip, 'must be a valid IPv6 address');
    out.v6ip = v6ip.toLowerCase();
  }
  const mac = errs.string(spec.macAddress, 'spec.macAddress');
  if (mac) {
    const r = checkUnicastMac(mac);
    if ('error' in r) errs.invalid('spec.macAddress', mac, r.error);
    else out.macAddress = r.mac;
  }
  return { kind: 'Vip', metadata, spec: out };
}
