// The other nodes of the cluster as this node needs them: a watch of Node objects keeping only
// their name and ovnode's contract annotations, turned into the list of peers that can be joined.
// A node whose contract cannot be read (not running ovnode yet, an unreadable version) is left
// out, with one log line per node and reason, until its annotations change.

import type { Logger } from 'pino';
import type { KubeApi } from '../sources/kube/api';
import { Reflector, type KubeRawObject } from '../sources/kube/reflector';
import type { KubeStreamApi } from '../sources/kube/stream';
import { parseNodeContract, type PeerNode } from './node-contract';

interface NodeSlim {
  name: string;
  /** ovnode.io/* annotations only: kubelet rewrites the rest of a Node every few seconds. */
  annotations: Record<string, string>;
  /** Labels select nodes (a ProviderNetwork's nodeSelector). */
  labels: Record<string, string>;
}

export interface PeerNodesOptions {
  api: KubeApi & KubeStreamApi;
  log: Logger;
  /** Called with every peer that can be joined, whenever that list may have changed. */
  onPeers: (peers: readonly PeerNode[]) => void;
  /** This node's name and what to call when its labels change. */
  localNode?: { name: string; onLabels: (labels: Readonly<Record<string, string>>) => void };
}

export class PeerNodes {
  readonly #reflector: Reflector<NodeSlim>;
  readonly #reported = new Map<string, string>();
  #last = '';
  #lastLabels = '';

  constructor(private readonly opts: PeerNodesOptions) {
    this.#reflector = new Reflector<NodeSlim>({ api: opts.api, path: '/api/v1/nodes', log: opts.log, project: projectNode });
    // Kubelets update their Node every few seconds; only a different peer list is news.
    this.#reflector.subscribe(() => {
      const local = opts.localNode;
      if (local) {
        const labels = this.labels(local.name);
        const key = JSON.stringify(labels);
        if (key !== this.#lastLabels) { this.#lastLabels = key; local.onLabels(labels); }
      }
      const peers = this.peers();
      const key = JSON.stringify(peers);
      if (key === this.#last) return;
      this.#last = key;
      opts.onPeers(peers);
    });
  }

  start(): void { this.#reflector.start(); }
  whenSynced(signal?: AbortSignal): Promise<void> { return this.#reflector.whenSynced(signal); }
  stop(): Promise<void> { return this.#reflector.stop(); }

  /** A node's labels ({} for a node not seen). */
  labels(node: string): Readonly<Record<string, string>> {
    for (const n of this.#reflector.values()) if (n.name === node) return n.labels;
    return {};
  }

  /** Nodes with a readable contract, by name. */
  peers(): PeerNode[] {
    const out: PeerNode[] = [];
    for (const n of this.#reflector.values()) {
      const parsed = parseNodeContract(n.name, n.annotations);
      if (parsed.ok) {
        this.#reported.delete(n.name);
        out.push(parsed.peer);
      } else if (this.#reported.get(n.name) !== parsed.reason) {
        this.#reported.set(n.name, parsed.reason);
        this.opts.log.info({ step: 'interconnect', node: n.name, reason: parsed.reason }, 'node not joined yet');
      }
    }
    return out.sort((a, b) => a.node.localeCompare(b.node));
  }
}

function projectNode(raw: KubeRawObject): NodeSlim | undefined {
  const meta = raw.metadata;
  if (!meta || typeof meta.name !== 'string') return undefined;
  const annotations: Record<string, string> = {};
  const all = meta.annotations;
  if (all && typeof all === 'object') {
    for (const [k, v] of Object.entries(all as Record<string, unknown>)) {
      if (k.startsWith('ovnode.io/') && typeof v === 'string') annotations[k] = v;
    }
  }
  const labels: Record<string, string> = {};
  if (meta.labels && typeof meta.labels === 'object') {
    for (const [k, v] of Object.entries(meta.labels as Record<string, unknown>)) if (typeof v === 'string') labels[k] = v;
  }
  return { name: meta.name, annotations, labels };
}
