// The checkpoint of a VF attachment: what the VF was before ovnode touched it, kept in OVSDB
// (the representor's Interface external_ids, written before the first change to the VF), so a
// DEL, a restarted daemon or the leak reconciler can put it back whatever happened in between.
// The same row is the VF's ownership record: one Interface row per VF at most.

import { VF_SETTINGS_DEFAULT, type VfLinkState, type VfSettings } from './nic';

export const VF_CHECKPOINT_KEY = 'ovnode:vf';

export interface VfCheckpoint {
  /** The VF's PCI address (the ownership key). */
  vf: string;
  pfPci: string;
  pfNetdev: string;
  vfIndex: number;
  /** Its switchdev representor: the OVS port. */
  representor: string;
  /** The VF netdev's name in the node before the ADD; absent for a VF without netdev (vfio-pci). */
  netdev?: string;
  /** That netdev's MAC and MTU before the ADD. */
  mac?: string;
  mtu?: number;
  /** Name the netdev carries while it crosses between namespaces. */
  tempName: string;
  /** The VF's PF-side settings before the ADD. */
  settings: VfSettings;
}

export function encodeVfCheckpoint(c: VfCheckpoint): string {
  return JSON.stringify(c);
}

/** The checkpoint in an Interface's external_ids; undefined when absent or unreadable (never ours then). */
export function decodeVfCheckpoint(text: string | undefined): VfCheckpoint | undefined {
  if (text === undefined) return undefined;
  let v: unknown;
  try { v = JSON.parse(text); } catch { return undefined; }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const s = typeof o.settings === 'object' && o.settings !== null ? o.settings as Record<string, unknown> : {};
  if (typeof o.vf !== 'string' || typeof o.pfPci !== 'string' || typeof o.pfNetdev !== 'string' || typeof o.representor !== 'string'
    || typeof o.tempName !== 'string' || !Number.isInteger(o.vfIndex)) return undefined;
  const settings: VfSettings = {
    mac: typeof s.mac === 'string' ? s.mac : VF_SETTINGS_DEFAULT.mac,
    vlan: num(s.vlan, VF_SETTINGS_DEFAULT.vlan),
    qos: num(s.qos, VF_SETTINGS_DEFAULT.qos),
    spoofchk: typeof s.spoofchk === 'boolean' ? s.spoofchk : VF_SETTINGS_DEFAULT.spoofchk,
    trust: typeof s.trust === 'boolean' ? s.trust : VF_SETTINGS_DEFAULT.trust,
    linkState: ['auto', 'enable', 'disable'].includes(s.linkState as string) ? s.linkState as VfLinkState : VF_SETTINGS_DEFAULT.linkState,
    minTxRate: num(s.minTxRate, 0),
    maxTxRate: num(s.maxTxRate, 0),
  };
  const c: VfCheckpoint = { vf: o.vf, pfPci: o.pfPci, pfNetdev: o.pfNetdev, vfIndex: o.vfIndex as number, representor: o.representor, tempName: o.tempName, settings };
  if (typeof o.netdev === 'string') c.netdev = o.netdev;
  if (typeof o.mac === 'string') c.mac = o.mac;
  if (typeof o.mtu === 'number') c.mtu = o.mtu;
  return c;
}

function num(v: unknown, dflt: number): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : dflt;
}
