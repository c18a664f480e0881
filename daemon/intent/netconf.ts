// Network configuration (stdin) decoding into a typed NetConf; every wrong type is a code 7
// error naming the field, so the operator knows which line of the conflist to fix.

import { parseBoundedJson } from '../../common/bounded-json';
import { normalizeResult, parseDns, type CniDns, type CniResult, type CniVersion } from '../../common/cni-spec';
import { assertSupportedVersion } from '../../common/cni-spec';
import { DecodeError, InvalidConfigError } from '../../common/errors';
import { requireMac, requireStaticIps } from './addresses';
import { checkProvider } from './provider';
import { readVfRequest, type VfRequest } from '../sriov/vf-request';

export interface ValidAttachment { containerId: string; ifName: string }

export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  type: string;
  /** Logical switch to attach to; the daemon's default subnet when absent. */
  logicalSwitch?: string;
  /**
   * Kube-OVN's provider of a secondary network ("<nad>.<namespace>.ovn"): top-level, or in
   * "ipam" when another plugin uses ovnode for addresses only. Absent or "ovn": the cluster network.
   */
  provider?: string;
  mtu?: number;
  dns?: CniDns;
  /** Static addresses / MAC from the `ips` and `mac` capabilities (or args.cni). */
  staticIps: string[];
  staticMac?: string;
  prevResult?: CniResult;
  /** An SR-IOV network: the VF (deviceID) and its PF-side settings. */
  vf?: VfRequest;
  /** GC (CNI 1.1): attachments the runtime still wants. */
  validAttachments?: ValidAttachment[];
}

/**
 * `teardown` (DEL, GC, STATUS) reads only what those commands use: the runtime sends DEL with the
 * same netconf as the ADD, and a field that made the ADD fail must not make its cleanup fail too
 * (CNI spec: DEL should succeed when there is little or nothing to remove).
 */
export function parseNetConf(raw: string, opts: { teardown?: boolean } = {}): NetConf {
  const v = parseBoundedJson(raw, 'network configuration');
  if (!isObject(v)) throw new DecodeError('error decoding network configuration', { details: 'not a JSON object' });
  const cniVersion = assertSupportedVersion(v.cniVersion);
  const conf: NetConf = {
    cniVersion,
    name: str(v, 'name', true) as string,
    type: str(v, 'type', true) as string,
    staticIps: [],
  };
  if (opts.teardown) {
    const valid = v['cni.dev/valid-attachments'] ?? v['cni.dev/attachments'];
    if (valid !== undefined) conf.validAttachments = parseValidAttachments(valid);
    // Only a hint for DEL (the port's name): a bad one is ignored, never an error.
    try { const p = readProvider(v); if (p !== undefined) conf.provider = p; } catch { /* the ADD refused it */ }
    const vf = readVfRequest(v, true);
    if (vf) conf.vf = vf;
    return conf;
  }
  const ls = str(v, 'logicalSwitch', false) ?? str(v, 'logical_switch', false);
  if (ls !== undefined) conf.logicalSwitch = ls;
  const provider = readProvider(v);
  if (provider !== undefined) conf.provider = provider;
  if (v.mtu !== undefined) {
    if (typeof v.mtu !== 'number' || !Number.isInteger(v.mtu) || v.mtu < 576 || v.mtu > 9000) {
      throw new InvalidConfigError('invalid network config: "mtu" must be an integer between 576 and 9000');
    }
    conf.mtu = v.mtu;
  }
  if (v.dns !== undefined) {
    // The daemon echoes dns in the result: only the CNI type's string fields pass.
    try { conf.dns = parseDns(v.dns, 'dns'); } catch (e) {
      throw new InvalidConfigError(`invalid network config: "${(e as Error).message.replace(/^(\S+)/, '$1"')}`);
    }
  }
  readStatics(v, conf);
  const vf = readVfRequest(v);
  if (vf) conf.vf = vf;
  if (v.prevResult !== undefined) {
    if (!isObject(v.prevResult)) throw new InvalidConfigError('invalid network config: "prevResult" must be an object');
    try {
      conf.prevResult = normalizeResult(v.prevResult);
    } catch (e) {
      throw new InvalidConfigError(`invalid network config: "prevResult" ${(e as Error).message}`);
    }
  }
  const valid = v['cni.dev/valid-attachments'] ?? v['cni.dev/attachments'];
  if (valid !== undefined) conf.validAttachments = parseValidAttachments(valid);
  return conf;
}

function readProvider(v: Record<string, unknown>): string | undefined {
  if (v.provider !== undefined) return checkProvider(v.provider, '"provider"');
  if (isObject(v.ipam) && v.ipam.provider !== undefined) return checkProvider(v.ipam.provider, '"ipam.provider"');
  return undefined;
}

function readStatics(v: Record<string, unknown>, conf: NetConf): void {
  const rc = isObject(v.runtimeConfig) ? v.runtimeConfig : {};
  const argsCni = isObject(v.args) && isObject(v.args.cni) ? v.args.cni : {};
  const ipsSource = rc.ips !== undefined ? 'runtimeConfig "ips"' : 'args.cni "ips"';
  const ips = rc.ips ?? argsCni.ips;
  if (ips !== undefined) {
    if (!Array.isArray(ips)) throw new InvalidConfigError(`invalid network config: ${ipsSource} must be an array of strings`);
    conf.staticIps = requireStaticIps(ips, `network config: ${ipsSource}`);
  }
  const macSource = rc.mac !== undefined ? 'runtimeConfig "mac"' : 'args.cni "mac"';
  const mac = rc.mac ?? argsCni.mac;
  if (mac !== undefined) conf.staticMac = requireMac(mac, `network config: ${macSource}`);
}

function parseValidAttachments(v: unknown): ValidAttachment[] {
  if (!Array.isArray(v)) throw new InvalidConfigError('invalid network config: "cni.dev/valid-attachments" must be an array');
  return v.map((a, i) => {
    if (!isObject(a) || typeof a.containerID !== 'string' || typeof a.ifname !== 'string') {
      throw new InvalidConfigError(`invalid network config: valid-attachments[${i}] needs string containerID and ifname`);
    }
    return { containerId: a.containerID, ifName: a.ifname };
  });
}

function str(v: Record<string, unknown>, key: string, required: boolean): string | undefined {
  const x = v[key];
  if (x === undefined && !required) return undefined;
  if (typeof x !== 'string' || x === '') throw new InvalidConfigError(`invalid network config: "${key}" must be a non-empty string`);
  return x;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
