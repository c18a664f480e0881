// A VF as a pod interface, in switchdev mode: the VF netdev goes into the pod (or, bound to
// vfio-pci, stays a device for a VM), its representor is the pod's OVS port. Every change to a VF
// follows its checkpoint (vf-checkpoint.ts) being in OVSDB, so a DEL, the leak reconciler or a
// restarted daemon can always put the VF back: netdev name, MAC, MTU and namespace, PF settings.

import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { PlumbError, TryAgainLaterError } from '../../common/errors';
import type { NativeOps } from '../../native/index';
import type { Rtnl } from '../kernel/rtnl';
import type { OvsdbClient } from '../ovsdb/client';
import { asMap } from '../ovsdb/values';
import { OVS } from '../ovs/schema';
import { EXT } from '../store/external-ids';
import { KeyedLock } from '../server/keyed-lock';
import type { Nic, VfRef, VfSettings } from './nic';
import type { SriovSysfs } from './sysfs';
import { decodeVfCheckpoint, VF_CHECKPOINT_KEY, type VfCheckpoint } from './vf-checkpoint';

export interface VfAttacherDeps {
  sysfs: SriovSysfs;
  nic: Nic;
  native: NativeOps;
  /** rtnetlink of the node's netns (representors, VF netdevs before and after a pod). */
  nodeRtnl: Rtnl;
  /** A path naming the node's netns, for moves done on worker threads. */
  nodeNetnsPath: string;
  ovs: OvsdbClient;
  /** A link of a pod netns (its MAC), or undefined: PodPlumber.inspect. */
  podLink: (netns: string, ifName: string) => Promise<{ mac: string } | undefined>;
  /** The node is configured for hardware offload: hw-tc-offload on the PF and representors. */
  hwOffload: boolean;
  log: Logger;
}

export interface VfOwner { sandbox: string; ifName: string }

/** Where an attachment put its VF: the pod netns, interface name and the attachment's MAC. */
export interface VfWhere { netns: string; ifName: string; mac: string }

export interface VfPlug {
  netns: string;
  ifName: string;
  mac: string;
  mtu: number;
  /** PF-side settings to apply (vfSettingsFor). */
  settings: Partial<VfSettings>;
  /** CIDR notation. */
  addresses: string[];
  gateways: string[];
  disableTxChecksum: boolean;
}

/** What release found of the VF netdev. */
export type NetdevOutcome = 'returned' | 'not-moved' | 'absent' | 'no-netdev';

/** Name of the VF netdev while it crosses namespaces: unique per attachment, never a pod's or node's. */
export function vfTempName(sandbox: string, ifName: string): string {
  return `${createHash('sha256').update(`${sandbox}/${ifName}`).digest('hex').slice(0, 12)}_v`;
}

export const vfRef = (c: VfCheckpoint): VfRef => ({ pfPci: c.pfPci, pfNetdev: c.pfNetdev, vfIndex: c.vfIndex });

/** The Interface rows holding a VF's checkpoint, with their owners. */
export function vfHolders(ovs: OvsdbClient, vf: string): Array<VfOwner & { checkpoint: VfCheckpoint }> {
  const out: Array<VfOwner & { checkpoint: VfCheckpoint }> = [];
  for (const row of ovs.rows(OVS.iface).values()) {
    const ids = asMap(row.external_ids) as Record<string, string>;
    const c = decodeVfCheckpoint(ids[VF_CHECKPOINT_KEY]);
    if (c?.vf === vf) out.push({ sandbox: ids[EXT.sandbox] ?? '', ifName: ids[EXT.ifName] ?? '', checkpoint: c });
  }
  return out;
}

export class VfAttacher {
  /** One ADD or DEL per VF at a time: a late DEL racing the next ADD of the same VF waits. */
  private readonly locks = new KeyedLock();
  /** Netdevs whose hw-tc-offload this daemon turned on (name#ifindex). */
  private readonly offloadOn = new Set<string>();

