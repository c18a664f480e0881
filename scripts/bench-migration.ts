// bench:migration — KubeVirt live migration's downtime on the lab cluster, KubeVirt pods FAKED as
// plain pods (harness/kubevirt.ts) and the VM a network namespace of its own moved from launcher
// pod to launcher pod as a paused-and-resumed guest moves, announcing itself with RARPs
// (harness/vm.ts). A client pod on node3 keeps a 20 ms ping and a sequence-numbered TCP stream to
// the VM (harness/probe.ts) while the VM moves node1 -> node2 -> node1 ... Per move, over a fixed
// window (1 s before the guest pauses to `window` s after): the longest gap between ping replies
// (the downtime seen from the client), pings lost, the longest gap of the TCP echoes, whether the
// TCP connection survived; also the harness's own pause -> running time, the time from the
// guest running to the target pod's ovnode.io/migration-activated annotation, the pings lost
// while the migration was pending (from the target pod's creation) and the IPv4 frames to the
// VM that reached the not yet activated target's interface (none expected). The REFERENCE is
// the same probe over an equally long window right before each move with nothing moving (the
// target pod created and the port pinned to both chassis, as for the move): the noise floor.
//
//   npm run bench:migration [-- --moves 10 --window 8 --keep]
//
// Runs on the lab that is up (build/lab, or OVNODE_LAB_DIR's), which needs 3 nodes
// (NODES=3 scripts/lab/up.sh); deploys ovnode there if absent (deploy/, as the tests do), works
// in a namespace of its own and deletes it at the end (--keep keeps it). Needs root.

import { spawnSync } from 'node:child_process';
import { apply, kubectl, labNode, readLab, uniqueName, waitForDeleted, waitForPodReady } from '../test/cluster/harness/lab';
import { chassisByNode, launcherPod, pinnedTo, vmPortName, waitForActivation, waitForVmPort } from '../test/cluster/harness/kubevirt';
import { createNamespace, deployOvnode, podNetnsPath, testPod } from '../test/cluster/harness/pods';
import { describeStats, TrafficProbe, type ProbeStats } from '../test/cluster/harness/probe';
import { PYTHON } from '../test/cluster/harness/frames';
import { hostVethOf, linkOf, TestVm, VM_ECHO_PORT, type MoveReport } from '../test/cluster/harness/vm';
import { fmt, parseArgs, pct } from './bench-kube-common';

const LEAD_MS = 1000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (s: string): void => { process.stderr.write(`bench: ${s}\n`); };

interface MoveRow {
  n: number;
  from: string;
  to: string;
  move: ProbeStats;
  reference: ProbeStats;
  /** From the target pod's creation to the end of the reference window. */
  pending: ProbeStats;
  /** IPv4 frames to the VM that reached the target's interface before the move. */
  pendingFrames: number;
  pauseToRunningMs: number;
  /** Guest running -> the activation annotation seen through the API's watch. */
  activationMs: number;
  /** The probe that measured this move was started anew (the previous one's TCP connection had failed). */
  newProbe: boolean;
}

function printTable(rows: MoveRow[], windowS: number, summary: { tcpIntact: boolean; detail: string }): void {
  console.log(`\nlive migration, KubeVirt pods faked as plain pods; client on node3: ping every 20 ms + TCP stream; ${windowS} s window per move (1 s before the pause)\n`);
  const head = ['move', 'path', 'gap ms', 'lost', 'TCP gap ms', 'TCP', 'pause->run ms', 'run->activated ms', '|', 'ref gap ms', 'ref lost', 'ref TCP gap ms', '|', 'pending lost', 'pending dup', 'frames at target'];
  const cells = rows.map((r) => [
    String(r.n), `${r.from} -> ${r.to}`, fmt(r.move.longestGapMs), String(r.move.pingsLost), fmt(r.move.tcpLongestGapMs),
    r.move.tcpAlive ? (r.newProbe ? 'survived (new conn.)' : 'survived') : `FAILED ${r.move.tcpError ?? ''}`,
    String(r.pauseToRunningMs), fmt(r.activationMs), '|', fmt(r.reference.longestGapMs), String(r.reference.pingsLost), fmt(r.reference.tcpLongestGapMs),
    '|', String(r.pending.pingsLost), String(r.pending.duplicates), String(r.pendingFrames),
  ]);
  const stat = (label: string, f: (xs: number[]) => number): string[] => {
    const col = (g: (r: MoveRow) => number): string => fmt(f(rows.map(g)));
    return [label, '', col((r) => r.move.longestGapMs), col((r) => r.move.pingsLost), col((r) => r.move.tcpLongestGapMs),
      `${rows.filter((r) => r.move.tcpAlive).length}/${rows.length} survived`, col((r) => r.pauseToRunningMs), col((r) => r.activationMs),
      '|', col((r) => r.reference.longestGapMs), col((r) => r.reference.pingsLost), col((r) => r.reference.tcpLongestGapMs),
      '|', col((r) => r.pending.pingsLost), col((r) => r.pending.duplicates), col((r) => r.pendingFrames)];
  };
  const all = [head, ...cells, stat('p50', (xs) => pct(xs, 50)), stat('max', (xs) => Math.max(...xs))];
  const widths = head.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => c.padStart(widths[i] as number)).join('  ');
  console.log(line(head));
  console.log(widths.map((w, i) => (head[i] === '|' ? '|' : '-'.repeat(w))).join('  '));
  for (const r of cells) console.log(line(r));
  console.log(widths.map((w, i) => (head[i] === '|' ? '|' : '-'.repeat(w))).join('  '));
  console.log(line(all[all.length - 2] as string[]));
  console.log(line(all[all.length - 1] as string[]));
  console.log(`\nREFERENCE (noise floor): the same probe over ${windowS} s with nothing moving, right before each move: longest ping gap p50 ${fmt(pct(rows.map((r) => r.reference.longestGapMs), 50))} ms, max ${fmt(Math.max(...rows.map((r) => r.reference.longestGapMs)))} ms; pings lost max ${Math.max(...rows.map((r) => r.reference.pingsLost))}`);
  console.log(`TCP stream over the whole run: ${summary.tcpIntact ? 'intact (every byte written came back, in order, no reset)' : `NOT intact: ${summary.detail}`}`);
  console.log('\nnote: "gap" is the longest time between two ping replies at the client, the downtime it saw; it includes the\n'
    + 'harness\'s own pause -> running (ip commands moving the veths, ~50-150 ms here). Kube-OVN documents < 0.5 s.\n'
    + '"pending lost"/"pending dup": pings lost / answered twice from the target pod\'s creation to the move window (the\n'
    + 'source must serve on; a second answer comes from the target pod, which holds the address until virt-launcher\n'
    + '(here prepareTarget) takes it: traffic reached the target before its activation); "frames at target": IPv4 frames\n'
    + 'to the VM that reached the target pod\'s interface from then to the move (an inactive target must receive none).\n'
    + 'The lab shares the machine\'s 2 cores with the 3 nodes\' OVS userspace datapaths: figures are indicative.');
}

