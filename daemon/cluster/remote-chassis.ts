// Other nodes' chassis in this node's southbound database, as OVN interconnect does it without
// ovn-ic: one Chassis per peer with `other_config:is-remote=true` and its Geneve encap, so that
// this zone's ovn-controller builds a tunnel to it and ports bound to it are reached through it.
// The rows carry the peer's node name in external_ids: only those are ever changed or removed,
// never the local chassis that ovn-controller registers itself. One SB transaction per pass.

import type { Logger } from 'pino';
import type { OvsdbClient } from '../ovsdb/client';
import type { Operation } from '../ovsdb/types';
import { asArray, asMap, namedUuid, ovsMap, ovsSet, uuid, type Row } from '../ovsdb/values';
import { SB } from '../ovs/schema';
import { LatestSync } from '../node/latest-sync';
import type { PeerNode } from './node-contract';
import { isRemoteNodeRow, REMOTE_NODE } from '../store/external-ids';

const ENCAP = 'Encap';

export interface RemoteChassisOptions {
  sb: Pick<OvsdbClient, 'rows' | 'transact'>;
  /** This node's own chassis: never written, and a peer claiming it is refused. */
  localChassis: string;
  log: Logger;
}

export class RemoteChassis {
  readonly #sync: LatestSync<readonly PeerNode[]>;
  readonly #conflicts = new Set<string>();

  constructor(private readonly opts: RemoteChassisOptions) {
    this.#sync = new LatestSync((peers) => this.#apply(peers), (e) => {
      opts.log.error({ step: 'interconnect', err: e }, 'writing remote chassis failed; retried on the next change');
    });
  }

  /** Makes the remote chassis exactly these peers (this node's own entry, if any, is skipped). */
  sync(peers: readonly PeerNode[]): Promise<void> {
    return this.#sync.request(peers);
  }

  async #apply(peers: readonly PeerNode[]): Promise<void> {
    const ops = planRemoteChassis(this.opts.sb, peers, this.opts.localChassis, (peer, why) => {
      const key = `${peer.node}|${why}`;
      if (this.#conflicts.has(key)) return;
      this.#conflicts.add(key);
      this.opts.log.warn({ step: 'interconnect', node: peer.node, chassis: peer.chassisId, reason: why }, 'peer node not joined');
    });
    if (ops.length === 0) return;
    await this.opts.sb.transact([...ops, { op: 'comment', comment: 'ovnode: remote chassis' }]);
    this.opts.log.info({ step: 'interconnect', peers: peers.length, ops: ops.length }, 'remote chassis written');
  }
}

/** The SB operations that bring the remote chassis to `peers`; pure, for tests. */
export function planRemoteChassis(
  sb: Pick<OvsdbClient, 'rows'>, peers: readonly PeerNode[], localChassis: string,
  refuse: (peer: PeerNode, why: string) => void = () => {},
): Operation[] {
  const chassis = [...sb.rows(SB.chassis).values()];
  const encaps = sb.rows(ENCAP);
  const ours = new Map<string, Row>();
  const foreign = new Set<string>();
  // Encap rows are unique by (type, ip): a peer cannot end its tunnels on an address this zone's
  // own chassis (or anything not ours) already uses.
  const foreignIps = new Set<string>();
  for (const row of chassis) {
    if (isRemoteNodeRow(asMap(row.external_ids))) { ours.set(row.name as string, row); continue; }
    foreign.add(row.name as string);
    for (const u of asArray<string>(row.encaps)) { const ip = encaps.get(u)?.ip; if (typeof ip === 'string') foreignIps.add(ip); }
  }
  const ops: Operation[] = [];
  const wanted = new Set<string>();
  const byIp = new Map<string, string>();
  for (const peer of [...peers].sort((a, b) => a.node.localeCompare(b.node))) {
    if (peer.chassisId === localChassis) {
      // The node itself (its own Node object), or another node claiming this node's chassis id.
      continue;
    }
    if (foreign.has(peer.chassisId)) { refuse(peer, `chassis ${peer.chassisId} is already registered here by something else`); continue; }
    if (wanted.has(peer.chassisId)) { refuse(peer, `chassis id ${peer.chassisId} is published by another node too`); continue; }
    if (foreignIps.has(peer.encapIp)) { refuse(peer, `encap IP ${peer.encapIp} is this node's own (or a chassis not written by ovnode)`); continue; }
    const ipOwner = byIp.get(peer.encapIp);
    if (ipOwner !== undefined) { refuse(peer, `encap IP ${peer.encapIp} is published by node ${ipOwner} too`); continue; }
    wanted.add(peer.chassisId);
    byIp.set(peer.encapIp, peer.node);
    const row = ours.get(peer.chassisId);
    const encapRow = row ? asArray<string>(row.encaps).map((u) => encaps.get(u)).find(Boolean) : undefined;
    const encapOk = encapRow !== undefined && encapRow.ip === peer.encapIp && encapRow.type === 'geneve' && asArray<string>(row?.encaps).length === 1;
    const idsOk = row !== undefined && row.hostname === peer.node && asMap(row.external_ids)[REMOTE_NODE] === peer.node
      && asMap(row.other_config)['is-remote'] === 'true';
    if (row && encapOk && idsOk) continue;
    let encap = encapOk ? uuid((encapRow as Row)._uuid) : undefined;
    if (!encap) {
      // A new address gets a new Encap; the old one, referenced by nothing, is collected by the server.
      const encapName = `encap_${ops.length}`;
      ops.push({
        op: 'insert', table: ENCAP, 'uuid-name': encapName,
        row: { type: 'geneve', ip: peer.encapIp, chassis_name: peer.chassisId, options: ovsMap({ csum: 'true' }) },
      });
      encap = namedUuid(encapName);
    }
    const fields = {
      hostname: peer.node,
      encaps: ovsSet([encap]),
      other_config: ovsMap({ 'is-remote': 'true' }),
      external_ids: ovsMap({ [REMOTE_NODE]: peer.node }),
    };
    ops.push(row
      ? { op: 'update', table: SB.chassis, where: [['_uuid', '==', uuid(row._uuid)]], row: fields }
      : { op: 'insert', table: SB.chassis, row: { name: peer.chassisId, ...fields } });
  }
  for (const [name, row] of ours) {
    if (!wanted.has(name)) ops.push({ op: 'delete', table: SB.chassis, where: [['_uuid', '==', uuid(row._uuid)]] });
  }
  return ops;
}
