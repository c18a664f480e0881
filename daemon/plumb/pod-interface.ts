// Kernel plumbing of one pod interface: a veth whose peer is created directly inside the pod
// netns (no create-then-move: moving a link between namespaces costs the kernel ~15 ms), then
// address, routes and offloads inside the netns in one native call on a worker thread
// (configurePodInterface); CHECK reads them back through a netlink socket opened there.

import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { InvalidEnvError, isOvnodeError, PlumbError } from '../../common/errors';
import { openPodNetns, type NetnsIdentity } from '../attach/pod-netns';
import { isNativeSystemError, type NativeOps } from '../../native/index';
import { type Rtnl } from '../kernel/rtnl';

/** A locally administered unicast MAC for the host end (what the kernel would pick, chosen here). */
function randomHostMac(): string {
  const b = randomBytes(6);
  b[0] = ((b[0] as number) & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export interface PodInterfaceSpec {
  netns: string;
  /** What the netns path named when the request was checked (checkPodNetns). */
  netnsIdentity: NetnsIdentity;
  hostIfName: string;
  podIfName: string;
  mac: string;
  mtu: number;
  /** CIDR notation, e.g. 10.16.0.5/16. */
  addresses: string[];
  /** Default-route gateway per family present in addresses. */
  gateways: string[];
  /** The userspace datapath drops TCP whose checksum was left to offload (see LAB doc). */
  disableTxChecksum: boolean;
}

export interface PodInterfaceState { mac: string; mtu: number; addresses: string[]; routes: Array<{ dst: string; gateway?: string }> }

export interface PlumberDeps {
  /** rtnetlink socket of the node's own netns (where host-side veths live). */
  nodeRtnl: Rtnl;
  native: NativeOps;
  /** Opens an rtnetlink socket in the calling thread's current netns. */
  openRtnl: () => Rtnl;
  /** A path naming the node's netns (for work done on worker threads). */
  nodeNetnsPath: string;
}

export class PodPlumber {
  /** Host veths being removed in the background, by name. */
  private readonly removing = new Map<string, Promise<boolean>>();

  constructor(private readonly deps: PlumberDeps) {}

  /**
   * Creates and configures the pod interface; returns the host side's MAC. The host end comes up
   * at creation. `onHostSide` runs as soon as the host end exists (the OVS port needs nothing
   * more), concurrently with the pod side's addresses and routes; create settles only when both
   * have, so a caller's rollback never overlaps either.
   */
  async create(spec: PodInterfaceSpec, onHostSide?: () => Promise<void>): Promise<{ hostMac: string }> {
    const hostMac = randomHostMac();
    await this.createVeth(spec, hostMac);
    const outcomes = await Promise.allSettled([this.configurePod(spec), onHostSide?.()]);
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw failed.reason;
    return { hostMac };
  }

  /**
   * Addresses, link up, default routes and (when asked) TX checksum offloads off, all in one
   * native call on a libuv worker thread inside the pod netns: one rtnetlink batch instead of a
   * round trip per request through the event loop.
   */
  private async configurePod(spec: PodInterfaceSpec): Promise<void> {
    try {
      await this.deps.native.configurePodInterface(spec.netns, {
        ifName: spec.podIfName,
        addresses: spec.addresses,
        gateways: spec.gateways,
        disableTxChecksum: spec.disableTxChecksum,
      });
    } catch (e) {
      if (isNativeSystemError(e) && e.code === 'ENODEV' && e.syscall === 'if_nametoindex') {
        throw new PlumbError(`${spec.podIfName} did not appear in ${spec.netns}`, { details: e.message, cause: e });
      }
      throw e;
    }
  }

  private async createVeth(spec: PodInterfaceSpec, hostMac: string): Promise<void> {
    // A DEL of this sandbox may still be removing a veth of the same (derived) name.
    await this.removing.get(spec.hostIfName);
    let netns: FileHandle;
    try {
      netns = await openPodNetns(spec.netns, spec.netnsIdentity);
    } catch (e) {
      if (isOvnodeError(e)) throw e;
      throw new InvalidEnvError(`CNI_NETNS ${spec.netns} cannot be opened`, { details: (e as Error).message });
    }
    try {
      const veth = { name: spec.hostIfName, mac: hostMac, mtu: spec.mtu, peer: { name: spec.podIfName, mac: spec.mac, mtu: spec.mtu, netnsFd: netns.fd } };
      try {
        await this.deps.nodeRtnl.createVeth(veth);
      } catch (e) {
        if (!/EEXIST/.test(String(e))) throw new PlumbError(`cannot create veth ${spec.hostIfName}`, { details: String(e), cause: e });
        // A veth of this sandbox survived an earlier, interrupted ADD: its name is derived from
        // the sandbox id, so it is ours to replace.
        await this.destroy(spec.hostIfName);
        await this.deps.nodeRtnl.createVeth(veth);
      }
    } finally {
      await netns.close();
    }
  }

  /**
   * Removes the host-side veth (the kernel removes the pod side with it). On a worker thread:
   * unregistering a netdev waits for an RCU grace period (~15 ms) inside the netlink request.
   */
  async destroy(hostIfName: string): Promise<boolean> {
    await this.removing.get(hostIfName);
    return this.deps.native.deleteLink(this.deps.nodeNetnsPath, hostIfName);
  }

  /**
   * Starts removing the host-side veth without waiting: unregistering a netdev waits for an
   * RCU grace period (~15 ms) that DEL need not pay once the port is out of OVS and OVN.
   * A later create() or destroy() of the same name waits for it; drain() waits for all;
   * after a crash, start-up removes veths that no OVS port references.
   */
  destroyInBackground(hostIfName: string, onError: (e: unknown) => void): void {
    if (this.removing.has(hostIfName)) return;
    const p = this.deps.native.deleteLink(this.deps.nodeNetnsPath, hostIfName)
      .catch((e: unknown) => { onError(e); return false; })
      .finally(() => this.removing.delete(hostIfName));
    this.removing.set(hostIfName, p);
  }

  /** Names of the veth devices in the node netns. */
  async hostVethNames(): Promise<string[]> {
    return this.deps.nodeRtnl.listLinkNames('veth');
  }

  async drain(): Promise<void> {
    await Promise.all([...this.removing.values()]);
  }

  /** Reads the pod-side interface for CHECK; undefined when it is not there. */
  async inspect(netns: string, ifName: string): Promise<PodInterfaceState | undefined> {
    if (!this.deps.native.exists(netns)) return undefined;
    return this.inPod(netns, async (pod) => {
      const link = await pod.getLink(ifName);
      if (!link) return undefined;
      const addresses = await pod.listAddresses(link.index);
      const routes = [...(await pod.listRoutes(4)), ...(await pod.listRoutes(6))]
        .filter((r) => r.oif === link.index)
        .map((r) => (r.gateway ? { dst: r.dst, gateway: r.gateway } : { dst: r.dst }));
      return { mac: link.mac, mtu: link.mtu, addresses, routes };
    });
  }

  /**
   * Gratuitous ARP / unsolicited NA from inside the pod, so neighbours learn the new binding.
   * Runs on a worker thread: closing a packet socket waits for an RCU grace period (~15 ms).
   */
  announce(p: { netns: string; ifName: string; mac: string; ips: string[] }): Promise<void> {
    return this.deps.native.announce(p.netns, p.ips.map((ip) => ({
      kind: ip.includes(':') ? 'na' as const : 'garp' as const, ifName: p.ifName, mac: p.mac, ip,
    })));
  }

  private async inPod<T>(netns: string, fn: (pod: Rtnl) => Promise<T>): Promise<T> {
    // The socket is bound to the netns it was created in, so it can be used asynchronously
    // after runIn has switched the thread back.
    const pod = this.deps.native.runIn(netns, () => this.deps.openRtnl());
    try {
      return await fn(pod);
    } finally {
      pod.close();
    }
  }
}
