#!/usr/bin/env node
// Prints, one a line, the node_modules directories of the production dependency tree, read from
// package-lock.json (what `npm ci --omit=dev` would install), so the image can copy them out of the
// repository's node_modules without a registry and without pruning the repository's tree.
// Only top-level entries are printed: whatever is nested under a production package is one of its
// own dependencies and comes with it. Optional packages that were not installed (another
// platform's) are skipped; any other missing package is an error.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(process.argv[2] || '.');
const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8'));
if (!lock.packages) {
  console.error('prod-modules: package-lock.json has no "packages" map (lockfileVersion >= 2 needed)');
  process.exit(1);
}
const topLevel = /^node_modules\/(@[^/]+\/)?[^/]+$/;
const out = [];
const missing = [];
for (const [key, entry] of Object.entries(lock.packages)) {
  if (!topLevel.test(key) || entry.dev === true) continue;
  if (!fs.existsSync(path.join(root, key, 'package.json'))) {
    if (entry.optional === true || entry.devOptional === true) continue;
    missing.push(key);
    continue;
  }
  out.push(key);
}
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
for (const dep of Object.keys(pkg.dependencies || {})) {
  if (!out.includes(`node_modules/${dep}`) && !missing.includes(`node_modules/${dep}`)) missing.push(`node_modules/${dep}`);
}
if (missing.length > 0) {
  console.error(`prod-modules: not installed: ${missing.join(', ')} (run npm ci)`);
  process.exit(1);
}
process.stdout.write(out.sort().map((p) => `${p}\n`).join(''));
