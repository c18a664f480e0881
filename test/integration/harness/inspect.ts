// Counting what an attachment leaves in the node: veths, OVS ports, LSPs (read through the
// OVS tools here, in tests only: the daemon itself never execs them).

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { TestNode } from './node';

function tool(node: TestNode, cmd: string, args: string[]): string {
  const env = { ...process.env, OVS_RUNDIR: join(node.stateDir, 'ovs'), OVN_RUNDIR: join(node.stateDir, 'ovn') };
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', timeout: 15_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

export function ovsPorts(node: TestNode): string[] {
  return tool(node, 'ovs-vsctl', [`--db=unix:${join(node.stateDir, 'ovs', 'db.sock')}`, 'list-ports', 'br-int']).split('\n').filter(Boolean);
}

/** Pod ports only (the node's own ovn0 excluded). */
export function podOvsPorts(node: TestNode): string[] {
  return ovsPorts(node).filter((p) => p.endsWith('_h'));
}

export function lsps(node: TestNode, ls = 'ovn-default'): Array<{ name: string; addresses: string }> {
  // JSON, not CSV: `addresses` is a set column (CSV printed it as '["mac ip"]' and split sets on ',').
  const out = tool(node, 'ovn-nbctl', [`--db=unix:${join(node.stateDir, 'ovn', 'nb.sock')}`, '--format=json', '--data=json',
    '--columns=name,addresses', 'find', 'Logical_Switch_Port', 'type=""']);
  const names = tool(node, 'ovn-nbctl', [`--db=unix:${join(node.stateDir, 'ovn', 'nb.sock')}`, 'lsp-list', ls]);
  const inSwitch = new Set(names.split('\n').filter(Boolean).map((l) => (l.match(/\((.*)\)/)?.[1] ?? '')));
  // OVSDB JSON: a set with one element is the bare atom, otherwise ["set", [atoms...]].
  const atoms = (v: unknown): string[] => (Array.isArray(v) && v[0] === 'set' ? (v[1] as unknown[]) : [v]).map(String);
  const rows = (JSON.parse(out) as { data: unknown[][] }).data;
  return rows.map(([name, addresses]) => ({ name: String(name), addresses: atoms(addresses).join(', ') }))
    .filter((l) => inSwitch.has(l.name));
}

export function hostVeths(node: TestNode): string[] {
  const r = spawnSync('ip', ['netns', 'exec', node.ns, 'ip', '-o', 'link', 'show', 'type', 'veth'], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').filter(Boolean).map((l) => (l.split(':')[1] ?? '').trim().split('@')[0] as string);
}
