// ADD, step by step as in DESIGN.md: intent -> IPAM -> plumb -> OVN NB (one transaction) ->
// OVS (one transaction) -> wait ovn-installed (monitor) -> announce -> result. Each side effect
// pushes its inverse, so any failure leaves nothing behind.

import type { CniResult } from '../../common/cni-spec';
import { InvalidConfigError, IpamError } from '../../common/errors';
import type { RequestContext } from '../context';
import type { Family } from '../ipam/cidr';
import { macForIp } from '../ipam/mac';
import type { SubnetPool } from '../ipam/pool';
import { buildIntent, type PodIntent, type PodSource } from '../intent/intent';
import { interfaceProvider, isPrimaryProvider, PRIMARY_PROVIDER, providerSubnet } from '../intent/provider';
import { allowsMigration, isMigrationTarget, KUBEVIRT, vmAddressOf, vmOf, vmPods } from '../cluster/kubevirt';
import { TrackedWrite, undoTrackedWrite } from '../attach/tracked-write';
import { parsePortHolder, portHolder } from '../ipam/pool';
import { createLsp, deleteLspRow, findLsp, ownLsps } from '../ovn/lsp';
import { attachPort, detachPortRow, ownPortUuids, waitOvnInstalled } from '../ovs/port';
import { atStep } from './step-errors';
import { checkPodNetns, type NetnsIdentity } from '../attach/pod-netns';
import type { Attachment } from '../store/attachment';
import { UndoStack } from '../undo';
import { asMap } from '../ovsdb/values';
import { EXT } from '../store/external-ids';
import type { PodObj } from '../objects/types';
import { portSecurityLine } from '../policy/port-settings';
import type { PodPort } from '../policy/pods';
import { poolNetwork } from '../cluster/hooks';
import { portKeyIn } from '../cluster/tunnel-keys';
import { buildResult } from './result';
import { releaseVf } from './del';
import { findAttachment } from '../store/lookup';
import type { VfAttacher } from '../sriov/vf-attach';
import type { VfCheckpoint } from '../sriov/vf-checkpoint';
import { vfSettingsFor, type VfRequest } from '../sriov/vf-request';

export async function cmdAdd(ctx: RequestContext): Promise<CniResult> {
  const { deps, req } = ctx;
  const vfRequest = req.conf.vf;
  if (vfRequest === undefined) return addAttachment(ctx, undefined);
  const sriov = deps.sriov;
  if (!sriov) throw new InvalidConfigError(`network config names VF ${vfRequest.deviceId} ("deviceID"), but this node's daemon runs without SR-IOV support`);
  // An earlier ADD of this very attachment that never got its DEL (a daemon killed mid-ADD, a
  // runtime retrying) still holds its VF: that VF is put back first, so what this ADD records as
  // the VF's original state really is.
  for (const earlier of findAttachment(deps, req.containerId, req.ifName).fromOvs) {
    if (earlier.vf) await releaseVf(deps, earlier);
  }
  // The VF is held for the whole ADD: a late DEL of its previous pod, or a second ADD naming it,
  // waits and then finds this one's checkpoint (and refuses) instead of racing it.
  return sriov.withVf(vfRequest.deviceId, async () => {
    const vf = await atStep('vf', () => sriov.describe(vfRequest.deviceId, { sandbox: req.containerId, ifName: req.ifName }));
    return addAttachment(ctx, { sriov, request: vfRequest, checkpoint: vf });
  });
}

interface VfAdd { sriov: VfAttacher; request: VfRequest; checkpoint: VfCheckpoint }