/**
 * Deletes a source pod as KubeVirt does after a migration and returns once it is gone. kubelet 1.20
 * on the lab removes a stopped pod's object up to a minute after it stopped it; once the pod's
 * host-side veth has left its node (ovnode's CNI DEL is done), the object is force-deleted rather
 * than waited for, so that a move's clean-up does not take a minute.
 */
async function deleteSource(namespace: string, pod: string, node: string): Promise<void> {
  const nodeNetns = labNode(node).netnsPath;
  const veth = await hostVethOf(await podNetnsPath({ namespace, pod }), nodeNetns);
  await kubectl(['-n', namespace, 'delete', 'pod', pod, '--wait=false']);
  const end = Date.now() + 120_000;
  while (Date.now() < end) {
    const gone = await kubectl(['-n', namespace, 'get', 'pod', pod, '-o', 'name']);
    if (gone.code !== 0 && /not ?found/i.test(gone.stderr)) return;
    if (!(await linkOf(nodeNetns, veth))) {
      await kubectl(['-n', namespace, 'delete', 'pod', pod, '--grace-period=0', '--force', '--wait=false']);
      break;
    }
    await sleep(250);
  }
  await waitForDeleted(`pod/${pod}`, { namespace, timeoutMs: 120_000 });
}

async function deleteNamespaceQuickly(namespace: string): Promise<void> {
  await kubectl(['-n', namespace, 'delete', 'pods', '--all', '--wait=true', '--timeout=120s'], { timeoutMs: 150_000 });
  const r = await kubectl(['delete', 'namespace', namespace, '--wait=false']);
  if (r.code !== 0) log(`deleting namespace ${namespace} failed: ${r.stderr.trim()}`);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2), { moves: 10, window: 8 });
  if (process.getuid?.() !== 0) throw new Error('bench:migration needs root (network namespaces of the lab)');
  const lab = readLab();
  if (lab.nodes.length < 3) throw new Error(`the lab has ${lab.nodes.length} nodes; bench:migration needs 3 (NODES=3 scripts/lab/up.sh)`);
  const [n1, n2, n3] = lab.nodes.slice(0, 3).map((n) => n.name) as [string, string, string];
  const zones = [n1, n2, n3];
  const windowMs = args.window * 1000;
  if (windowMs < LEAD_MS + 3000) throw new Error('--window must be at least 4 (seconds)');
  if (spawnSync(PYTHON, ['-c', 'import socket']).status !== 0) throw new Error(`${PYTHON} is needed (the probe and the RARPs)`);

  await deployOvnode();
  const namespace = uniqueName('bench-lm');
  const vmName = 'vm1';
  const lsp = vmPortName(vmName, namespace);
  let vm: TestVm | undefined;
  let probe: TrafficProbe | undefined;
  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    probe?.kill();
    await vm?.destroy();
    if (args.keep) log(`namespace ${namespace} kept`);
    else await deleteNamespaceQuickly(namespace);
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => { void cleanup().finally(() => process.exit(130)); });
  }

  try {
    await createNamespace(namespace);
    const chassis = await chassisByNode(zones);
    const ch = (n: string): string => chassis.get(n) as string;
    await apply(testPod({ name: 'client', namespace, node: n3 }));
    let pod = `virt-launcher-${vmName}-0`;
    await apply(launcherPod({ vm: vmName, namespace, pod, node: n1 }));
    await Promise.all([waitForPodReady(namespace, 'client', 180_000), waitForPodReady(namespace, pod, 180_000)]);
    const clientNetns = await podNetnsPath({ namespace, pod: 'client' });
    vm = await TestVm.create(vmName);
    await vm.attach({ namespace, pod });
    log(`VM ${vm.ip} (${vm.mac}) on ${n1}, client on ${n3}, port ${lsp}`);
    const startProbe = async (): Promise<TrafficProbe> => {
      const p = await TrafficProbe.start({ clientNetns, target: (vm as TestVm).ip, port: VM_ECHO_PORT });
      await p.waitFlowing({ pings: 10, echoes: 10, timeoutMs: 30_000 });
      return p;
    };
    probe = await startProbe();
    const rows: MoveRow[] = [];
    let here = n1;
    let lostTcp = '';
    /** The previous move's source deletion (before the first move: the run's start). */
    let [cleanup0, cleanup1] = [Date.now(), Date.now()];
    for (let i = 1; i <= args.moves; i++) {
      const there = here === n1 ? n2 : n1;
      const target = `virt-launcher-${vmName}-${i}`;
      const pendingFrom = Date.now();
      await apply(launcherPod({ vm: vmName, namespace, pod: target, node: there, migration: { uid: uniqueName('uid'), name: `migration-${i}` } }));
      await waitForPodReady(namespace, target, 120_000);
      const readyAt = Date.now();
      await vm.prepareTarget({ namespace, pod: target });
      const preparedAt = Date.now();
      await waitForVmPort(zones, lsp, pinnedTo(`${ch(here)},${ch(there)}`, [here, there]), { timeoutMs: 60_000, description: `${lsp} pinned to ${here} and ${there}` });
      let newProbe = false;
      let pendingBefore: ProbeStats | undefined;
      if (probe.tcpFailure) {
        // Where it happened, for whoever looks into it; then a new connection for this move.
        const rel = (t: number): string => `${t - pendingFrom >= 0 ? '+' : ''}${t - pendingFrom} ms`;
        log(`TCP connection failed (${probe.tcpFailure}) at ${rel(probe.tcpFailedAt ?? NaN)} from the target's creation `
          + `(previous source's deletion ${rel(cleanup0)}..${rel(cleanup1)}, target Ready ${rel(readyAt)}, prepared ${rel(preparedAt)}, pinned to both ${rel(Date.now())})`);
        lostTcp ||= `move before ${i}: ${probe.tcpFailure}`;
        pendingBefore = await probe.stats(pendingFrom, Date.now(), 0);
        await probe.stop();
        probe = await startProbe();
        newProbe = true;
      }

      // Reference: the same window, nothing moving.
      const r0 = Date.now();
      await sleep(windowMs);
      const reference = await probe.stats(r0, r0 + windowMs);
      // From the target's creation to here: the source must have served on (with a new probe: the old one's part).
      const pending = pendingBefore ?? await probe.stats(pendingFrom, r0 + windowMs, 0);

      const t0 = Date.now();
      const activated = waitForActivation(namespace, target, there, 60_000).then(() => Date.now());
      activated.catch(() => undefined);
      await sleep(LEAD_MS);
      const move: MoveReport = await vm.migrate({ namespace, pod: target });
      if (move.targetMac !== vm.mac) throw new Error(`move ${i}: the target pod's eth0 has ${move.targetMac}, not the VM's ${vm.mac}`);
      const activationMs = (await activated) - move.resumedAt;
      await sleep(Math.max(0, t0 + windowMs - Date.now()));
      const stats = await probe.stats(t0, t0 + windowMs);
      rows.push({ n: i, from: here, to: there, move: stats, reference, pending, pendingFrames: move.pendingFrames, pauseToRunningMs: move.resumedAt - move.pausedAt, activationMs, newProbe });
      log(`move ${i}/${args.moves} ${here} -> ${there}: ${describeStats(stats)}; activated ${activationMs} ms after the guest ran; ${move.pendingFrames} frames at the target before | reference: ${describeStats(reference)} | pending: ${describeStats(pending)}`);

      // KubeVirt deletes the source pod after the migration; the port stays the target's.
      cleanup0 = Date.now();
      await deleteSource(namespace, pod, here);
      cleanup1 = Date.now();
      await waitForVmPort(zones, lsp, pinnedTo(ch(there)), { timeoutMs: 30_000, description: `${lsp} pinned to ${there} alone` });
      pod = target;
      here = there;
    }
    const total = await probe.stop();
    const detail = lostTcp || total.tcpError || `${total.tcpEchoed}/${total.tcpWritten} echoed`;
    printTable(rows, args.window, { tcpIntact: total.tcpIntact && !lostTcp, detail });
  } finally {
    await cleanup();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