  constructor(private readonly deps: VfAttacherDeps) {}

  /** Runs fn holding the VF's lock. */
  withVf<T>(vf: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(vf, fn);
  }

  /**
   * Inside withVf: finds the VF and records what it is now, changing nothing. Refuses a VF an
   * attachment holds (its checkpoint is in OVSDB until its DEL completed).
   */
  async describe(deviceId: string, owner: VfOwner): Promise<VfCheckpoint> {
    // Any holder, this attachment included: the ADD released its own earlier hold before.
    const held = vfHolders(this.deps.ovs, deviceId);
    if (held.length > 0) {
      const h = held[0] as VfOwner;
      throw new TryAgainLaterError(`VF ${deviceId} is attached to sandbox ${h.sandbox.slice(0, 12)} (${h.ifName}): its DEL has not completed`);
    }
    const d = await this.deps.sysfs.describeVf(deviceId);
    if (!d.pfNetdev) throw new PlumbError(`VF ${deviceId}: its PF ${d.pf} has no netdev in this node`);
    const representor = await this.deps.sysfs.findRepresentor(d);
    if (!representor) throw new PlumbError(`VF ${deviceId} has no representor: its PF ${d.pfNetdev} is not in switchdev mode (ovnode plugs VFs into OVS through their representors)`);
    if (!(await this.deps.nodeRtnl.getLink(representor))) throw new PlumbError(`VF ${deviceId}: representor ${representor} is not a netdev of this node`);
    const ref = { pfPci: d.pf, pfNetdev: d.pfNetdev, vfIndex: d.vfIndex };
    const c: VfCheckpoint = { vf: d.vf, ...ref, representor, tempName: vfTempName(owner.sandbox, owner.ifName), settings: await this.deps.nic.vfConfig.read(ref) };
    if (d.netdev === undefined) {
      if (d.driver !== undefined && d.driver !== 'vfio-pci') throw new PlumbError(`VF ${deviceId} (driver ${d.driver}) has no netdev in this node: it may still be in another network namespace`);
      return c; // vfio-pci (or unbound): a device, no netdev
    }
    const link = await this.deps.nodeRtnl.getLink(d.netdev);
    if (!link) throw new PlumbError(`VF ${deviceId}: its netdev ${d.netdev} is not in this node's network namespace`);
    return { ...c, netdev: d.netdev, mac: link.mac, mtu: link.mtu };
  }

