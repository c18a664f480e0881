// vitest globalSetup of the "cluster" project: one lab cluster for all cluster test files.
// setup() builds what the lab needs (cached: about a second when nothing changed) and brings the
// cluster up; teardown() takes it down again, also when tests failed. A failed setup takes down
// what it started before it reports. OVNODE_LAB_KEEP=1 keeps the cluster after the run, and lets
// the next run reuse it when it is still healthy (up.sh decides); without it every run starts a
// fresh one. Env passed through to up.sh: NODES, CNI.

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { LAB_SCRIPTS, REPO } from './lab';

const keep = (): boolean => process.env.OVNODE_LAB_KEEP === '1';

// Asynchronous on purpose: a blocked main process cannot answer vitest's workers.
function step(script: string, env: NodeJS.ProcessEnv = {}, timeoutMs = 20 * 60_000): Promise<void> {
  const started = Date.now();
  return new Promise((resolvePromise, reject) => {
    // Output goes straight to the terminal: a cold Kubernetes build takes minutes.
    const child = spawn('bash', [join(LAB_SCRIPTS, script)], {
      cwd: REPO,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(new Error(`scripts/lab/${script} could not run: ${e.message}`)); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      if (code !== 0) {
        reject(new Error(`scripts/lab/${script} failed (${signal ?? `exit ${code}`}) after ${secs}s; see its output above and build/lab/last-logs`));
        return;
      }
      process.stderr.write(`[lab] ${script} done in ${secs}s\n`);
      resolvePromise();
    });
  });
}

function down(): Promise<void> {
  return step('down.sh', {}, 120_000);
}

export async function setup(): Promise<() => Promise<void>> {
  if (process.getuid?.() !== 0) throw new Error('the cluster tests need root (namespaces, cgroups, containerd)');
  try {
    await step('install-lab-deps.sh');
    await step('build-kubernetes.sh');
    await step('images.sh');
    // Multus v4.0.2 from its source (cached) and its image lab/multus:4.0.2, for multus.test.ts.
    await step('build-multus.sh');
    // The ovnode image: up.sh imports every archive of build/images into every node.
    await step('../build-image.sh');
    await step('up.sh', keep() ? {} : { LAB_FRESH: '1' }, 5 * 60_000);
  } catch (e) {
    await down().catch((d: Error) => process.stderr.write(`[lab] down after the failed setup failed too: ${d.message}\n`));
    throw e;
  }
  return async () => {
    if (keep()) {
      process.stderr.write('[lab] OVNODE_LAB_KEEP=1: cluster left up (scripts/lab/down.sh removes it)\n');
      return;
    }
    await down();
  };
}
