// Installing ovnode as the node's CNI: the executable into the runtime's plugin directory, then
// the network configuration list. Both are written to a temporary name in the same directory and
// renamed, so the runtime never runs a half-copied plugin or reads a half-written conflist; and the
// conflist goes last, only once the daemon serves, because kubelet reports the node network ready
// as soon as a configuration exists and then calls the plugin.

import { chmodSync, closeSync, copyFileSync, fstatSync, fsyncSync, openSync, readFileSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

export const CNI_PLUGIN_NAME = 'ovnode';
export const CONFLIST_NAME = '10-ovnode.conflist';
export const NETWORK_NAME = 'ovnode';

export interface CniInstallSpec {
  /** The runtime's plugin directory (host /opt/cni/bin, mounted into the pod). */
  binDir: string;
  /** The runtime's configuration directory (host /etc/cni/net.d). */
  confDir: string;
  /** The CNI executable to install (dist/bin/ovnode). */
  executable: string;
  /** The socket the installed conflist points the executable at. */
  daemonSocket: string;
  /** Extra names the executable is also installed under (Kube-OVN's `kube-ovn`, for its NADs). */
  aliases?: string[];
}

/** The conflist the runtime reads: ovnode alone, CNI 1.0.0, with the capabilities it honours. */
export function conflistFor(spec: Pick<CniInstallSpec, 'daemonSocket'>): string {
  return `${JSON.stringify({
    cniVersion: '1.0.0',
    name: NETWORK_NAME,
    plugins: [{ type: CNI_PLUGIN_NAME, daemonSocket: spec.daemonSocket, capabilities: { ips: true, mac: true } }],
  }, null, 2)}\n`;
}

/** Copies the executable in under each of its names, atomically, unless an identical copy is there. */
export function installExecutable(spec: CniInstallSpec): string[] {
  const installed: string[] = [];
  for (const name of [CNI_PLUGIN_NAME, ...(spec.aliases ?? [])]) {
    const target = join(spec.binDir, name);
    if (sameContent(target, spec.executable)) continue;
    const tmp = join(spec.binDir, `.${name}.${process.pid}.tmp`);
    try {
      copyFileSync(spec.executable, tmp);
      chmodSync(tmp, 0o755);
      syncFile(tmp);
      renameSync(tmp, target);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
    installed.push(target);
  }
  return installed;
}

/** Writes the conflist (temporary file + rename); returns its path. */
export function writeConflist(spec: Pick<CniInstallSpec, 'confDir' | 'daemonSocket'>): string {
  const target = join(spec.confDir, CONFLIST_NAME);
  const text = conflistFor(spec);
  try {
    if (readFileSync(target, 'utf8') === text) return target;
  } catch { /* absent: written below */ }
  // A name the runtime ignores (it reads *.conf, *.conflist, *.json) until the rename.
  const tmp = join(spec.confDir, `.${basename(target)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, text, { mode: 0o644 });
    syncFile(tmp);
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  return target;
}

// Compared a chunk at a time: the executable is a single-executable Node (~90 MB), and reading
// it and the installed copy whole cost the daemon that much resident memory twice at every start.
const CHUNK = 1 << 20;

function sameContent(path: string, wanted: string): boolean {
  let a: number | undefined;
  let b: number | undefined;
  try {
    a = openSync(path, 'r');
    b = openSync(wanted, 'r');
    if (fstatSync(a).size !== fstatSync(b).size) return false;
    const [bufA, bufB] = [Buffer.alloc(CHUNK), Buffer.alloc(CHUNK)];
    for (;;) {
      const n = readSync(a, bufA, 0, CHUNK, null);
      const m = readSync(b, bufB, 0, CHUNK, null);
      if (n !== m) return false;
      if (n === 0) return true;
      if (!bufA.subarray(0, n).equals(bufB.subarray(0, m))) return false;
    }
  } catch {
    return false;
  } finally {
    if (a !== undefined) closeSync(a);
    if (b !== undefined) closeSync(b);
  }
}

function syncFile(path: string): void {
  const fd = openSync(path, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}