  /**
   * Inside withVf, once the checkpoint is in OVSDB: PF settings, representor up (and offload),
   * the VF netdev into the pod under its temporary name, renamed, configured.
   */
  async plug(c: VfCheckpoint, p: VfPlug): Promise<void> {
    // Independent of each other (PF driver, representor, the VF's own netdev): all at once, and
    // all settled before a failure is reported, so the caller's undo never overlaps one.
    const steps: Array<Promise<unknown>> = [
      this.deps.nic.vfConfig.apply(vfRef(c), p.settings),
      this.representorUp(c),
    ];
    if (this.deps.hwOffload) steps.push(this.hwTcOffload(c.pfNetdev), this.hwTcOffload(c.representor));
    if (c.netdev !== undefined) {
      const netdev = c.netdev;
      steps.push((async () => {
        await this.deps.native.moveLink({ fromNetns: this.deps.nodeNetnsPath, ifName: netdev, toNetns: p.netns, tempName: c.tempName, name: p.ifName, mac: p.mac, mtu: p.mtu });
        await this.deps.native.configurePodInterface(p.netns, { ifName: p.ifName, addresses: p.addresses, gateways: p.gateways, disableTxChecksum: p.disableTxChecksum });
      })());
    }
    const failed = (await Promise.allSettled(steps)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private async representorUp(c: VfCheckpoint): Promise<void> {
    const rep = await this.deps.nodeRtnl.getLink(c.representor);
    if (!rep) throw new PlumbError(`representor ${c.representor} of VF ${c.vf} disappeared`);
    if (!rep.up) await this.deps.nodeRtnl.setUp(rep.index);
  }

  /** Once per netdev (by name and ifindex: a re-created netdev starts with the feature off). */
  private async hwTcOffload(netdev: string): Promise<void> {
    const index = (await this.deps.nodeRtnl.getLink(netdev))?.index;
    const key = `${netdev}#${index ?? ''}`;
    if (this.offloadOn.has(key)) return;
    await this.deps.nic.enableHwTcOffload(netdev);
    this.offloadOn.add(key);
  }

  /** The VF's PF-side settings now. */
  currentSettings(c: VfCheckpoint): Promise<VfSettings> {
    return this.deps.nic.vfConfig.read(vfRef(c));
  }

  /**
   * Inside withVf: the VF's PF settings as they were, then its netdev back in the node under its
   * own name, MAC and MTU (from the pod, or wherever an interrupted ADD or a deleted netns left it).
   * Throws when the VF cannot be put back; the checkpoint must then stay for a retry.
   */
  async release(c: VfCheckpoint, where: VfWhere): Promise<NetdevOutcome> {
    // PF settings first (sriov-cni's order): a VF on its way back never carries the pod's MAC or
    // VLAN into the node, and a retry after a failure here redoes both steps.
    await this.deps.nic.vfConfig.apply(vfRef(c), c.settings);
    const outcome = c.netdev === undefined ? 'no-netdev' : await this.returnNetdev(c, c.netdev, where);
    this.deps.log.info({ step: 'vf', vf: c.vf, netdev: outcome, pf: c.pfNetdev, vfIndex: c.vfIndex }, 'VF released');
    return outcome;
  }

  private async returnNetdev(c: VfCheckpoint, netdev: string, where: VfWhere): Promise<NetdevOutcome> {
    const back = { toNetns: this.deps.nodeNetnsPath, name: netdev, ...(c.mac ? { mac: c.mac } : {}), ...(c.mtu ? { mtu: c.mtu } : {}) };
    // Still in the node (an ADD that stopped before or while moving it, or a VF the kernel
    // returned when the pod's netns went): under its crossing name, or the name sysfs gives the
    // VF now (sysfs shows only this netns' netdevs). Its name, MAC and MTU are put back there.
    const now = await this.deps.sysfs.describeVf(c.vf).then((d) => d.netdev, () => undefined);
    for (const name of [c.tempName, now]) {
      if (name === undefined || !(await this.deps.nodeRtnl.getLink(name))) continue;
      await this.deps.native.moveLink({ fromNetns: this.deps.nodeNetnsPath, ifName: name, ...back, tempName: name === netdev ? netdev : c.tempName });
      return name === netdev ? 'not-moved' : 'returned';
    }
    if (where.netns && this.deps.native.exists(where.netns)) {
      // In the pod: under the crossing name (no other link has it), or renamed to the pod's
      // interface name, which is only the VF if it carries the attachment's MAC (an ADD that
      // failed on a name the pod already had must not take the pod's own link).
      if (await this.deps.podLink(where.netns, c.tempName)) {
        await this.deps.native.moveLink({ fromNetns: where.netns, ifName: c.tempName, ...back, tempName: c.tempName });
        return 'returned';
      }
      const link = await this.deps.podLink(where.netns, where.ifName);
      if (link && link.mac.toLowerCase() === where.mac.toLowerCase()) {
        await this.deps.native.moveLink({ fromNetns: where.netns, ifName: where.ifName, ...back, tempName: c.tempName });
        return 'returned';
      }
    }
    this.deps.log.warn({ step: 'vf', vf: c.vf, netdev, netns: where.netns }, 'VF netdev found neither in the node nor in the pod; its PF settings are restored');
    return 'absent';
  }
}
