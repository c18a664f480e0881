// EmbeddedStack.stop() asks ovs-vswitchd to exit with clean-up through ovs-appctl without blocking
// the event loop, and gives up on it after the clean-up timeout. No root and no OVS: fake
// ovs-vswitchd, ovn-controller and ovs-appctl scripts come first on PATH.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EmbeddedStack } from '../../../../daemon/embedded/stack';
import { waitForPath, type WatchExit } from '../../../../daemon/embedded/supervised-process';
import { FakeLog } from './fake-log';

const CLEANUP_FAILED = 'ovs-vswitchd exit --cleanup failed; terminating it';

/** Only adoption and stale-program checks use it, and nothing is adopted here: no pid file exists before start. */
const fakeWatchExit: WatchExit = () => { throw new Error('fake watchExit: not expected to be called'); };

const FAKES: Record<string, string> = {
  // Ready once its control socket path exists, like the real one.
  'ovs-vswitchd': 'for a in "$@"; do case "$a" in --unixctl=*) : > "${a#--unixctl=}";; esac; done\nexec sleep 1000',
  // Ready once its pid file exists, like the real one (it has no control socket of a fixed name).
  'ovn-controller': 'for a in "$@"; do case "$a" in --pidfile=*) echo $$ > "${a#--pidfile=}";; esac; done\nexec sleep 1000',
  // Never answers: says it is running (its pid, atomically), then waits to be killed.
  'ovs-appctl': 'echo $$ > "$FAKE_APPCTL_MARK.tmp" && mv "$FAKE_APPCTL_MARK.tmp" "$FAKE_APPCTL_MARK"\nexec sleep 1000',
};

let dir: string;
let mark: string;
let savedEnv: { PATH: string | undefined; mark: string | undefined };
let log: FakeLog;
let stack: EmbeddedStack | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ovnode-stack-'));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  for (const [name, body] of Object.entries(FAKES)) {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  }
  mark = join(dir, 'appctl.pid');
  savedEnv = { PATH: process.env.PATH, mark: process.env.FAKE_APPCTL_MARK };
  // The stack copies the environment when it is built: its programs and ovs-appctl see this.
  process.env.PATH = `${bin}:${process.env.PATH ?? ''}`;
  process.env.FAKE_APPCTL_MARK = mark;
  log = new FakeLog();
});

afterEach(async () => {
  try {
    await stack?.stop();
  } finally {
    stack = undefined;
    process.env.PATH = savedEnv.PATH;
    if (savedEnv.mark === undefined) delete process.env.FAKE_APPCTL_MARK; else process.env.FAKE_APPCTL_MARK = savedEnv.mark;
    rmSync(dir, { recursive: true, force: true });
  }
});

async function startedSwitch(opts: ConstructorParameters<typeof EmbeddedStack>[3] = {}): Promise<EmbeddedStack> {
  const stateDir = join(dir, 'state');
  stack = new EmbeddedStack(stateDir, log.logger, fakeWatchExit, opts);
  mkdirSync(stack.paths.ovsDir, { recursive: true });
  mkdirSync(stack.paths.ovnDir, { recursive: true });
  await stack.startSwitch();
  expect(stack.healthy()).toBe(true);
  return stack;
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

describe('EmbeddedStack.stop', () => {
  it('keeps the event loop running while ovs-vswitchd cleans up', async () => {
    const s = await startedSwitch();
    const stopped = s.stop();
    // Seen through fs events, which a synchronous exec would hold back until it had finished.
    await waitForPath(mark, 10_000);
    const appctl = Number(readFileSync(mark, 'utf8'));
    expect(alive(appctl)).toBe(true);

    process.kill(appctl, 'SIGKILL'); // clean-up "fails": vswitchd is terminated instead
    await stopped;
    expect(log.all(CLEANUP_FAILED)).toHaveLength(1);
    expect(s.healthy()).toBe(false);
  });

  it('gives up on a clean-up that does not finish within the timeout', async () => {
    const s = await startedSwitch({ cleanupTimeoutMs: 200 });
    await s.stop();
    const [failed] = log.all(CLEANUP_FAILED);
    expect(failed?.err?.stack).toBeTypeOf('string');
    expect(alive(Number(readFileSync(mark, 'utf8')))).toBe(false);
    expect(log.all('stopped').map((r) => r.process)).toEqual(['ovn-controller', 'ovs-vswitchd']);
  });
});
