// A FAKE SR-IOV NIC on a test node (these machines have no SR-IOV hardware): a fake sysfs tree
// (test/fakes/fake-sriov-sysfs.ts) describes a switchdev PF with VFs, and in the node's netns
// each VF netdev and its representor are the two ends of a real veth pair, so every kernel step
// on them (move, rename, MAC, MTU, addresses) and all traffic through OVS are real. The PF is a
// veth end. PF-side VF settings are what the daemon's FakeNic records under the same root.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeSriovSysfs, type FakePf } from '../../fakes/fake-sriov-sysfs';

export interface FakeNicOptions {
  /** The node's netns name (ip netns). */
  nodeNs: string;
  /** Directory for the fake sysfs tree (created; removed by destroy); default a new temp dir. */
  root?: string;
  pfPci?: string;
  pfNetdev?: string;
  numVfs?: number;
}

export interface LinkSnapshot { name: string; mac: string; mtu: number; up: boolean }

export class FakeNicOnNode {
  private constructor(readonly root: string, readonly sysfs: FakeSriovSysfs, readonly pf: FakePf, private readonly nodeNs: string) {}

  static async create(opts: FakeNicOptions): Promise<FakeNicOnNode> {
    const root = opts.root ?? mkdtempSync(join(tmpdir(), 'ovt-fake-sysfs-'));
    mkdirSync(root, { recursive: true });
    try {
      const sysfs = new FakeSriovSysfs(root);
      const pfNetdev = opts.pfNetdev ?? 'fpf0';
      const pf = await sysfs.addPf({ pci: opts.pfPci ?? '0000:3b:00.0', netdev: pfNetdev, numVfs: opts.numVfs ?? 4, switchId: '5c1d3e000a0b0c0d' });
      const nic = new FakeNicOnNode(root, sysfs, pf, opts.nodeNs);
      // No dummy module on these machines: the PF's uplink is one end of a veth pair too.
      ip(opts.nodeNs, ['link', 'add', pfNetdev, 'type', 'veth', 'peer', 'name', `${pfNetdev}_wire`]);
      ip(opts.nodeNs, ['link', 'set', pfNetdev, 'up']);
      for (const vf of pf.vfs) nic.createVfLinks(vf.index);
      return nic;
    } catch (e) {
      rmSync(root, { recursive: true, force: true });
      throw e;
    }
  }

  vf(index: number): FakePf['vfs'][number] {
    const vf = this.pf.vfs[index];
    if (!vf) throw new Error(`fake NIC has no VF ${index}`);
    return vf;
  }

  /**
   * The VF netdev and its representor as a veth pair in the node (again, after a test destroyed
   * them with a pod's netns: the kernel deletes a veth with its netns, a real VF would come back).
   * A fixed MAC and MTU, so that restoration can be checked.
   */
  createVfLinks(index: number): void {
    const vf = this.vf(index);
    ip(this.nodeNs, ['link', 'add', vf.netdev, 'address', this.originalMac(index), 'mtu', '1500', 'type', 'veth', 'peer', 'name', vf.representor as string]);
  }

  /** The MAC the VF netdev has in the node before any pod (02:fa:ce:00:00:<index>). */
  originalMac(index: number): string {
    return `02:fa:ce:00:00:${index.toString(16).padStart(2, '0')}`;
  }

  /** A link of the node's netns, or undefined. */
  nodeLink(name: string): LinkSnapshot | undefined {
    return linkIn(this.nodeNs, name);
  }

  destroy(): void {
    for (const vf of this.pf.vfs) spawnSync('ip', ['-n', this.nodeNs, 'link', 'del', vf.netdev]);
    spawnSync('ip', ['-n', this.nodeNs, 'link', 'del', this.pf.netdev]);
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** A link of a netns (by ip netns name), or undefined when it has none of that name. */
export function linkIn(ns: string, name: string): LinkSnapshot | undefined {
  const r = spawnSync('ip', ['-n', ns, '-j', 'link', 'show', 'dev', name], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const [l] = JSON.parse(r.stdout) as Array<{ ifname: string; address: string; mtu: number; flags: string[] }>;
  if (!l) return undefined;
  return { name: l.ifname, mac: l.address, mtu: l.mtu, up: l.flags.includes('UP') };
}

function ip(ns: string, args: string[]): void {
  execFileSync('ip', ['-n', ns, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}
