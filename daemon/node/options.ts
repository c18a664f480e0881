// Daemon options as the CLI gives them, validated into typed settings.

import { hostname } from 'node:os';
import { InvalidConfigError } from '../../common/errors';
import { DEFAULT_DAEMON_SOCKET } from '../../common/protocol';
import { parseCidr } from '../ipam/cidr';

export type StackMode = 'embedded' | 'external';

export interface DaemonOptions {
  /** embedded: the daemon starts and supervises OVS/OVN; external: another process (the ovnode-ovs pod) does, the daemon adopts. */
  stack: StackMode;
  stateDir: string;
  socket: string;
  /** Pod subnet CIDRs: one, or an IPv4,IPv6 pair for dual stack. */
  subnets: string[];
  joinCidr: string;
  mtu: number;
  metricsAddress: string;
  nodeName: string;
  encapIp?: string;
  logLevel: string;
  /** Directory of Kubernetes-shaped manifests to watch (embedded mode). */
  manifests?: string;
  /** Period of the leak reconcile loop; the environment's OVNODE_RECONCILE_INTERVAL_MS otherwise. */
  reconcileIntervalMs?: number;
}

export interface RawOptions {
  manifests?: string;
  embedded?: boolean;
  stack?: string;
  stateDir: string;
  socket?: string;
  subnet: string;
  joinCidr: string;
  mtu: string;
  metricsAddress: string;
  nodeName?: string;
  encapIp?: string;
  logLevel: string;
  reconcileInterval?: string;
}

export function parseOptions(raw: RawOptions): DaemonOptions {
  const subnets = raw.subnet.split(',').map((s) => s.trim()).filter(Boolean);
  const cidrs = subnets.map((s) => {
    try { return parseCidr(s); } catch (e) { throw new InvalidConfigError(`--subnet: ${(e as Error).message}`); }
  });
  if (cidrs.length === 0 || cidrs.length > 2 || (cidrs.length === 2 && cidrs[0]?.family === cidrs[1]?.family)) {
    throw new InvalidConfigError('--subnet takes one CIDR or an IPv4,IPv6 pair');
  }
  const mtu = Number(raw.mtu);
  if (!Number.isInteger(mtu) || mtu < 576 || mtu > 9000) throw new InvalidConfigError('--mtu must be an integer in 576..9000');
  const stack = raw.stack ?? 'embedded';
  if (stack !== 'embedded' && stack !== 'external') throw new InvalidConfigError('--stack must be embedded or external');
  if (raw.embedded && stack === 'external') throw new InvalidConfigError('--embedded and --stack external contradict each other');
  const opts: DaemonOptions = {
    stack,
    stateDir: raw.stateDir,
    socket: raw.socket ?? DEFAULT_DAEMON_SOCKET,
    subnets: cidrs.map((c) => c.text),
    joinCidr: parseCidr(raw.joinCidr).text,
    mtu,
    metricsAddress: raw.metricsAddress,
    nodeName: raw.nodeName ?? hostname(),
    logLevel: raw.logLevel,
  };
  if (raw.encapIp) opts.encapIp = raw.encapIp;
  if (raw.manifests) opts.manifests = raw.manifests;
  if (raw.reconcileInterval !== undefined) {
    const seconds = Number(raw.reconcileInterval);
    if (!Number.isFinite(seconds) || seconds < 0.1 || seconds > 3600) throw new InvalidConfigError('--reconcile-interval must be a number of seconds in 0.1..3600');
    opts.reconcileIntervalMs = Math.round(seconds * 1000);
  }
  return opts;
}
