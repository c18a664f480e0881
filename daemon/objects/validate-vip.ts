// kubeovn.io/v1 Vip: a reserved address in a subnet. Addresses must be of their family; a fixed
// MAC must be a usable unicast address (normalised to lower-case, colon-separated).

import { isIPv4, isIPv6 } from 'node:net';
import { checkUnicastMac } from '../ipam/mac';
import { FieldErrors, type Json } from './field-errors';
import type { ObjectMeta, VipObj } from './types';


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
