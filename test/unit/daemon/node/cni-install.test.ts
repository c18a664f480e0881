// Installing the CNI executable and conflist: atomic (a reader never sees a partial file), no
// rewrite when the content is already right, and the conflist is what libcni expects.
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { conflistFor, CONFLIST_NAME, installExecutable, writeConflist } from '../../../../daemon/node/cni-install';

let dir: string;
let bin: string;
let conf: string;
let exe: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ovnode-cni-install-'));
  bin = join(dir, 'bin');
  conf = join(dir, 'net.d');
  mkdirSync(bin);
  mkdirSync(conf);
  exe = join(dir, 'ovnode-built');
  writeFileSync(exe, Buffer.alloc(256 * 1024, 7));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('CNI installation', () => {
  it('copies the executable under its names, executable, and skips an identical copy', () => {
    expect(installExecutable({ binDir: bin, confDir: conf, executable: exe, daemonSocket: '/run/ovnode/ovnoded.sock', aliases: ['kube-ovn'] }))
      .toEqual([join(bin, 'ovnode'), join(bin, 'kube-ovn')]);
    expect(readFileSync(join(bin, 'ovnode')).equals(readFileSync(exe))).toBe(true);
    expect(statSync(join(bin, 'ovnode')).mode & 0o777).toBe(0o755);
    const inode = statSync(join(bin, 'ovnode')).ino;
    expect(installExecutable({ binDir: bin, confDir: conf, executable: exe, daemonSocket: '/s' })).toEqual([]);
    expect(statSync(join(bin, 'ovnode')).ino).toBe(inode);
    // No temporary file is left behind.
    expect(readdirSync(bin).sort()).toEqual(['kube-ovn', 'ovnode']);
  });

  it('replaces a copy of the same size that differs in one byte past the first megabyte (compared chunk by chunk)', () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 9);
    writeFileSync(exe, big);
    const other = Buffer.from(big);
    other[2 * 1024 * 1024 + 5] = 1;
    writeFileSync(join(bin, 'ovnode'), other);
    expect(installExecutable({ binDir: bin, confDir: conf, executable: exe, daemonSocket: '/s' })).toEqual([join(bin, 'ovnode')]);
    expect(readFileSync(join(bin, 'ovnode')).equals(big)).toBe(true);
    expect(installExecutable({ binDir: bin, confDir: conf, executable: exe, daemonSocket: '/s' })).toEqual([]);
  });

  it('replaces an older executable by rename: a process holding the old file keeps reading the old content', () => {
    writeFileSync(join(bin, 'ovnode'), 'old');
    chmodSync(join(bin, 'ovnode'), 0o755);
    const oldInode = statSync(join(bin, 'ovnode')).ino;
    installExecutable({ binDir: bin, confDir: conf, executable: exe, daemonSocket: '/s' });
    expect(statSync(join(bin, 'ovnode')).ino).not.toBe(oldInode);
    expect(readFileSync(join(bin, 'ovnode')).length).toBe(256 * 1024);
  });

  it('writes the conflist once, parseable, naming the socket; a rewrite with the same content is skipped', () => {
    const path = writeConflist({ confDir: conf, daemonSocket: '/run/ovnode/ovnoded.sock' });
    expect(path).toBe(join(conf, CONFLIST_NAME));
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as { cniVersion: string; name: string; plugins: Array<Record<string, unknown>> };
    expect(parsed).toMatchObject({ cniVersion: '1.0.0', name: 'ovnode' });
    expect(parsed.plugins).toEqual([{ type: 'ovnode', daemonSocket: '/run/ovnode/ovnoded.sock', capabilities: { ips: true, mac: true } }]);
    const inode = statSync(path).ino;
    writeConflist({ confDir: conf, daemonSocket: '/run/ovnode/ovnoded.sock' });
    expect(statSync(path).ino).toBe(inode);
    writeConflist({ confDir: conf, daemonSocket: '/other.sock' });
    expect(statSync(path).ino).not.toBe(inode);
    expect(readFileSync(path, 'utf8')).toBe(conflistFor({ daemonSocket: '/other.sock' }));
    expect(readdirSync(conf)).toEqual([CONFLIST_NAME]);
  });

  it('fails with the error of the directory, leaving no partial file', () => {
    expect(() => writeConflist({ confDir: join(dir, 'missing'), daemonSocket: '/s' })).toThrow(/ENOENT/);
    expect(() => installExecutable({ binDir: join(dir, 'missing'), confDir: conf, executable: exe, daemonSocket: '/s' })).toThrow(/ENOENT/);
  });
});
