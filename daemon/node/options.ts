// Daemon options as the CLI gives them, validated into typed settings.

import { hostname } from 'node:os';
import { InvalidConfigError } from '../../common/errors';
import { DEFAULT_DAEMON_SOCKET } from '../../common/protocol';
import { parseCidr } from '../ipam/cidr';
import { DEFAULT_SYSFS_ROOT } from '../sriov/sysfs';

export type StackMode = 'embedded' | 'external';

export interface DaemonOptions {
  /** embedded: the daemon starts and supervises OVS/OVN; external: another process (the ovnode-ovs pod) does, the daemon adopts. */
  stack: StackMode;
  stateDir: string;
  socket: string;
  /** Pod subnet CIDRs: one, or an IPv4,IPv6 pair for dual stack. */
  subnets: string[];
  /** The join network's IPv4 CIDR (node ports, transit addresses, their tunnel keys). */
  joinCidr: string;
  /** Its IPv6 CIDR, for dual stack: each node's IPv6 join address has its IPv4 one's offset. */
  joinCidr6?: string;
  /** Pod MTU; unset: the encap interface's MTU less Geneve's overhead, or DEFAULT_POD_MTU. */
  mtu?: number;
  metricsAddress: string;
  nodeName: string;
  encapIp?: string;
  /** The interface whose IPv4 address Geneve tunnels end on (the overlay network's). */
  encapInterface?: string;
  /** Cluster mode: the Service CIDRs (kube-apiserver --service-cluster-ip-range), routed from the node into OVN. */
  serviceCidrs: string[];
  logLevel: string;
  /** Directory of Kubernetes-shaped manifests to watch (embedded mode). */
  manifests?: string;
  /** Period of the leak reconcile loop; the environment's OVNODE_RECONCILE_INTERVAL_MS otherwise. */
  reconcileIntervalMs?: number;
  /** Objects from the Kubernetes API (in-cluster, or `kubeconfig`) instead of a manifests directory. */
  kubernetes?: { kubeconfig?: string; cniBinDir?: string; cniConfDir?: string; cniExecutable?: string };
  sriov: SriovOptions;
}

export interface SriovOptions {
  /** Where VFs, PFs and representors are looked up (/sys; a fake NIC's tree in tests). */
  sysfsRoot: string;
  /**
   * The NIC is the test double (sriov/fake-nic.ts): PF-side VF settings and hw-tc-offload are
   * recorded under sysfsRoot instead of sent to a driver. Never for real hardware.
   */
  fakeNic: boolean;
  /** OVS hardware offload: other_config:hw-offload=true, hw-tc-offload on PFs and representors. */
  hwOffload: boolean;
}

export interface RawOptions {
  manifests?: string;
  embedded?: boolean;
  stack?: string;
  stateDir: string;
  socket?: string;
  subnet: string;
  /** Absent: the environment's OVNODE_JOIN_CIDR on a cluster, else DEFAULT_JOIN_CIDR. */
  joinCidr?: string;
  mtu?: string;
  metricsAddress: string;
  nodeName?: string;
  encapIp?: string;
  encapInterface?: string;
  serviceCidr?: string;
  logLevel: string;
  reconcileInterval?: string;
  kubernetes?: boolean;
  kubeconfig?: string;
  cniBinDir?: string;
  cniConfDir?: string;
  cniExecutable?: string;
  sriovSysfsRoot?: string;
  sriovFakeNic?: boolean;
  hwOffload?: boolean;
}

/** Kube-OVN's default join subnet. */
export const DEFAULT_JOIN_CIDR = '100.64.0.0/16';

/** kube-apiserver's default --service-cluster-ip-range. */
export const DEFAULT_SERVICE_CIDR = '10.96.0.0/12';

/** Pod MTU when neither --mtu nor an encap interface says otherwise (a 1500-byte underlay less Geneve). */
export const DEFAULT_POD_MTU = 1400;
/** What Geneve adds to a pod's packet on an IPv4 underlay (inner Ethernet 14 + Geneve 8 + OVN's option 8 + UDP 8 + outer IPv4 20). */
export const GENEVE_IPV4_OVERHEAD = 58;

