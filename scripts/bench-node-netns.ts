// The outer half of a benchmark that runs as a node in a network namespace of its own: creates
// the namespace, re-runs the same script inside it (marked by OVNODE_BENCH_INNER), forwards an
// interruption so the inner run can stop its daemon and remove its pods, then removes the node.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export function runAsNode(script: string, prefix: string, env: NodeJS.ProcessEnv): void {
  const ns = `${prefix}-${randomBytes(2).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, script], { stdio: 'inherit', env: { ...env, OVNODE_BENCH_INNER: ns } });
  const forward = (sig: NodeJS.Signals): void => { child.kill(sig); };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  child.once('exit', (code) => {
    spawnSync('ip', ['netns', 'del', ns]);
    process.exitCode = code ?? 1;
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
  });
}
