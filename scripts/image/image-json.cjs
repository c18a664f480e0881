#!/usr/bin/env node
// image-json.cjs DIR TAG ARCH CREATED_BY DIFF_ID... : writes the image config (<sha256>.json) and
// manifest.json of a docker-archive into DIR, whose layers are already at <diff-id hex>/layer.tar
// (uncompressed, so each layer's digest is its diff_id). The config carries no time and no host
// detail: the same layers give the same config digest. Prints the config's hex digest.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const [dir, tag, arch, createdBy, ...diffIds] = process.argv.slice(2);
if (!dir || !tag || !arch || !createdBy || diffIds.length === 0 || !diffIds.every((d) => /^[0-9a-f]{64}$/.test(d))) {
  console.error('usage: image-json.cjs DIR TAG ARCH CREATED_BY DIFF_ID_HEX...');
  process.exit(2);
}
const epoch = '1970-01-01T00:00:00Z';
const layerNames = ['debian bookworm root filesystem (scripts/image/make-rootfs.sh)', 'node, ovnode (dist, native addon, production node_modules)'];
const config = {
  architecture: arch === 'arm64' ? 'arm64' : arch,
  ...(arch === 'arm64' ? { variant: 'v8' } : {}),
  os: 'linux',
  created: epoch,
  config: {
    Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    Cmd: ['/usr/local/bin/ovnoded', '--help'],
    WorkingDir: '/',
    Labels: { 'org.opencontainers.image.title': 'ovnode', 'org.opencontainers.image.version': tag.slice(tag.lastIndexOf(':') + 1) },
  },
  rootfs: { type: 'layers', diff_ids: diffIds.map((d) => `sha256:${d}`) },
  history: diffIds.map((_, i) => ({ created: epoch, created_by: `${createdBy}: ${layerNames[i] ?? `layer ${i + 1}`}` })),
};
const configBytes = Buffer.from(`${JSON.stringify(config)}\n`);
const configHex = crypto.createHash('sha256').update(configBytes).digest('hex');
fs.writeFileSync(path.join(dir, `${configHex}.json`), configBytes);
const manifest = [{ Config: `${configHex}.json`, RepoTags: [tag], Layers: diffIds.map((d) => `${d}/layer.tar`) }];
fs.writeFileSync(path.join(dir, 'manifest.json'), `${JSON.stringify(manifest)}\n`);
process.stdout.write(`${configHex}\n`);