/** The pod MTU: explicit, else the overlay interface's less Geneve's overhead, else the default. */
export function podMtu(explicit: number | undefined, overlayInterfaceMtu: number | undefined): number {
  if (explicit !== undefined) return explicit;
  return overlayInterfaceMtu === undefined ? DEFAULT_POD_MTU : overlayInterfaceMtu - GENEVE_IPV4_OVERHEAD;
}

export function parseOptions(raw: RawOptions): DaemonOptions {
  const subnets = raw.subnet.split(',').map((s) => s.trim()).filter(Boolean);
  const cidrs = subnets.map((s) => {
    try { return parseCidr(s); } catch (e) { throw new InvalidConfigError(`--subnet: ${(e as Error).message}`); }
  });
  if (cidrs.length === 0 || cidrs.length > 2 || (cidrs.length === 2 && cidrs[0]?.family === cidrs[1]?.family)) {
    throw new InvalidConfigError('--subnet takes one CIDR or an IPv4,IPv6 pair');
  }
  const mtu = raw.mtu === undefined ? undefined : Number(raw.mtu);
  if (mtu !== undefined && (!Number.isInteger(mtu) || mtu < 576 || mtu > 9000)) throw new InvalidConfigError('--mtu must be an integer in 576..9000');
  const stack = raw.stack ?? 'embedded';
  if (stack !== 'embedded' && stack !== 'external') throw new InvalidConfigError('--stack must be embedded or external');
  if (raw.embedded && stack === 'external') throw new InvalidConfigError('--embedded and --stack external contradict each other');
  const opts: DaemonOptions = {
    stack,
    stateDir: raw.stateDir,
    socket: raw.socket ?? DEFAULT_DAEMON_SOCKET,
    subnets: cidrs.map((c) => c.text),
    joinCidr: '',
    metricsAddress: raw.metricsAddress,
    // On a cluster the DaemonSet passes the node's name through the downward API.
    nodeName: raw.nodeName ?? (raw.kubernetes ? process.env.NODE_NAME : undefined) ?? hostname(),
    logLevel: raw.logLevel,
    serviceCidrs: [],
    sriov: parseSriovOptions(raw),
  };
  const join = parseJoinCidrs(raw.joinCidr ?? ((raw.kubernetes || raw.kubeconfig !== undefined) ? process.env.OVNODE_JOIN_CIDR || undefined : undefined) ?? DEFAULT_JOIN_CIDR);
  opts.joinCidr = join.v4;
  if (join.v6 !== undefined) opts.joinCidr6 = join.v6;
  if (mtu !== undefined) opts.mtu = mtu;
  if (raw.encapIp) opts.encapIp = raw.encapIp;
  // On a cluster the DaemonSet passes it from the optional ConfigMap ovnode-config.
  const encapInterface = raw.encapInterface ?? ((raw.kubernetes || raw.kubeconfig !== undefined) ? process.env.OVNODE_ENCAP_INTERFACE || undefined : undefined);
  if (encapInterface !== undefined) {
    if (raw.encapIp) throw new InvalidConfigError('--encap-ip and --encap-interface both choose the tunnel address: give one');
    if (!/^[A-Za-z0-9_.:-]{1,15}$/.test(encapInterface)) throw new InvalidConfigError(`--encap-interface: ${JSON.stringify(encapInterface)} is not an interface name`);
    opts.encapInterface = encapInterface;
  }
  if (raw.manifests) opts.manifests = raw.manifests;
  if (raw.kubernetes || raw.kubeconfig !== undefined) {
    if (raw.manifests) throw new InvalidConfigError('--kubernetes and --manifests are two sources of the same objects: choose one');
    if ((raw.cniBinDir === undefined) !== (raw.cniConfDir === undefined)) throw new InvalidConfigError('--cni-bin-dir and --cni-conf-dir go together');
    const k: NonNullable<DaemonOptions['kubernetes']> = {};
    if (raw.kubeconfig !== undefined) k.kubeconfig = raw.kubeconfig;
    if (raw.cniBinDir !== undefined) k.cniBinDir = raw.cniBinDir;
    if (raw.cniConfDir !== undefined) k.cniConfDir = raw.cniConfDir;
    if (raw.cniExecutable !== undefined) k.cniExecutable = raw.cniExecutable;
    opts.kubernetes = k;
    // On a cluster the DaemonSet passes it from the optional ConfigMap ovnode-config.
    const services = raw.serviceCidr ?? (process.env.OVNODE_SERVICE_CIDR || DEFAULT_SERVICE_CIDR);
    opts.serviceCidrs = services.split(',').map((c) => c.trim()).filter(Boolean).map((c) => {
      try { return parseCidr(c).text; } catch (e) { throw new InvalidConfigError(`--service-cidr: ${(e as Error).message}`); }
    });
  } else if (raw.cniBinDir !== undefined || raw.cniConfDir !== undefined) {
    throw new InvalidConfigError('--cni-bin-dir/--cni-conf-dir install the plugin for a Kubernetes node: they need --kubernetes');
  }
  if (raw.reconcileInterval !== undefined) {
    const seconds = Number(raw.reconcileInterval);
    if (!Number.isFinite(seconds) || seconds < 0.1 || seconds > 3600) throw new InvalidConfigError('--reconcile-interval must be a number of seconds in 0.1..3600');
    opts.reconcileIntervalMs = Math.round(seconds * 1000);
  }
  return opts;
}

