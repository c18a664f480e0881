// CNI_ARGS ("K=V;K=V", CNI spec "Parameters") decoding. Runtimes send the K8S_POD_* keys and
// IgnoreUnknown; like the reference plugins we refuse unknown keys unless IgnoreUnknown is set,
// so a typo in a static IP key does not silently give a pod a random address.

import { InvalidEnvError } from '../../common/errors';
import { requireMac, requireStaticIps } from './addresses';

export interface CniArgs {
  podNamespace?: string;
  podName?: string;
  podUid?: string;
  infraContainerId?: string;
  /** Legacy static-address keys (IP=..., MAC=...) some tools still send. */
  ips?: string[];
  mac?: string;
}

const KNOWN = new Set(['IgnoreUnknown', 'K8S_POD_NAMESPACE', 'K8S_POD_NAME', 'K8S_POD_UID', 'K8S_POD_INFRA_CONTAINER_ID', 'IP', 'MAC']);

/**
 * `teardown` (DEL, GC): only the pod identity is read, and nothing is refused, so that the
 * cleanup of an ADD that failed on its CNI_ARGS can never fail on them too.
 */
export function parseCniArgs(raw: string | undefined, opts: { teardown?: boolean } = {}): CniArgs {
  const pairs = new Map<string, string>();
  for (const part of (raw ?? '').split(';')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) {
      if (opts.teardown) continue;
      throw new InvalidEnvError(`CNI_ARGS: invalid pair ${JSON.stringify(part)} (want KEY=VALUE)`);
    }
    pairs.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const ignoreUnknown = opts.teardown === true || /^(1|true)$/i.test(pairs.get('IgnoreUnknown') ?? '');
  if (!ignoreUnknown) {
    const unknown = [...pairs.keys()].filter((k) => !KNOWN.has(k));
    if (unknown.length > 0) throw new InvalidEnvError(`CNI_ARGS: unknown key(s) ${unknown.join(', ')} (set IgnoreUnknown=1 to allow)`);
  }
  const args: CniArgs = {};
  const set = (k: string, f: keyof CniArgs): void => {
    const v = pairs.get(k);
    if (v) (args as Record<string, unknown>)[f] = v;
  };
  set('K8S_POD_NAMESPACE', 'podNamespace');
  set('K8S_POD_NAME', 'podName');
  set('K8S_POD_UID', 'podUid');
  set('K8S_POD_INFRA_CONTAINER_ID', 'infraContainerId');
  if (opts.teardown) return args;
  const mac = pairs.get('MAC');
  if (mac) args.mac = requireMac(mac, 'CNI_ARGS "MAC"');
  const ip = pairs.get('IP');
  if (ip) args.ips = requireStaticIps(ip.split(',').map((s) => s.trim()).filter(Boolean), 'CNI_ARGS "IP"');
  return args;
}
