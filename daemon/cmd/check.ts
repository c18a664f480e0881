// CHECK: read-only comparison of the live state with prevResult (CNI spec, CHECK). It reads the
// cached OVSDB views and the pod netns; it never writes, so runtimes calling it right after
// every ADD cost almost nothing.

import { CheckError, InvalidConfigError } from '../../common/errors';
import { checkPodNetns } from '../attach/pod-netns';
import type { RequestContext } from '../context';
import { addressLine, findLsp } from '../ovn/lsp';
import { isOvnInstalled } from '../ovs/port';
import { OVS } from '../ovs/schema';
import { asArray } from '../ovsdb/values';
import { findAttachment } from '../store/lookup';

export async function cmdCheck(ctx: RequestContext): Promise<void> {
  const { req, deps } = ctx;
  const prev = req.conf.prevResult;
  if (!prev) throw new InvalidConfigError('CHECK needs prevResult');
  const [att] = findAttachment(deps, req.containerId, req.ifName).fromOvs;
  if (!att) throw new CheckError(`no attachment for container ${req.containerId} interface ${req.ifName}`);
  const iface = [...deps.ovs.rows(OVS.iface).values()].find((r) => r.name === att.hostIfName);
  if (!iface || !isOvnInstalled(iface)) throw new CheckError(`OVS port ${att.hostIfName} is missing or not installed by ovn-controller`);
  const lsp = findLsp(deps.nb, att.lspName);
  if (!lsp || !asArray<string>(lsp.addresses).includes(addressLine(att))) {
    throw new CheckError(`logical switch port ${att.lspName} is missing or has other addresses`);
  }
  const prevIps = (prev.ips ?? []).map((ip) => ip.address.split('/')[0]).sort();
  if (JSON.stringify(prevIps) !== JSON.stringify([...att.ips].sort())) {
    throw new CheckError(`prevResult IPs ${prevIps.join(',')} differ from the attachment's ${att.ips.join(',')}`);
  }
  if (att.vf) {
    // The VF's MAC is held by its PF (spoofchk relies on it); a vfio-pci VF has nothing more to check.
    const pf = await deps.sriov?.currentSettings(att.vf);
    if (pf?.mac !== att.mac) throw new CheckError(`VF ${att.vf.vf} has MAC ${pf?.mac ?? '(unknown)'} on its PF, expected ${att.mac}`);
    if (att.vf.netdev === undefined) return;
  }
  await checkPodNetns(deps, req.netns);
  const live = await deps.plumber.inspect(req.netns, req.ifName);
  if (!live) throw new CheckError(`interface ${req.ifName} is missing in ${req.netns}`);
  if (live.mac !== att.mac) throw new CheckError(`${req.ifName} has MAC ${live.mac}, expected ${att.mac}`);
  for (const ip of prev.ips ?? []) {
    if (!live.addresses.includes(ip.address)) throw new CheckError(`${req.ifName} lacks address ${ip.address}`);
  }
  for (const r of prev.routes ?? []) {
    if (!live.routes.some((l) => l.dst === r.dst && (r.gw === undefined || l.gateway === r.gw))) {
      throw new CheckError(`route ${r.dst}${r.gw ? ` via ${r.gw}` : ''} is missing in ${req.netns}`);
    }
  }
}
