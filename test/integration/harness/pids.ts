// Stopping processes the tests started, by pid. A daemon started with --detach is not our child:
// once it exits it stays a zombie until someone else reaps it, so "exited" means gone or a zombie.

import { readFileSync } from 'node:fs';

/** True when `pid` no longer runs: no /proc entry, or a zombie (state Z after the command name). */
export function exited(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return true;
  }
  // The command name may hold spaces and parentheses: the state follows the last ')'.
  return / Z /.test(stat.slice(stat.lastIndexOf(')')));
}

/** Waits until `pid` has exited (see exited()); false when it still runs after `timeoutMs`. */
export async function gone(pid: number, timeoutMs = 5_000): Promise<boolean> {
  for (const end = Date.now() + timeoutMs; Date.now() < end;) {
    if (exited(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return exited(pid);
}

/**
 * Sends `signal` to `pid` and waits for it to exit; SIGKILL when it has not within `timeoutMs`.
 * A process that is already gone is not an error.
 */
export async function stopPid(pid: number, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5_000): Promise<void> {
  try { process.kill(pid, signal); } catch { return; }
  if (await gone(pid, timeoutMs)) return;
  try { process.kill(pid, 'SIGKILL'); } catch { return; }
  await gone(pid, timeoutMs);
}