/**
 * `--join-cidr`: an IPv4 CIDR, or an IPv4,IPv6 pair for dual stack. IPv4 is required: the
 * nodes' join addresses are claimed and keyed there. The IPv6 CIDR must hold every keyed offset,
 * since each node's IPv6 join address is the one at its IPv4 address's offset.
 */
export function parseJoinCidrs(text: string): { v4: string; v6?: string } {
  const parts = text.split(',').map((s) => s.trim()).filter(Boolean);
  const cidrs = parts.map((s) => {
    try { return parseCidr(s); } catch (e) { throw new InvalidConfigError(`--join-cidr: ${(e as Error).message}`); }
  });
  const [v4, v6, ...rest] = cidrs;
  if (!v4 || v4.family !== 4 || rest.length > 0 || (v6 !== undefined && v6.family !== 6)) {
    throw new InvalidConfigError('--join-cidr takes an IPv4 CIDR, or an IPv4,IPv6 pair');
  }
  if (v4.prefix > 30) throw new InvalidConfigError(`--join-cidr: ${v4.text} has no room for nodes`);
  if (v6 !== undefined && v6.prefix > 112) {
    throw new InvalidConfigError(`--join-cidr: ${v6.text} is too small: the IPv6 join CIDR needs /112 or shorter (it mirrors the IPv4 addresses' offsets)`);
  }
  return v6 === undefined ? { v4: v4.text } : { v4: v4.text, v6: v6.text };
}

/** On a cluster the DaemonSet passes these from the optional ConfigMap ovnode-config. */
function parseSriovOptions(raw: RawOptions): SriovOptions {
  const onCluster = raw.kubernetes || raw.kubeconfig !== undefined;
  const env = (name: string): string | undefined => (onCluster ? process.env[name] || undefined : undefined);
  const flag = (value: boolean | undefined, name: string, option: string): boolean => {
    if (value !== undefined) return value;
    const v = env(name);
    if (v === undefined) return false;
    if (v !== 'true' && v !== 'false') throw new InvalidConfigError(`${name} (${option}) must be true or false`);
    return v === 'true';
  };
  const sysfsRoot = raw.sriovSysfsRoot ?? env('OVNODE_SRIOV_SYSFS_ROOT') ?? DEFAULT_SYSFS_ROOT;
  if (!sysfsRoot.startsWith('/')) throw new InvalidConfigError('--sriov-sysfs-root must be an absolute path');
  const fakeNic = flag(raw.sriovFakeNic, 'OVNODE_SRIOV_FAKE_NIC', '--sriov-fake-nic');
  if (fakeNic && sysfsRoot === DEFAULT_SYSFS_ROOT) throw new InvalidConfigError('--sriov-fake-nic records into a fake sysfs tree: give its --sriov-sysfs-root (never the real /sys)');
  return { sysfsRoot, fakeNic, hwOffload: flag(raw.hwOffload, 'OVNODE_HW_OFFLOAD', '--hw-offload') };
}
