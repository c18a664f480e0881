// Test network namespaces: unique names per run, created and removed by the test itself.

import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** A short random prefix for this test run, e.g. "ovt3fa2". Keep names <= 15 chars for veths. */
export function runPrefix(): string {
  return `ovt${randomBytes(2).toString('hex')}`;
}

export class NetnsSet {
  private readonly names: string[] = [];

  constructor(readonly prefix = runPrefix()) {}

  /** Creates `<prefix>-<suffix>` and returns its name; its path is /var/run/netns/<name>. */
  create(suffix: string): string {
    const name = `${this.prefix}-${suffix}`;
    execFileSync('ip', ['netns', 'add', name]);
    this.names.push(name);
    return name;
  }

  path(name: string): string { return `/var/run/netns/${name}`; }

  /** Runs a command inside a namespace; returns status and output, never throws. */
  exec(name: string, cmd: string[], timeoutMs = 15_000): { status: number; stdout: string; stderr: string } {
    const r = spawnSync('ip', ['netns', 'exec', name, ...cmd], { encoding: 'utf8', timeout: timeoutMs });
    return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  /** True when one ping from `from` reaches `ip` (1 s wait per try, `tries` tries). */
  ping(from: string, ip: string, tries = 3): boolean {
    for (let i = 0; i < tries; i++) {
      if (this.exec(from, ['ping', '-c', '1', '-W', '1', ip]).status === 0) return true;
    }
    return false;
  }

  remove(name: string): void {
    spawnSync('ip', ['netns', 'del', name]);
    const i = this.names.indexOf(name);
    if (i >= 0) this.names.splice(i, 1);
  }

  removeAll(): void {
    for (const n of [...this.names].reverse()) this.remove(n);
  }
}
