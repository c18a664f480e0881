// The NIC seam: what ovnode asks of an SR-IOV NIC beyond its netdevs. PF-side VF settings go
// through the PF's driver (rtnetlink IFLA_VF_* on the PF); hw-tc-offload is an ethtool feature of
// the PF and the representors. Real implementations: pf-netlink.ts (rtnetlink) and the native
// addon's ethtool; the named test double (fake-nic.ts) records both in a file under a fake sysfs
// root, because no driver on these machines implements either.

/** A VF as its PF's driver addresses it. */
export interface VfRef {
  /** The PF's PCI address (e.g. 0000:3b:00.0): the fake NIC's key. */
  pfPci: string;
  /** The PF's netdev in the node's netns: rtnetlink addresses the VF through it. */
  pfNetdev: string;
  /** N of the PF's virtfnN link. */
  vfIndex: number;
}

export type VfLinkState = 'auto' | 'enable' | 'disable';

/** The PF-side settings of one VF (`ip link set PF vf N ...`). Rates in Mbit/s, 0 = no limit. */
export interface VfSettings {
  /** '00:00:00:00:00:00' when the VF's MAC is left to its driver. */
  mac: string;
  /** 0 = untagged. */
  vlan: number;
  /** 802.1p priority of the VLAN tag (0-7). */
  qos: number;
  spoofchk: boolean;
  trust: boolean;
  linkState: VfLinkState;
  minTxRate: number;
  maxTxRate: number;
}

export interface PfVfConfig {
  /** The VF's current settings as its PF reports them. */
  read(vf: VfRef): Promise<VfSettings>;
  /** Applies the given settings (only those present); each is checked by the driver. */
  apply(vf: VfRef, change: Partial<VfSettings>): Promise<void>;
}

export interface Nic {
  readonly vfConfig: PfVfConfig;
  /** Turns hw-tc-offload on for a netdev of the node's netns (PF or representor). */
  enableHwTcOffload(netdev: string): Promise<void>;
}

export const VF_SETTINGS_DEFAULT: VfSettings = {
  mac: '00:00:00:00:00:00', vlan: 0, qos: 0, spoofchk: true, trust: false, linkState: 'auto', minTxRate: 0, maxTxRate: 0,
};
