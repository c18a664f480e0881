// Where the built artefacts are; integration tests fail with a message naming what is missing.

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const REPO = resolve(__dirname, '..', '..', '..');
export const SHIM = join(REPO, 'dist', 'bin', 'ovnode');
export const DAEMON = join(REPO, 'dist', 'bin', 'ovnoded');
export const CNITOOL = join(REPO, 'build', 'tools', 'cnitool');
export const REFERENCE_PLUGINS = '/usr/lib/cni';

export function requireArtefacts(): void {
  const missing = [
    [SHIM, 'npm run build'],
    [DAEMON, 'npm run build'],
    [CNITOOL, 'bash scripts/build-cnitool.sh'],
    [join(REFERENCE_PLUGINS, 'tuning'), 'apt-get install containernetworking-plugins (scripts/install-deps.sh)'],
  ].filter(([p]) => !existsSync(p as string));
  if (missing.length > 0) {
    throw new Error(`integration tests need: ${missing.map(([p, how]) => `${p} (${how})`).join('; ')}`);
  }
  if (process.getuid?.() !== 0) throw new Error('integration tests need root (network namespaces, OVS)');
}
