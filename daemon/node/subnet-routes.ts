// The node's routes to its pod subnets through the node port (ovn0), kept in step with the
// Subnet objects: kubelet's probes and node-local clients reach a pod on any Subnet, not only on
// the default one (Kube-OVN routes every subnet the same way). Each route goes via the router's
// join address; routes through the node port that no subnet wants any more are removed, and
// nothing else of the node's routing table is touched.
//
// IPv4 only: the join network is IPv4, so an IPv6 subnet has no gateway on it (noted in the log).

import type { Logger } from 'pino';
import { parseCidr } from '../ipam/cidr';
import type { Rtnl } from '../kernel/rtnl';
import { LatestSync } from './latest-sync';

export interface SubnetRoutesOptions {
  rtnl: Pick<Rtnl, 'getLink' | 'addRoute' | 'deleteRoute' | 'listRoutes'>;
  /** The node port's device name. */
  device: string;
  /** The router's address on the join network. */
  joinGateway: string;
  /** The join network itself: its route is the kernel's (connected), never ours to remove. */
  joinCidr: string;
  log: Logger;
}

export class SubnetRoutes {
  readonly #sync: LatestSync<ReadonlySet<string>>;
  #warnedV6 = new Set<string>();

  constructor(private readonly opts: SubnetRoutesOptions) {
    this.#sync = new LatestSync((wanted) => this.#apply(wanted), (e) => {
      opts.log.error({ step: 'routes', err: e }, 'node routes to pod subnets failed; retried on the next change');
    });
  }

  /** Routes for exactly these CIDRs (others through the node port go); resolves once applied. */
  sync(cidrs: readonly string[]): Promise<void> {
    const v4 = new Set<string>();
    for (const c of cidrs) {
      const p = parseCidr(c);
      if (p.family === 4) v4.add(p.text);
      else if (!this.#warnedV6.has(p.text)) {
        this.#warnedV6.add(p.text);
        this.opts.log.warn({ step: 'routes', cidr: p.text }, 'no node route to an IPv6 subnet: the join network is IPv4');
      }
    }
    return this.#sync.request(v4);
  }

  async #apply(wanted: ReadonlySet<string>): Promise<void> {
    const { rtnl, device, joinGateway, joinCidr, log } = this.opts;
    const link = await rtnl.getLink(device);
    if (!link) throw new Error(`node port ${device} is missing`);
    const join = parseCidr(joinCidr).text;
    const present = new Set<string>();
    for (const r of await rtnl.listRoutes(4)) {
      if (r.oif !== link.index || r.dst === join) continue;
      if (wanted.has(r.dst) && r.gateway === joinGateway) { present.add(r.dst); continue; }
      if (await rtnl.deleteRoute({ dst: r.dst, oif: link.index, ...(r.gateway ? { gateway: r.gateway } : {}) })) {
        log.info({ step: 'routes', dst: r.dst }, 'removed the node route to a subnet that is gone');
      }
    }
    for (const dst of wanted) {
      if (present.has(dst)) continue;
      await rtnl.addRoute({ dst, gateway: joinGateway, oif: link.index });
      log.info({ step: 'routes', dst, via: joinGateway, dev: device }, 'node route to a pod subnet');
    }
  }
}
