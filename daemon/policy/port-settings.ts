// Per-pod port settings from annotations: port security (on unless "false"), VIPs allowed in
// port security, and QoS rate limits. Kube-OVN's annotation names, "ovn" provider prefix.

import { isIP } from 'node:net';
import type { ObjectStore, PodObj } from '../objects/types';
import type { DesiredQos } from './model';

export const ANNOTATION = {
  logicalSwitch: 'ovn.kubernetes.io/logical_switch',
  ipAddress: 'ovn.kubernetes.io/ip_address',
  macAddress: 'ovn.kubernetes.io/mac_address',
  /** "true" once a node wrote the pod's allocation back: ip_address is then a record, not a request. */
  allocated: 'ovn.kubernetes.io/allocated',
  portSecurity: 'ovn.kubernetes.io/port_security',
  securityGroups: 'ovn.kubernetes.io/security_groups',
  vip: 'ovn.kubernetes.io/vip',
  ingressRate: 'ovn.kubernetes.io/ingress_rate',
  egressRate: 'ovn.kubernetes.io/egress_rate',
} as const;

const QOS_PRIORITY = 2001;

export function portSecurityEnabled(pod: PodObj | undefined): boolean {
  return (pod?.metadata.annotations[ANNOTATION.portSecurity] ?? 'true').trim().toLowerCase() !== 'false';
}

/** The VIP addresses a pod may use: annotation entries are Vip object names or plain IPs. */
export function podVips(store: ObjectStore, pod: PodObj | undefined): string[] {
  const entries = (pod?.metadata.annotations[ANNOTATION.vip] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const out: string[] = [];
  for (const e of entries) {
    const vip = store.get('Vip', e);
    if (vip) out.push(...[vip.spec.v4ip, vip.spec.v6ip].filter((x): x is string => Boolean(x)));
    else if (isIP(e) !== 0) out.push(e);
  }
  return out;
}

/** port_security entries of a pod's port: "MAC IP... VIP..." or none. */
export function portSecurityLine(store: ObjectStore, pod: PodObj | undefined, mac: string, ips: string[]): string[] {
  if (!portSecurityEnabled(pod)) return [];
  return [[mac, ...ips, ...podVips(store, pod).filter((v) => !ips.includes(v))].join(' ')];
}

function mbit(v: string | undefined): number | undefined {
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

/** QoS rules of one pod: egress = traffic it sends, ingress = traffic it receives (Mbit/s). */
export function podQos(pod: PodObj | undefined, lspName: string): DesiredQos[] {
  const owner = `qos/${lspName}`;
  const out: DesiredQos[] = [];
  const egress = mbit(pod?.metadata.annotations[ANNOTATION.egressRate]);
  const ingress = mbit(pod?.metadata.annotations[ANNOTATION.ingressRate]);
  // Policing needs a burst sized for TCP: one second's worth (see LAB-OVN-USERSPACE.md).
  if (egress) out.push({ direction: 'from-lport', priority: QOS_PRIORITY, match: `inport == "${lspName}"`, rate: Math.round(egress * 1000), burst: Math.round(egress * 1000), owner });
  if (ingress) out.push({ direction: 'to-lport', priority: QOS_PRIORITY, match: `outport == "${lspName}"`, rate: Math.round(ingress * 1000), burst: Math.round(ingress * 1000), owner });
  return out;
}
