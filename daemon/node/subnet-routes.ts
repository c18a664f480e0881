// The node's routes to its pod subnets through the node port (ovn0), kept in step with the
// Subnet objects: kubelet's probes and node-local clients reach a pod on any Subnet, not only on
// the default one (Kube-OVN routes every subnet the same way). Each route goes via the router's
// join address; routes through the node port that no subnet wants any more are removed, and
// nothing else of the node's routing table is touched.
//
// Per family: a subnet of a family the join network lacks (IPv6 with an IPv4-only join) gets
// no route, noted once in the log.

import type { Logger } from 'pino';
import { contains, parseCidr, parseIp, type Family } from '../ipam/cidr';
import type { Rtnl } from '../kernel/rtnl';
import { LatestSync } from './latest-sync';

export interface SubnetRoutesOptions {
  rtnl: Pick<Rtnl, 'getLink' | 'addRoute' | 'deleteRoute' | 'listRoutes'>;
  /** The node port's device name. */
  device: string;
  /** The router's addresses on the join network, one per family it has. */
  joinGateways: readonly string[];
  /** The join network's CIDRs: their routes are the kernel's (connected), never ours to remove. */
  joinCidrs: readonly string[];
  log: Logger;
}

const LINK_LOCAL6 = parseCidr('fe80::/10');

export class SubnetRoutes {
  readonly #sync: LatestSync<ReadonlySet<string>>;
  readonly #gateway = new Map<Family, string>();
  #warned = new Set<string>();

  constructor(private readonly opts: SubnetRoutesOptions) {
    for (const g of opts.joinGateways) this.#gateway.set(parseIp(g).family, g);
    this.#sync = new LatestSync((wanted) => this.#apply(wanted), (e) => {
      opts.log.error({ step: 'routes', err: e }, 'node routes to pod subnets failed; retried on the next change');
    });
  }

  /** Routes for exactly these CIDRs (others through the node port go); resolves once applied. */
  sync(cidrs: readonly string[]): Promise<void> {
    const wanted = new Set<string>();
    for (const c of cidrs) {
      const p = parseCidr(c);
      if (this.#gateway.has(p.family)) wanted.add(p.text);
      else if (!this.#warned.has(p.text)) {
        this.#warned.add(p.text);
        this.opts.log.warn({ step: 'routes', cidr: p.text }, `no node route to an IPv${p.family} subnet: the join network has no IPv${p.family} CIDR (--join-cidr)`);
      }
    }
    return this.#sync.request(wanted);
  }

  async #apply(wanted: ReadonlySet<string>): Promise<void> {
    const { rtnl, device, log } = this.opts;
    const link = await rtnl.getLink(device);
    if (!link) throw new Error(`node port ${device} is missing`);
    const join = new Set(this.opts.joinCidrs.map((c) => parseCidr(c).text));
    const present = new Set<string>();
    for (const [family, gateway] of this.#gateway) {
      for (const r of await rtnl.listRoutes(family)) {
        if (r.oif !== link.index || join.has(r.dst)) continue;
        // The kernel's own IPv6 routes on the device (link-local) are not subnets.
        if (family === 6 && contains(LINK_LOCAL6, parseIp(r.dst.split('/')[0] as string))) continue;
        if (wanted.has(r.dst) && r.gateway === gateway) { present.add(r.dst); continue; }
        if (await rtnl.deleteRoute({ dst: r.dst, oif: link.index, ...(r.gateway ? { gateway: r.gateway } : {}) })) {
          log.info({ step: 'routes', dst: r.dst }, 'removed the node route to a subnet that is gone');
        }
      }
    }
    for (const dst of wanted) {
      if (present.has(dst)) continue;
      const via = this.#gateway.get(parseCidr(dst).family) as string;
      await rtnl.addRoute({ dst, gateway: via, oif: link.index });
      log.info({ step: 'routes', dst, via, dev: device }, 'node route to a pod subnet');
    }
  }
}
