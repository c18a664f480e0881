// The ovnode CNI executable's entry point: run the shim on this process's env and stdin.
// Bundled with its imports into one file, then into a single executable (scripts/build.sh).

import { readFileSync } from 'node:fs';
import { toCniError } from '../common/errors';
import { runShim } from './shim';

runShim(process.env, () => readFileSync(0, 'utf8')).then(
  ({ stdout, exitCode }) => {
    if (stdout !== undefined) process.stdout.write(JSON.stringify(stdout) + '\n');
    process.exitCode = exitCode;
  },
  (e: unknown) => {
    process.stdout.write(JSON.stringify({ cniVersion: '1.1.0', ...toCniError(e) }) + '\n');
    process.exitCode = 1;
  },
);