async function addAttachment(ctx: RequestContext, vf: VfAdd | undefined): Promise<CniResult> {
  const { deps, req, log, signal } = ctx;
  const started = performance.now();
  const pod = await podOf(ctx);
  const intent = buildIntent(req, deps.node, deps.subnets.defaultSwitch, podSource(ctx, pod));
  const netnsIdentity = await checkPodNetns(deps, req.netns);
  const pool = deps.subnets.forPods(intent.logicalSwitch);
  // A static address a DEL just released is held until its conntrack flush is done; so is every
  // such address when a dynamic allocation would otherwise find the subnet full.
  if (intent.staticIps.length > 0) await deps.conntrack?.whenFlushed(intent.staticIps);
  else if (deps.conntrack && deps.conntrack.flushing > 0 && !pool.hasFree()) await deps.conntrack.whenAllFlushed();
  // A port prepared for this pod (its binding made before the ADD) is taken over, not raced.
  const endPrepared = deps.prepared && req.ifName === 'eth0' && intent.provider === undefined && intent.podName && intent.podNamespace
    ? await deps.prepared.beginAdd({ lspName: intent.lspName, namespace: intent.podNamespace, name: intent.podName }, signal)
    : undefined;
  const undo = new UndoStack(log);
  const timed = stepTimer(ctx);
  // Each undo is registered before its write and checks, when it runs, what really happened to
  // it; addresses are freed only once the LSP that carries them is confirmed gone.
  const lspWrite = new TrackedWrite();
  const portWrite = new TrackedWrite();
  let lspGone = true;
  try {
    const attachment = await timed('ipam', () => atStep('ipam', () => allocate(ctx, intent, pool, undo, () => lspGone)));
    // A VF's OVS port is its representor, and its Interface row carries the VF's checkpoint.
    if (vf) { attachment.hostIfName = vf.checkpoint.representor; attachment.vf = vf.checkpoint; }
    undo.push('logical switch port', async () => {
      lspGone = await undoTrackedWrite(lspWrite, {
        client: deps.nb,
        findOwn: () => ownLsps(deps.nb, attachment.lspName, attachment.sandbox, attachment.ifName).map((r) => r.uuid),
        remove: async (uuids) => { for (const u of uuids) await deleteLspRow(deps.nb, u, attachment.logicalSwitch); },
      }, log);
      if (!lspGone) throw new Error(`logical switch port ${attachment.lspName} could not be confirmed removed; the reconcile loop will remove it`);
    });
    // The NB write touches neither the kernel nor OVS, so it runs while the veth is plumbed and
    // attached; ovn-controller binds the port once both exist. settleAll waits for both sides
    // before failing, so the unwind never overlaps a write still in flight.
    let hostMac = '';
    await settleAll([
      timed('ovn', () => atStep('ovn', () => lspWrite.run(() => createLsp(deps.nb, {
        attachment,
        portSecurity: portSecurityLine(deps.objects, pod, attachment.mac, attachment.ips),
        tunnelKey: portKeyIn(pool.cidr(4) ?? pool.cidr(6), attachment.ips),
        // A VM's port is requested where its VM is bound: a migration target's stays blocked
        // until the VM's RARP arrives here.
        options: deps.cluster?.vmPortOptions?.(pod) ?? {},
        // Port groups and address sets this pod belongs to join the same transaction: policies
        // hold from the port's first packet.
        extraOps: (lspRef) => deps.policy.admissionOps(admissionView(attachment, pod), lspRef),
      })))),
      (async () => {
        // The OVS port needs only the host end: it is written while the pod side is configured.
        const attachOvsPort = async (): Promise<void> => {
          undo.push('ovs port', async () => {
            const gone = await undoTrackedWrite(portWrite, {
              client: deps.ovs,
              findOwn: () => ownPortUuids(deps.ovs, attachment.hostIfName, attachment.sandbox),
              remove: async (uuids) => { for (const u of uuids) await detachPortRow(deps.ovs, deps.node.bridge, u); },
            }, log);
            if (!gone) throw new Error(`OVS port ${attachment.hostIfName} could not be confirmed removed; the reconcile loop will remove it`);
          });
          await timed('ovs', () => atStep('ovs', () => portWrite.run(() => attachPort(deps.ovs, { bridge: deps.node.bridge, attachment }))));
        };
        const plumbing = { intent, attachment, pool, undo, netnsIdentity, onHostSide: attachOvsPort };
        ({ hostMac } = await timed('plumb', () => atStep('plumb', () => (vf ? plumbVf(ctx, plumbing, vf, pod) : plumbPod(ctx, plumbing)))));
      })(),
    ]);
    await timed('wait', () => atStep('wait', () => waitOvnInstalled(deps.ovs, attachment.hostIfName, signal)));
    // Best effort and off the reply path: OVN already knows the binding (port security, static
    // addresses); the announcement only refreshes neighbours that cached an old MAC for the IP.
    // A migration target announces nothing: the address is the running VM's until the VM's own
    // RARP moves it here.
    if ((vf?.checkpoint.netdev !== undefined || !vf) && !intent.migrationTarget) {
      void timed('announce', () => deps.plumber.announce({ netns: req.netns, ifName: req.ifName, mac: attachment.mac, ips: attachment.ips }))
        .catch((e: unknown) => log.warn({ step: 'announce', err: e }, 'address announcement failed'));
    }
    // This sandbox took the pod's port over: addresses an earlier sandbox held and this one
    // does not use are free now.
    const freed = pool.heldBySamePort(portHolder(attachment.lspName, attachment.sandbox))
      .filter(({ ip, holder }) => !attachment.ips.includes(ip) && pool.releaseIp(ip, holder))
      .map(({ ip }) => ip);
    // Like any released address: held until the earlier sandbox's connections are flushed.
    if (freed.length > 0) void deps.conntrack?.released(freed);
    // The ADD's own duration (pod lookup to ovn-installed), for operators and bench:cluster.
    log.info({ step: 'done', ips: attachment.ips, mac: attachment.mac, lsp: attachment.lspName, ms: +(performance.now() - started).toFixed(2) }, 'attached');
    deps.policy.scheduleSoon('pod added');
    deps.cluster?.attached(attachment, poolNetwork(pool, attachment.ips));
    return buildResult({ attachment, hostMac, pool, conf: req.conf, mtu: intent.mtu, ...(vf ? { vf: vf.checkpoint } : {}) });
  } catch (e) {
    await undo.unwind();
    throw e;
  } finally {
    endPrepared?.();
  }
}

