// The CNI result of an ADD, in the caller's spec version.

import { convertResult, type CniResult } from '../../common/cni-spec';
import type { SubnetPool } from '../ipam/pool';
import type { NetConf } from '../intent/netconf';
import type { Attachment } from '../store/attachment';

export interface ResultInput { attachment: Attachment; hostMac: string; pool: SubnetPool; conf: NetConf; mtu: number }

export function buildResult({ attachment: a, hostMac, pool, conf, mtu }: ResultInput): CniResult {
  const family = (ip: string): 4 | 6 => (ip.includes(':') ? 6 : 4);
  const result: CniResult = {
    cniVersion: conf.cniVersion,
    interfaces: [
      { name: a.hostIfName, mac: hostMac },
      { name: a.ifName, mac: a.mac, mtu, sandbox: a.netns },
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
