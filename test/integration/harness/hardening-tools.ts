// Helpers for hardening.test.ts (additive; nothing else uses or changes them): what a CNI sandbox
// left in a node, looked up by the sandbox itself (OVS Port and Interface rows, LSPs on any
// switch, the host veth), a snapshot of the node netns (links, addresses, routes), a FIFO probe,
// and a raw HTTP POST to the daemon's socket (for a body the real shim refuses to send).
// Read-only against the node: the OVS/OVN tools are pointed at the node's own database sockets.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, constants, openSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import type { TestNode } from './node';

/** The daemon's host-side veth name for a sandbox (daemon/intent/intent.ts hostIfName, recomputed). */
export function hostIfOf(containerId: string, ifName = 'eth0'): string {
  return `${createHash('sha256').update(`${containerId}/${ifName}`).digest('hex').slice(0, 12)}_h`;
}

function tool(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 15_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

type Row = { name: string; ids: Record<string, string> };

/** Rows of an OVSDB table (name + external_ids), through ovs-vsctl / ovn-nbctl in JSON. */
function rows(cmd: 'ovs-vsctl' | 'ovn-nbctl', db: string, table: string): Row[] {
  const out = tool(cmd, [`--db=unix:${db}`, '--timeout=10', '--format=json', '--data=json', '--columns=name,external_ids', 'list', table]);
  const data = (JSON.parse(out) as { data: unknown[][] }).data;
  return data.map(([name, ids]) => {
    const map: Record<string, string> = {};
    if (Array.isArray(ids) && ids[0] === 'map') for (const [k, v] of ids[1] as Array<[string, string]>) map[k] = v;
    return { name: String(name), ids: map };
  });
}

export const ovsDb = (node: TestNode): string => join(node.stateDir, 'ovs', 'db.sock');
export const nbDb = (node: TestNode): string => join(node.stateDir, 'ovn', 'nb.sock');

/** Every link name in a netns (`ip -o link`), without the @peer suffix. */
export function linkNames(ns: string): string[] {
  const r = spawnSync('ip', ['-n', ns, '-o', 'link', 'show'], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').filter(Boolean).map((l) => (l.split(':')[1] ?? '').trim().split('@')[0] as string);
}

export interface SandboxRef {
  containerId: string;
  ifName?: string;
  /** The LSP name the attachment would have had (default `<containerId>.<ifName>`). */
  lsp?: string;
  /** The pod netns (name under /var/run/netns): it must hold nothing but `lo` afterwards. */
  podNs?: string;
}

/**
 * Everything found in the node that belongs to one of `sandboxes`, as readable strings ([] when
 * clean): OVS Port / Interface rows and LSPs (any logical switch) by name or by their
 * external_ids:sandbox, the host veth in the node netns, and any link but `lo` in the pod netns.
 */
export function leftovers(node: TestNode, sandboxes: SandboxRef[]): string[] {
  const found: string[] = [];
  const ids = new Set(sandboxes.map((s) => s.containerId));
  const hostIfs = new Set(sandboxes.map((s) => hostIfOf(s.containerId, s.ifName)));
  const lspNames = new Set(sandboxes.map((s) => s.lsp ?? `${s.containerId}.${s.ifName ?? 'eth0'}`));
  for (const table of ['Port', 'Interface']) {
    for (const r of rows('ovs-vsctl', ovsDb(node), table)) {
      if (hostIfs.has(r.name) || ids.has(r.ids.sandbox ?? '')) found.push(`OVS ${table} ${r.name} (sandbox ${r.ids.sandbox ?? '-'})`);
    }
  }
  for (const r of rows('ovn-nbctl', nbDb(node), 'Logical_Switch_Port')) {
    if (lspNames.has(r.name) || ids.has(r.ids.sandbox ?? '')) found.push(`LSP ${r.name} (sandbox ${r.ids.sandbox ?? '-'})`);
  }
  for (const l of linkNames(node.ns)) if (hostIfs.has(l)) found.push(`host veth ${l} in ${node.ns}`);
  for (const s of sandboxes) {
    if (!s.podNs) continue;
    for (const l of linkNames(s.podNs)) if (l !== 'lo') found.push(`link ${l} in pod netns ${s.podNs}`);
  }
  return found;
}

/** Names of the LSPs on one logical switch (ovn-nbctl lsp-list). */
export function switchLsps(node: TestNode, ls: string): string[] {
  return tool('ovn-nbctl', [`--db=unix:${nbDb(node)}`, '--timeout=10', 'lsp-list', ls]).split('\n').filter(Boolean)
    .map((l) => l.match(/\((.*)\)/)?.[1] ?? '').filter(Boolean).sort();
}

export interface NetnsSnapshot { links: string[]; addrs: string[]; routes: string[] }

/** Links, addresses and routes (every table, both families) of a netns, for before/after comparisons. */
export function netnsSnapshot(ns: string): NetnsSnapshot {
  const lines = (args: string[]): string[] => {
    const r = spawnSync('ip', ['-n', ns, ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip -n ${ns} ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean).sort();
  };
  // IPv6 link-local addresses and their routes are the kernel's: they appear on their own a
  // moment after a link comes up (duplicate address detection), so a snapshot taken just after
  // the daemon started can miss what a later one sees, with nothing changed by anyone.
  const notLinkLocal = (l: string): boolean => !/\bfe80::/.test(l);
  return {
    links: linkNames(ns).sort(),
    addrs: lines(['-o', 'addr', 'show']).filter(notLinkLocal).map((l) => l.replace(/\s+valid_lft.*$/, '')),
    routes: [...lines(['-4', 'route', 'show', 'table', 'all']), ...lines(['-6', 'route', 'show', 'table', 'all']).filter(notLinkLocal)],
  };
}

/**
 * Whether a thread holds the FIFO open for reading or waits in open() to do so: a non-blocking
 * open for writing succeeds exactly then (fifo(7)) and fails with ENXIO otherwise. Closing what
 * it opened also releases a reader stuck in open(), so this doubles as the safety net that
 * unblocks a daemon that made the mistake of opening the FIFO.
 */
export function fifoHasReader(path: string): boolean {
  try {
    closeSync(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENXIO') return false;
    throw e;
  }
}

export interface RawReply { status: number; body: string; error?: string; ms: number }

/**
 * One HTTP/1.1 POST /cni to the daemon's unix socket with an arbitrary body (what the shim sends,
 * minus its own checks); resolves with the status and body read to EOF, or `error` when the
 * connection failed (reset, ...). Never rejects.
 */
export function rawPost(socket: string, body: Buffer, timeoutMs = 30_000): Promise<RawReply> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (r: Omit<RawReply, 'ms'>): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ ...r, ms: Date.now() - t0 });
    };
    const parse = (): Omit<RawReply, 'ms'> => {
      const raw = Buffer.concat(chunks);
      const split = raw.indexOf('\r\n\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw.subarray(0, Math.max(0, split)).toString('latin1'));
      return m ? { status: Number(m[1]), body: raw.subarray(split + 4).toString('utf8') } : { status: -1, body: raw.toString('utf8'), error: 'no HTTP reply' };
    };
    const sock = net.createConnection(socket);
    const timer = setTimeout(() => { sock.destroy(); finish({ status: -1, body: '', error: `no reply within ${timeoutMs} ms` }); }, timeoutMs);
    sock.once('connect', () => {
      sock.write(`POST /cni HTTP/1.1\r\nHost: ovnoded\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
      sock.write(body);
    });
    sock.on('data', (c: Buffer) => chunks.push(c));
    // A reply that arrived before a reset still counts: parse what came.
    sock.once('error', (e) => finish(chunks.length > 0 ? parse() : { status: -1, body: '', error: e.message }));
    sock.once('end', () => finish(parse()));
    sock.once('close', () => finish(chunks.length > 0 ? parse() : { status: -1, body: '', error: 'closed without a reply' }));
  });
}
