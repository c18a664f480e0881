// ADD, step by step as in DESIGN.md: intent -> IPAM -> plumb -> OVN NB (one transaction) ->
// OVS (one transaction) -> wait ovn-installed (monitor) -> announce -> result. Each side effect
// pushes its inverse, so any failure leaves nothing behind.

import type { CniResult } from '../../common/cni-spec';
import { InvalidEnvError, IpamError } from '../../common/errors';
import type { RequestContext } from '../context';
import type { Family } from '../ipam/cidr';
import { macForIp } from '../ipam/mac';
import type { SubnetPool } from '../ipam/pool';
import { buildIntent, type PodIntent } from '../intent/intent';
import { createLsp, deleteLsp } from '../ovn/lsp';
import { attachPort, detachPort, waitOvnInstalled } from '../ovs/port';
import type { Attachment } from '../store/attachment';
import { UndoStack } from '../undo';
import type { PodObj } from '../objects/types';
import { portSecurityLine } from '../policy/port-settings';
import type { PodPort } from '../policy/pods';
import { buildResult } from './result';

export async function cmdAdd(ctx: RequestContext): Promise<CniResult> {
  const { deps, req, log, signal } = ctx;
  const pod = req.args.podName && req.args.podNamespace ? deps.objects.get('Pod', req.args.podName, req.args.podNamespace) : undefined;
  const podSwitch = deps.policy.switchFor(pod, req.args.podNamespace);
  const intent = buildIntent(req, deps.node, deps.subnets.defaultSwitch, podSwitch ? { pod, logicalSwitch: podSwitch } : { pod });
  if (!deps.native.exists(req.netns)) throw new InvalidEnvError(`CNI_NETNS ${req.netns} is not a network namespace`);
  const pool = deps.subnets.get(intent.logicalSwitch);
  const undo = new UndoStack(log);
  const timed = stepTimer(ctx);
  try {
    const attachment = timed('ipam', () => allocate(ctx, intent, pool, undo));
    // The NB write touches neither the kernel nor OVS, so it runs while the veth is plumbed and
    // attached; ovn-controller binds the port once both exist. settleAll waits for both sides
    // before failing, so every undo is pushed before the unwind starts.
    let hostMac = '';
    await settleAll([
      timed('ovn', () => createLsp(deps.nb, {
        attachment,
        portSecurity: portSecurityLine(deps.objects, pod, attachment.mac, attachment.ips),
        // Port groups and address sets this pod belongs to join the same transaction: policies
        // hold from the port's first packet.
        extraOps: (lspRef) => deps.policy.admissionOps(admissionView(attachment, pod), lspRef),
      }, signal))
        .then(() => undo.push('logical switch port', () => deleteLsp(deps.nb, attachment.lspName))),
      (async () => {
        ({ hostMac } = await timed('plumb', () => plumbPod(ctx, intent, attachment, pool, undo)));
        await timed('ovs', () => attachPort(deps.ovs, { bridge: deps.node.bridge, attachment }, signal));
        undo.push('ovs port', () => detachPort(deps.ovs, deps.node.bridge, attachment.hostIfName));
      })(),
    ]);
    await timed('wait', () => waitOvnInstalled(deps.ovs, attachment.hostIfName, signal));
    // Best effort and off the reply path: OVN already knows the binding (port security, static
    // addresses); the announcement only refreshes neighbours that cached an old MAC for the IP.
    void timed('announce', () => deps.plumber.announce({ netns: req.netns, ifName: req.ifName, mac: attachment.mac, ips: attachment.ips }))
      .catch((e: unknown) => log.warn({ step: 'announce', err: String(e) }, 'address announcement failed'));
    // This sandbox took the pod's port over: addresses the earlier sandbox held and this one
    // does not use are free now.
    for (const ip of pool.holdings(attachment.lspName)) if (!attachment.ips.includes(ip)) pool.releaseIp(ip, attachment.lspName);
    log.info({ step: 'done', ips: attachment.ips, mac: attachment.mac, lsp: attachment.lspName }, 'attached');
    deps.policy.scheduleSoon('pod added');
    return buildResult({ attachment, hostMac, pool, conf: req.conf, mtu: intent.mtu });
  } catch (e) {
    await undo.unwind();
    throw e;
  }
}

