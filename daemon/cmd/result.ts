// The CNI result of an ADD, in the caller's spec version.

import { compareVersions, convertResult, type CniInterface, type CniResult } from '../../common/cni-spec';
import type { SubnetPool } from '../ipam/pool';
import type { NetConf } from '../intent/netconf';
import type { Attachment } from '../store/attachment';
import type { VfCheckpoint } from '../sriov/vf-checkpoint';

export interface ResultInput { attachment: Attachment; hostMac: string; pool: SubnetPool; conf: NetConf; mtu: number; vf?: VfCheckpoint }

export function buildResult({ attachment: a, hostMac, pool, conf, mtu, vf }: ResultInput): CniResult {
  const family = (ip: string): 4 | 6 => (ip.includes(':') ? 6 : 4);
  const result: CniResult = {
    cniVersion: conf.cniVersion,
    interfaces: [
      hostMac ? { name: a.hostIfName, mac: hostMac } : { name: a.hostIfName },
      podInterface(a, mtu, vf, conf),
    ],
    ips: a.ips.map((ip) => ({
      address: `${ip}/${pool.cidr(family(ip))?.prefix}`,
      gateway: pool.gateway(family(ip)) as string,
      interface: 1,
    })),
    // A secondary network (a provider's) adds no default route: that stays the cluster network's.
    routes: a.provider !== undefined ? [] : a.ips.map((ip) => ({ dst: family(ip) === 4 ? '0.0.0.0/0' : '::/0', gw: pool.gateway(family(ip)) as string })),
    dns: conf.dns ?? {},
  };
  return convertResult(result, conf.cniVersion) as unknown as CniResult;
}

/**
 * The pod's side: a netdev in its netns, or (a VF bound to vfio-pci) a device that is in no
 * netns, named by its PCI address where the spec version has the field for it (1.1.0 pciID).
 */
function podInterface(a: Attachment, mtu: number, vf: VfCheckpoint | undefined, conf: NetConf): CniInterface {
  if (!vf || vf.netdev !== undefined) return { name: a.ifName, mac: a.mac, mtu, sandbox: a.netns };
  const itf: CniInterface = { name: a.ifName, mac: a.mac };
  if (compareVersions(conf.cniVersion, '1.1.0') >= 0) itf.pciID = vf.vf;
  return itf;
}
