// bench:lab-ready — pod ready latency on the lab cluster, ovnode against Debian's bridge +
// host-local plugins on the same lab, in one invocation: N pods (BENCH_PODS, default 50) created
// at once on node1 with kubectl apply, each pod's latency from just before the apply to the first
// watch event that shows it Ready. Prints p50/p90/max per plugin and the ratio (target <= 1.2).
// Needs root; brings the lab up twice (CNI=bridge, then ovnode) and takes it down.

import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { apply, JsonStreamSplitter, kubectlOk, LAB_SCRIPTS, readLab, REPO, TOOLS_IMAGE, type KubeObject } from '../test/cluster/harness/lab';
import { deployOvnode } from '../test/cluster/harness/pods';

const PODS = Number(process.env.BENCH_PODS ?? 50);

function script(path: string, env: NodeJS.ProcessEnv = {}): void {
  const r = spawnSync('bash', [path], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`${path} failed (${r.status ?? r.signal})`);
}

function pod(name: string, ns: string): KubeObject {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns },
    spec: {
      nodeName: 'node1', terminationGracePeriodSeconds: 1,
      containers: [{ name: 'c', image: TOOLS_IMAGE, imagePullPolicy: 'Never', command: ['/bin/sh', '-c', "trap 'exit 0' TERM; sleep 100000 & wait"] }],
    },
  };
}

/** Creates the pods at once and resolves with each one's latency (ms) to Ready, from a watch. */
async function measure(label: string): Promise<number[]> {
  const ns = `bench-${label}`;
  await kubectlOk(['create', 'namespace', ns]);
  const lab = readLab();
  const watch = spawn(lab.kubectl, ['--kubeconfig', lab.kubeconfig, 'get', 'pods', '-n', ns, '-w', '-o', 'json'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const readyAt = new Map<string, number>();
  const splitter = new JsonStreamSplitter();
  const all = new Promise<void>((resolve) => {
    watch.stdout.setEncoding('utf8');
    watch.stdout.on('data', (chunk: string) => {
      for (const doc of splitter.push(chunk)) {
        for (const o of (Array.isArray(doc.items) ? doc.items : [doc]) as KubeObject[]) {
          const ready = (o.status?.conditions as KubeObject[] | undefined)?.find((c) => c.type === 'Ready')?.status === 'True';
          if (ready && !readyAt.has(o.metadata.name)) readyAt.set(o.metadata.name, performance.now());
        }
      }
      if (readyAt.size === PODS) resolve();
    });
  });
  await new Promise((r) => setTimeout(r, 500)); // the watch is established before the pods exist
  const t0 = performance.now();
  await apply({ apiVersion: 'v1', kind: 'List', items: Array.from({ length: PODS }, (_, i) => pod(`p${i}`, ns)) }, 120_000);
  await Promise.race([all, new Promise((_, reject) => setTimeout(() => reject(new Error(`${label}: ${readyAt.size}/${PODS} pods Ready after 300 s`)), 300_000))]);
  watch.kill('SIGKILL');
  await kubectlOk(['delete', 'namespace', ns, '--wait=true', '--timeout=180s'], { timeoutMs: 200_000 });
  return [...readyAt.values()].map((t) => t - t0).sort((a, b) => a - b);
}

const pct = (xs: number[], p: number): number => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] as number;

async function main(): Promise<void> {
  for (const s of ['install-lab-deps.sh', 'build-kubernetes.sh', 'images.sh']) script(join(LAB_SCRIPTS, s));
  script(join(REPO, 'scripts', 'build-image.sh'));
  const results: Record<string, number[]> = {};
  try {
    script(join(LAB_SCRIPTS, 'up.sh'), { CNI: 'bridge', LAB_FRESH: '1' });
    results['bridge + host-local'] = await measure('bridge');
    script(join(LAB_SCRIPTS, 'up.sh'), { CNI: 'none', LAB_FRESH: '1' });
    await deployOvnode();
    results.ovnode = await measure('ovnode');
  } finally {
    script(join(LAB_SCRIPTS, 'down.sh'));
  }
  const row = (name: string, xs: number[]): string => `| ${name.padEnd(20)} | ${pct(xs, 50).toFixed(0).padStart(6)} | ${pct(xs, 90).toFixed(0).padStart(6)} | ${(xs[xs.length - 1] ?? 0).toFixed(0).padStart(6)} |`;
  const base = results['bridge + host-local'] as number[];
  const ov = results.ovnode as number[];
  console.log(`\npod ready latency, ${PODS} pods created at once on one lab node (ms, kubectl apply -> Ready)\n`);
  console.log('| plugin               |    p50 |    p90 |    max |');
  console.log('|----------------------|--------|--------|--------|');
  console.log(row('bridge + host-local', base));
  console.log(row('ovnode', ov));
  console.log(`\nratio ovnode / bridge: p50 ${(pct(ov, 50) / pct(base, 50)).toFixed(2)}, p90 ${(pct(ov, 90) / pct(base, 90)).toFixed(2)} (target <= 1.2)`);
}

main().catch((e: unknown) => { console.error(e); process.exit(1); });
