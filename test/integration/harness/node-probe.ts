// Looking at a node from the outside: its /metrics endpoint (inside its netns), the OVS/OVN
// programs of its state dir, and the links of its netns.

import { execFile, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export const METRICS_URL = 'http://127.0.0.1:9476/metrics';

/** GETs a URL from inside a netns with a small node program (curl may be missing). */
export function httpGetIn(ns: string, url: string, timeoutMs = 10_000): { status: number; body: string; error: string } {
  const script = `
    const http = require('node:http');
    const req = http.get(${JSON.stringify(url)}, (res) => {
      let d = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { d += c; });
      res.on('end', () => { process.stdout.write(JSON.stringify({ status: res.statusCode, body: d })); });
    });
    req.setTimeout(${timeoutMs - 1000}, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => { process.stderr.write(String(e)); process.exit(1); });`;
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { encoding: 'utf8', timeout: timeoutMs });
  if (r.status !== 0) return { status: -1, body: '', error: `${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
  try {
    const out = JSON.parse(r.stdout) as { status: number; body: string };
    return { status: out.status, body: out.body, error: '' };
  } catch (e) {
    return { status: -1, body: r.stdout, error: String(e) };
  }
}

export function scrapeMetrics(ns: string): string {
  const r = httpGetIn(ns, METRICS_URL);
  if (r.status !== 200) throw new Error(`GET ${METRICS_URL} in ${ns}: status ${r.status} ${r.error}`);
  return r.body;
}

const OVS_OVN_PROGRAMS = ['ovsdb-server', 'ovs-vswitchd', 'ovn-northd', 'ovn-controller'];

/** Live (non-zombie) OVS/OVN processes whose command line mentions `stateDir`. */
export function programsOfStateDir(stateDir: string): Array<{ pid: number; comm: string; cmdline: string }> {
  const out: Array<{ pid: number; comm: string; cmdline: string }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (!cmdline.includes(stateDir)) continue;
      const comm = readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state === 'Z') continue;
      if (OVS_OVN_PROGRAMS.includes(comm) || OVS_OVN_PROGRAMS.some((p) => cmdline.startsWith(p) || cmdline.includes(`/${p} `))) {
        out.push({ pid: Number(entry), comm, cmdline });
      }
    } catch { /* exited meanwhile */ }
  }
  return out;
}

/** Names of all links of a netns. */
export function linkNames(ns: string): string[] {
  const r = spawnSync('ip', ['-n', ns, '-o', 'link', 'show'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip -n ${ns} link show failed: ${r.stderr}`);
  return (r.stdout ?? '').split('\n').filter(Boolean).map((l) => ((l.split(':')[1] ?? '').trim().split('@')[0] as string));
}

/** Number of ports (any type) of a logical switch in a node's NB, without blocking the event loop; -1 on failure. */
export function countSwitchPortsAsync(stateDir: string, ls = 'ovn-default'): Promise<number> {
  return new Promise((resolve) => {
    execFile('ovn-nbctl', [`--db=unix:${stateDir}/ovn/nb.sock`, '--timeout=5', 'lsp-list', ls], { encoding: 'utf8', timeout: 10_000 }, (err, stdout) => {
      resolve(err ? -1 : stdout.split('\n').filter(Boolean).length);
    });
  });
}