function allocate(ctx: RequestContext, intent: PodIntent, pool: SubnetPool, undo: UndoStack): Attachment {
  const { req } = ctx;
  const ips: string[] = [];
  // The port name is the pod's, shared by its sandboxes: a live earlier sandbox may hold
  // addresses under it. Undo frees only what this ADD newly took.
  const prior = new Set(pool.holdings(intent.lspName));
  undo.push('ip addresses', () => ips.filter((ip) => !prior.has(ip)).forEach((ip) => pool.releaseIp(ip, intent.lspName)));
  if (intent.staticIps.length > 0) {
    for (const ip of intent.staticIps) { pool.reserve(ip, intent.lspName); ips.push(ip); }
  } else {
    for (const family of pool.families) ips.push(pool.allocate(intent.lspName, family as Family));
  }
  if (ips.length === 0) throw new IpamError(`no address for ${intent.lspName}`);
  ips.sort((a, b) => Number(a.includes(':')) - Number(b.includes(':')));
  const a: Attachment = {
    sandbox: req.containerId, ifName: req.ifName, netns: req.netns, network: req.conf.name,
    lspName: intent.lspName, logicalSwitch: intent.logicalSwitch, hostIfName: intent.hostIfName,
    mac: intent.staticMac ?? macForIp(ips.find((ip) => !ip.includes(':'))), ips,
  };
  if (intent.podName) a.podName = intent.podName;
  if (intent.podNamespace) a.podNamespace = intent.podNamespace;
  if (intent.podUid) a.podUid = intent.podUid;
  return a;
}

async function plumbPod(ctx: RequestContext, intent: PodIntent, a: Attachment, pool: SubnetPool, undo: UndoStack): Promise<{ hostMac: string }> {
  const { deps, req } = ctx;
  const addresses = a.ips.map((ip) => `${ip}/${pool.cidr(ip.includes(':') ? 6 : 4)?.prefix}`);
  const gateways = a.ips.map((ip) => pool.gateway(ip.includes(':') ? 6 : 4) as string);
  undo.push('veth', () => deps.plumber.destroy(a.hostIfName));
  return deps.plumber.create({
    netns: req.netns, hostIfName: a.hostIfName, podIfName: req.ifName, mac: a.mac, mtu: intent.mtu,
    addresses, gateways, disableTxChecksum: deps.node.datapathType === 'netdev',
  });
}

function admissionView(a: Attachment, pod: PodObj | undefined): Omit<PodPort, 'namespaceLabels'> {
  const view: Omit<PodPort, 'namespaceLabels'> = {
    lspName: a.lspName, name: a.podName ?? '', namespace: a.podNamespace ?? '', logicalSwitch: a.logicalSwitch,
    mac: a.mac, ips: a.ips, labels: pod?.metadata.labels ?? {},
  };
  if (pod) view.pod = pod;
  return view;
}

/** Like Promise.all, but waits for every promise, so no undo is pushed after the unwind began. */
async function settleAll(ps: Array<Promise<unknown>>): Promise<void> {
  const failed = (await Promise.allSettled(ps)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Runs a step, recording its duration in the step histogram and on the log line. */
function stepTimer({ deps, log }: RequestContext) {
  return <T>(step: string, fn: () => T): T => {
    const start = process.hrtime.bigint();
    const done = (): void => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      deps.metrics.stepDuration.observe({ step }, ms / 1000);
      log.debug({ step, ms }, 'step done');
    };
    const out = fn();
    if (out instanceof Promise) return out.finally(done) as T;
    done();
    return out;
  };
}
