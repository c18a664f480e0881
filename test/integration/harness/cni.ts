// Driving ovnode the way runtimes do: through libcni's cnitool, or the shim directly.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CNITOOL, REFERENCE_PLUGINS, SHIM } from './paths';

export interface ExecResult { status: number; stdout: string; stderr: string }

/** A NETCONFPATH directory holding one conflist. */
export class NetConfDir {
  readonly dir = mkdtempSync(join(tmpdir(), 'ovt-netconf-'));

  constructor(readonly netName: string) {}

  /** Writes the conflist; `plugins` defaults to ovnode alone. */
  write(opts: { socket: string; cniVersion?: string; ovnode?: Record<string, unknown>; chain?: Record<string, unknown>[] }): void {
    const conflist = {
      cniVersion: opts.cniVersion ?? '1.0.0',
      name: this.netName,
      plugins: [
        { type: 'ovnode', daemonSocket: opts.socket, capabilities: { ips: true, mac: true }, ...(opts.ovnode ?? {}) },
        ...(opts.chain ?? []),
      ],
    };
    writeFileSync(join(this.dir, `10-${this.netName}.conflist`), JSON.stringify(conflist, null, 2));
  }

  cleanup(): void { rmSync(this.dir, { recursive: true, force: true }); }
}

export interface CnitoolCall {
  command: 'add' | 'check' | 'del';
  conf: NetConfDir;
  netnsPath: string;
  ifName?: string;
  args?: string;
  capArgs?: Record<string, unknown>;
}

export function cnitool(c: CnitoolCall): ExecResult {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    NETCONFPATH: c.conf.dir,
    CNI_PATH: `${dirname(SHIM)}:${REFERENCE_PLUGINS}`,
    CNI_IFNAME: c.ifName ?? 'eth0',
  };
  if (c.args) env.CNI_ARGS = c.args;
  if (c.capArgs) env.CAP_ARGS = JSON.stringify(c.capArgs);
  const r = spawnSync(CNITOOL, [c.command, c.conf.netName, c.netnsPath], { env, encoding: 'utf8', timeout: 90_000 });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Runs the shim itself with an explicit environment and stdin (no libcni in between). */
export function runShim(env: Record<string, string>, stdin: string): ExecResult & { json: Record<string, unknown> | undefined } {
  const r = spawnSync(SHIM, [], { env: { PATH: process.env.PATH ?? '', ...env }, input: stdin, encoding: 'utf8', timeout: 90_000 });
  let json: Record<string, unknown> | undefined;
  try { json = JSON.parse(r.stdout) as Record<string, unknown>; } catch { json = undefined; }
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '', json };
}

/** cnitool's ContainerID for a netns path ("cnitool-" + first 20 hex of sha512(path)). */
export function cnitoolContainerId(netnsPath: string): string {
  return `cnitool-${createHash('sha512').update(netnsPath).digest('hex').slice(0, 20)}`;
}
