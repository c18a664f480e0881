// The SR-IOV part of a network configuration: which VF (deviceID, where Multus and the SR-IOV
// device plugin put it) and the PF-side settings the network asks for (sriov-cni's field names,
// so its NADs carry over). A pod's own annotations override the network's (vfSettingsFor).

import { InvalidConfigError } from '../../common/errors';
import type { PodObj } from '../objects/types';
import { providerAnnotation } from '../intent/provider';
import { ANNOTATION } from '../policy/port-settings';
import type { VfLinkState, VfSettings } from './nic';
import { parsePciAddress } from './sysfs';

export interface VfRequest {
  /** The VF's PCI address, canonical. */
  deviceId: string;
  vlan?: number;
  qos?: number;
  spoofchk?: boolean;
  trust?: boolean;
  linkState?: VfLinkState;
  minTxRate?: number;
  maxTxRate?: number;
}

const LINK_STATES: readonly VfLinkState[] = ['auto', 'enable', 'disable'];

/**
 * Reads deviceID (top level, as Multus writes it, or runtimeConfig.deviceID) and the VF settings;
 * undefined when the network is not an SR-IOV one. `lenient` (teardown) ignores bad settings: a
 * DEL must not fail on what made its ADD fail.
 */
export function readVfRequest(v: Record<string, unknown>, lenient = false): VfRequest | undefined {
  const rc = isObject(v.runtimeConfig) ? v.runtimeConfig : {};
  const raw = v.deviceID ?? rc.deviceID;
  if (raw === undefined) return undefined;
  const field = v.deviceID !== undefined ? '"deviceID"' : 'runtimeConfig "deviceID"';
  let deviceId: string;
  try {
    deviceId = parsePciAddress(raw);
  } catch (e) {
    if (lenient) return undefined;
    throw new InvalidConfigError(`invalid network config: ${field} ${(e as Error).message}`);
  }
  const req: VfRequest = { deviceId };
  if (lenient) return req;
  const vlan = int(v, 'vlan', 0, 4095);
  if (vlan !== undefined) req.vlan = vlan;
  const qos = int(v, 'vlanQoS', 0, 7);
  if (qos !== undefined) req.qos = qos;
  const spoofchk = onOff(v, 'spoofchk');
  if (spoofchk !== undefined) req.spoofchk = spoofchk;
  const trust = onOff(v, 'trust');
  if (trust !== undefined) req.trust = trust;
  if (v.link_state !== undefined) {
    if (!LINK_STATES.includes(v.link_state as VfLinkState)) throw new InvalidConfigError(`invalid network config: "link_state" must be one of ${LINK_STATES.join(', ')}`);
    req.linkState = v.link_state as VfLinkState;
  }
  const min = int(v, 'min_tx_rate', 0, 1_000_000);
  if (min !== undefined) req.minTxRate = min;
  const max = int(v, 'max_tx_rate', 0, 1_000_000);
  if (max !== undefined) req.maxTxRate = max;
  if (min !== undefined && max !== undefined && max > 0 && min > max) throw new InvalidConfigError('invalid network config: "min_tx_rate" must not exceed "max_tx_rate"');
  return req;
}

/**
 * The PF-side settings an attachment gets: its MAC always (the VF cannot change it when
 * spoofchk is on), the network's settings, then the pod's: `<provider>.kubernetes.io/vlan_id`
 * and the egress rate annotation (Mbit/s, as max_tx_rate: what the VF may send).
 */
export function vfSettingsFor(req: VfRequest, mac: string, pod: PodObj | undefined, provider: string | undefined): Partial<VfSettings> {
  const out: Partial<VfSettings> = { mac };
  if (req.vlan !== undefined) { out.vlan = req.vlan; out.qos = req.qos ?? 0; }
  if (req.spoofchk !== undefined) out.spoofchk = req.spoofchk;
  if (req.trust !== undefined) out.trust = req.trust;
  if (req.linkState !== undefined) out.linkState = req.linkState;
  if (req.minTxRate !== undefined || req.maxTxRate !== undefined) {
    out.minTxRate = req.minTxRate ?? 0;
    out.maxTxRate = req.maxTxRate ?? 0;
  }
  const ann = pod?.metadata.annotations ?? {};
  const vlanKey = provider === undefined ? 'ovn.kubernetes.io/vlan_id' : providerAnnotation(provider, 'vlan_id');
  const rateKey = provider === undefined ? ANNOTATION.egressRate : providerAnnotation(provider, 'egress_rate');
  const vlan = annotationInt(ann[vlanKey], vlanKey, 0, 4095);
  if (vlan !== undefined) { out.vlan = vlan; out.qos = out.qos ?? 0; }
  const rate = annotationInt(ann[rateKey], rateKey, 0, 1_000_000);
  if (rate !== undefined) {
    out.maxTxRate = rate;
    out.minTxRate = Math.min(out.minTxRate ?? 0, rate === 0 ? Infinity : rate);
  }
  return out;
}

function annotationInt(v: string | undefined, key: string, min: number, max: number): number | undefined {
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v.trim());
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidConfigError(`pod annotation ${key}: "${v}" is not an integer from ${min} to ${max}`);
  return n;
}

function int(v: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const x = v[key];
  if (x === undefined) return undefined;
  if (typeof x !== 'number' || !Number.isInteger(x) || x < min || x > max) throw new InvalidConfigError(`invalid network config: "${key}" must be an integer from ${min} to ${max}`);
  return x;
}

function onOff(v: Record<string, unknown>, key: string): boolean | undefined {
  const x = v[key];
  if (x === undefined) return undefined;
  if (x !== 'on' && x !== 'off') throw new InvalidConfigError(`invalid network config: "${key}" must be "on" or "off"`);
  return x === 'on';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
