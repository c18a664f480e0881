// Building CNI invocations of the shim (environment + netconf), running the shim asynchronously
// (so that many invocations really run at the same time), and reading what an attachment left
// in a node. Complements cni.ts (runShim, spawnSync) and inspect.ts (the raw counts).

import { spawn } from 'node:child_process';
import { dirname } from 'node:path';
import type { ExecResult } from './cni';
import { hostVeths, lsps, podOvsPorts } from './inspect';
import type { TestNode } from './node';
import { SHIM } from './paths';

export type ShimResult = ExecResult & { json: Record<string, unknown> | undefined };

export interface CniCall {
  command: string;
  containerId?: string;
  /** Path of the pod netns (e.g. /var/run/netns/<name>). */
  netns?: string;
  ifName?: string;
  args?: string;
}

/** The six CNI_* variables as libcni sets them; `undefined` fields are left out entirely. */
export function cniEnv(c: CniCall): Record<string, string> {
  const env: Record<string, string> = { CNI_COMMAND: c.command, CNI_PATH: dirname(SHIM) };
  if (c.containerId !== undefined) env.CNI_CONTAINERID = c.containerId;
  if (c.netns !== undefined) env.CNI_NETNS = c.netns;
  env.CNI_IFNAME = c.ifName ?? 'eth0';
  if (c.args !== undefined) env.CNI_ARGS = c.args;
  return env;
}

/** A single-plugin network configuration for the shim's stdin. */
export function netconf(socket: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ cniVersion: '1.0.0', name: 'net1', type: 'ovnode', daemonSocket: socket, ...extra });
}

/** Like cni.ts runShim, but with spawn: resolves when the shim exits, never rejects. */
export function runShimAsync(env: Record<string, string>, stdin: string, timeoutMs = 90_000): Promise<ShimResult> {
  return new Promise((resolve) => {
    const child = spawn(SHIM, [], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => { stderr += String(e); });
    child.on('close', (code) => {
      clearTimeout(timer);
      let json: Record<string, unknown> | undefined;
      try { json = JSON.parse(stdout) as Record<string, unknown>; } catch { json = undefined; }
      resolve({ status: code ?? -1, stdout, stderr, json });
    });
    child.stdin.on('error', () => undefined); // the shim may exit before reading everything
    child.stdin.end(stdin);
  });
}

/** Plain addresses (no prefix) of an ADD result. */
export function resultIps(json: Record<string, unknown> | undefined): string[] {
  const ips = (json?.ips ?? []) as Array<{ address?: string }>;
  return ips.map((ip) => String(ip.address ?? '').split('/')[0] as string).filter(Boolean);
}

export interface AttachmentCounts { veths: string[]; ports: string[]; lsps: string[] }

/** Pod veths in the node netns, pod ports on br-int and pod LSPs on ovn-default. */
export function attachmentState(node: TestNode): AttachmentCounts {
  return {
    veths: hostVeths(node).sort(),
    ports: podOvsPorts(node).sort(),
    lsps: lsps(node).map((l) => l.name).sort(),
  };
}

export function countsOf(s: AttachmentCounts): { veths: number; ports: number; lsps: number } {
  return { veths: s.veths.length, ports: s.ports.length, lsps: s.lsps.length };
}