/**
 * Which network of the pod this is and its subnet: the cluster network's from the pod's annotation
 * or namespace; a secondary network's (a NAD with its own provider) from its provider, refused
 * when no Subnet is bound to it.
 */
function podSource(ctx: RequestContext, pod: PodObj | undefined): PodSource {
  const { deps, req } = ctx;
  const provider = req.conf.provider;
  if (provider === undefined || isPrimaryProvider(provider)) {
    const ls = deps.policy.switchFor(pod, req.args.podNamespace);
    return { ...(ls ? { pod, logicalSwitch: ls } : { pod }), ...vmSource(ctx, pod, PRIMARY_PROVIDER) };
  }
  const named = interfaceProvider(pod, provider, req.ifName);
  const logicalSwitch = req.conf.logicalSwitch ?? providerSubnet(deps.objects, pod, provider, named);
  return { pod, logicalSwitch, provider: named, ...vmSource(ctx, pod, named) };
}

/**
 * A virt-launcher pod's interface is its VM's port: named for the VM, with the MAC and addresses
 * another pod of the VM holds (a live migration's source). A migration target of a VM that does
 * not allow migration over the pod network is refused, as KubeVirt would not migrate it.
 */
function vmSource({ deps }: RequestContext, pod: PodObj | undefined, provider: string): Pick<PodSource, 'portBase' | 'vmAddress' | 'migrationTarget'> {
  const vm = vmOf(pod);
  if (!vm || !pod) return {};
  if (isMigrationTarget(pod) && !allowsMigration(pod)) {
    throw new InvalidConfigError(`pod ${vm.namespace}/${pod.metadata.name} is a live migration target of VM ${vm.name}, which does not allow migration over the pod network (annotation ${KUBEVIRT.allowMigration})`);
  }
  const vmAddress = vmAddressOf(vmPods(deps.objects, vm), pod.metadata, provider);
  return {
    portBase: vm.name,
    ...(vmAddress ? { vmAddress } : {}),
    ...(vmAddress && isMigrationTarget(pod) ? { migrationTarget: true } : {}),
  };
}

/** The Pod object of the request: from the API watch on a cluster (waited for), else the manifests. */
async function podOf({ deps, req, signal }: RequestContext): Promise<PodObj | undefined> {
  const { podName, podNamespace, podUid } = req.args;
  if (!podName || !podNamespace) return undefined;
  if (deps.cluster) return deps.cluster.podFor(podNamespace, podName, podUid, signal);
  return deps.objects.get('Pod', podName, podNamespace);
}

