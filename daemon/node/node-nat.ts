// The node's kernel side of egress and NodePort, one nftables table `inet ovnode` (both families)
// replaced as a whole (one atomic nft transaction) whenever it changes:
//
// - Egress: each zone's router sends traffic for outside the cluster to its own node's ovn0
//   (a default route via the node's join address), and the node forwards it with SNAT to the
//   address of the interface it leaves by: `iifname ovn0 oifname != ovn0 masquerade`. Only new
//   connections go through a nat chain, so replies (NodePort's included) are left alone.
// - NodePort: a packet to a local address on a node port is DNATed to the Service's ClusterIP
//   (routed into ovn0, where the load balancer picks a ready backend on any node) and SNATed to
//   the join address on its way into ovn0, so the backend's reply comes back through this node
//   (its node's router routes the join address to this zone) and conntrack undoes both.
//
// Start-up and Service changes only: the ADD/DEL path never runs nft.

import { execFile } from 'node:child_process';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { LatestSync } from './latest-sync';
import type { NodePortRule } from '../services/types';

export const NAT_TABLE = 'ovnode';

export type { NodePortRule } from '../services/types';

export interface NodeNatSpec {
  /** The node port into OVN (ovn0). */
  podInterface: string;
  nodePorts: readonly NodePortRule[];
}

/** Runs an nft script; rejects with nft's message. */
export type NftRunner = (script: string) => Promise<void>;

const IFNAME = /^[A-Za-z0-9_.:-]{1,15}$/;

/** The whole table for this spec: a script nft applies atomically (the table is replaced). */
export function nftScript(spec: NodeNatSpec): string {
  if (!IFNAME.test(spec.podInterface)) throw new Error(`not an interface name: ${JSON.stringify(spec.podInterface)}`);
  const dnat: string[] = [];
  const seen = new Set<string>();
  for (const r of [...spec.nodePorts].sort((a, b) => a.nodePort - b.nodePort || a.protocol.localeCompare(b.protocol))) {
    // A dual-stack Service has a ClusterIP per family: each family's node addresses go to its own.
    // Node ports are unique per protocol cluster-wide; a duplicate would be a bug upstream.
    const family = isIP(r.clusterIp);
    if (family === 0 || !Number.isInteger(r.nodePort) || !Number.isInteger(r.port)) continue;
    const key = `${family}/${r.protocol}/${r.nodePort}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const [proto, to] = family === 4 ? ['ip', `${r.clusterIp}:${r.port}`] : ['ip6', `[${r.clusterIp}]:${r.port}`];
    dnat.push(`    meta nfproto ${family === 4 ? 'ipv4' : 'ipv6'} fib daddr type local ${r.protocol} dport ${r.nodePort} dnat ${proto} to ${to}`);
  }
  const i = spec.podInterface;
  return [
    `table inet ${NAT_TABLE}`,
    `delete table inet ${NAT_TABLE}`,
    // The IPv4-only table of earlier versions, gone on an upgrade.
    `table ip ${NAT_TABLE}`,
    `delete table ip ${NAT_TABLE}`,
    `table inet ${NAT_TABLE} {`,
    '  chain nodeports {',
    ...dnat,
    '  }',
    '  chain prerouting {',
    '    type nat hook prerouting priority -100; policy accept;',
    '    jump nodeports',
    '  }',
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    '    jump nodeports',
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority 100; policy accept;',
    `    oifname "${i}" ct status dnat masquerade`,
    `    iifname "${i}" oifname != "${i}" masquerade`,
    '  }',
    '}',
    '',
  ].join('\n');
}

export const runNft: NftRunner = (script) => new Promise((resolve, reject) => {
  const child = execFile('nft', ['-f', '-'], { timeout: 10_000 }, (err, _stdout, stderr) => {
    if (err) reject(new Error(`nft: ${stderr.trim() || err.message}`));
    else resolve();
  });
  child.stdin?.end(script);
});

export class NodeNat {
  readonly #sync: LatestSync<NodeNatSpec>;
  #applied = '';

  constructor(private readonly opts: { log: Logger; run?: NftRunner }) {
    this.#sync = new LatestSync((spec) => this.#apply(spec), (e) => {
      opts.log.error({ step: 'node-nat', err: e }, 'programming the node\'s NAT failed; retried on the next change');
    });
  }

  /** Resolves once a pass with this spec (or a later one) has ended; it fails only by logging. */
  sync(spec: NodeNatSpec): Promise<void> {
    return this.#sync.request(spec);
  }

  /** Like sync, but rejects when nft refused the table (start-up: a node without it cannot forward). */
  async apply(spec: NodeNatSpec): Promise<void> {
    await this.#apply(spec);
  }

  async #apply(spec: NodeNatSpec): Promise<void> {
    const script = nftScript(spec);
    if (script === this.#applied) return;
    const started = performance.now();
    await (this.opts.run ?? runNft)(script);
    this.#applied = script;
    this.opts.log.info({ step: 'node-nat', nodePorts: spec.nodePorts.length, ms: +(performance.now() - started).toFixed(1) }, 'node NAT programmed');
  }
}