async function allocate(ctx: RequestContext, intent: PodIntent, pool: SubnetPool, undo: UndoStack, lspGone: () => boolean): Promise<Attachment> {
  const { req } = ctx;
  const holder = portHolder(intent.lspName, req.containerId);
  // The pool itself, or (on a cluster) the node's claimed blocks of it.
  const allocator = ctx.deps.subnets.allocatorFor(pool);
  const opts = intent.podName && intent.podNamespace ? { signal: ctx.signal, pod: `${intent.podNamespace}/${intent.podName}` } : { signal: ctx.signal };
  // What this ADD claimed, and from whom: an address taken over from an earlier sandbox of the
  // same pod goes back to it if that sandbox's port still exists when this ADD fails.
  const claimed: Array<{ ip: string; from: string | undefined }> = [];
  undo.push('ip addresses', () => {
    if (!lspGone()) return; // the port may still carry them: the reconcile loop frees them with it
    for (const { ip, from } of claimed) {
      if (pool.ownerOf(ip) !== holder) continue;
      // Back to the earlier sandbox only while its port still carries the address; this ADD's
      // LSP write (same name) may have replaced that port already.
      if (from !== undefined && from !== holder && holderHasLsp(ctx.deps, from)) pool.restore(ip, from);
      else pool.releaseIp(ip, holder);
    }
  });
  const ips: string[] = [];
  const take = async (ip: string, vmAddress = false): Promise<void> => {
    const from = pool.ownerOf(ip);
    // An address this node holds for the same port already (an earlier sandbox, or a VM's address
    // kept for it) is the port's by that hold: no claim to make. So is a VM's address another of
    // its pods holds: the VM owns it cluster-wide, wherever it runs.
    if (vmAddress || (from !== undefined && parsePortHolder(from)?.lspName === intent.lspName) || from === intent.lspName) pool.reserve(ip, holder);
    else await allocator.reserve(ip, holder, opts);
    claimed.push({ ip, from });
    ips.push(ip);
  };
  // The pod's earlier addresses, if all of them can still be its own; otherwise new ones.
  const takePreferred = async (): Promise<boolean> => {
    if (intent.preferredIps.length === 0) return false;
    try {
      for (const ip of intent.preferredIps) await take(ip);
      return true;
    } catch (e) {
      if (!(e instanceof IpamError)) throw e;
      for (const { ip, from } of claimed.splice(0)) {
        if (from !== undefined && from !== holder) pool.restore(ip, from); else pool.releaseIp(ip, holder);
      }
      ips.length = 0;
      ctx.log.info({ step: 'ipam', preferred: intent.preferredIps, reason: e.message }, 'earlier addresses not available; allocating new ones');
      return false;
    }
  };
  if (intent.vmIps.length > 0) {
    for (const ip of intent.vmIps) await take(ip, true);
  } else if (intent.staticIps.length > 0) {
    for (const ip of intent.staticIps) await take(ip);
  } else if (!(await takePreferred())) {
    for (const family of pool.families) {
      const before = new Map(pool.heldBySamePort(holder).map((h) => [h.ip, h.holder]));
      const ip = await allocator.allocate(holder, family as Family, opts);
      claimed.push({ ip, from: before.get(ip) });
      ips.push(ip);
    }
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
  if (intent.provider !== undefined) a.provider = intent.provider;
  return a;
}

interface PlumbInput {
  intent: PodIntent;
  attachment: Attachment;
  pool: SubnetPool;
  undo: UndoStack;
  netnsIdentity: NetnsIdentity;
  /** Runs once the host end of the veth exists (the OVS port write). */
  onHostSide: () => Promise<void>;
}

async function plumbPod(ctx: RequestContext, { intent, attachment: a, pool, undo, netnsIdentity, onHostSide }: PlumbInput): Promise<{ hostMac: string }> {
  const { deps, req } = ctx;
  const { addresses, gateways } = addressing(intent, a, pool);
  undo.push('veth', () => deps.plumber.destroy(a.hostIfName));
  return deps.plumber.create({
    netns: req.netns, netnsIdentity, hostIfName: a.hostIfName, podIfName: req.ifName, mac: a.mac, mtu: intent.mtu,
    addresses, gateways, disableTxChecksum: deps.node.datapathType === 'netdev',
  }, onHostSide);
}

/** The pod interface's addresses (CIDR) and default-route gateways. */
function addressing(intent: PodIntent, a: Attachment, pool: SubnetPool): { addresses: string[]; gateways: string[] } {
  const addresses = a.ips.map((ip) => `${ip}/${pool.cidr(ip.includes(':') ? 6 : 4)?.prefix}`);
  // A secondary network gets its subnet's connected route only: the default route stays eth0's.
  const gateways = intent.provider !== undefined ? [] : a.ips.map((ip) => pool.gateway(ip.includes(':') ? 6 : 4) as string);
  return { addresses, gateways };
}

/**
 * A VF instead of a veth: the checkpoint (with the OVS port) is written before anything touches
 * the VF, so every later step has an undo that can rely on it; the VF's undo runs before the
 * port's, which removes the checkpoint.
 */
async function plumbVf(ctx: RequestContext, { intent, attachment: a, pool, undo, onHostSide }: PlumbInput, vf: VfAdd, pod: PodObj | undefined): Promise<{ hostMac: string }> {
  const { deps, req } = ctx;
  const settings = vfSettingsFor(vf.request, a.mac, pod, intent.provider);
  await onHostSide();
  undo.push('vf', async () => { await vf.sriov.release(vf.checkpoint, { netns: req.netns, ifName: req.ifName, mac: a.mac }); });
  await vf.sriov.plug(vf.checkpoint, {
    netns: req.netns, ifName: req.ifName, mac: a.mac, mtu: intent.mtu, settings,
    ...addressing(intent, a, pool),
    disableTxChecksum: deps.node.datapathType === 'netdev',
  });
  return { hostMac: '' };
}

function holderHasLsp(deps: RequestContext['deps'], holder: string): boolean {
  const port = parsePortHolder(holder);
  if (!port) return true; // not a pod port (node port, VIP): never ours to drop
  // LSP names are unique: the one row of that name, if it is still that sandbox's.
  return asMap(findLsp(deps.nb, port.lspName)?.external_ids)[EXT.sandbox] === port.sandbox;
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
