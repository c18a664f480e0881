// decodeRequest: the wire request to a typed CniRequest, with libcni's env validation and the deadline.
import { describe, expect, it } from 'vitest';
import { OvnodeError } from '../../../../common/errors';
import type { CniWireRequest } from '../../../../common/protocol';
import { decodeRequest } from '../../../../daemon/server/request';

const NOW = 1_700_000_000_000;
const config = JSON.stringify({ cniVersion: '1.0.0', name: 'ovn', type: 'ovnode' });
const addEnv: Record<string, string> = {
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'c0ffee',
  CNI_NETNS: '/var/run/netns/pod1',
  CNI_IFNAME: 'eth0',
  CNI_ARGS: 'K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0',
};

function wire(env: Record<string, string | undefined>, extra: Partial<CniWireRequest> = {}): CniWireRequest {
  const clean = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as Record<string, string>;
  return { protocol: 1, env: clean, config, deadlineMs: 60_000, ...extra };
}

/** The CNI code decodeRequest throws for body, or undefined when it accepts it. */
function codeOf(body: unknown): number | undefined {
  try { decodeRequest(body, NOW); } catch (e) {
    expect(e).toBeInstanceOf(OvnodeError);
    return (e as OvnodeError).cniCode;
  }
  return undefined;
}

describe('decodeRequest', () => {
  it('decodes a kubelet ADD', () => {
    expect(decodeRequest(wire(addEnv), NOW)).toEqual({
      command: 'ADD',
      containerId: 'c0ffee',
      netns: '/var/run/netns/pod1',
      ifName: 'eth0',
      args: { podNamespace: 'shop', podName: 'web-0' },
      conf: { cniVersion: '1.0.0', name: 'ovn', type: 'ovnode', staticIps: [] },
      deadline: NOW + 60_000 - 500,
    });
  });

  it('defaults missing env values to empty strings for GC', () => {
    const req = decodeRequest(wire({ CNI_COMMAND: 'GC' }), NOW);
    expect(req).toMatchObject({ command: 'GC', containerId: '', netns: '', ifName: '', args: {} });
  });

  const bodies: { desc: string; body: unknown; code: number | undefined }[] = [
    { desc: 'null', body: null, code: 6 },
    { desc: 'a string', body: 'ADD', code: 6 },
    { desc: 'no config', body: { protocol: 1, env: addEnv, deadlineMs: 1000 }, code: 6 },
    { desc: 'config as an object', body: { protocol: 1, env: addEnv, config: JSON.parse(config) as unknown }, code: 6 },
    { desc: 'no env', body: { protocol: 1, config }, code: 6 },
    { desc: 'env null', body: { protocol: 1, env: null, config }, code: 6 },
    { desc: 'config not JSON', body: wire(addEnv, { config: '{' }), code: 6 },
    { desc: 'config with an unknown version', body: wire(addEnv, { config: JSON.stringify({ cniVersion: '9.0.0', name: 'a', type: 'b' }) }), code: 1 },
    { desc: 'config without a name', body: wire(addEnv, { config: JSON.stringify({ cniVersion: '1.0.0', type: 'b' }) }), code: 7 },
    { desc: 'no CNI_COMMAND', body: wire({ ...addEnv, CNI_COMMAND: undefined }), code: 4 },
    { desc: 'an unknown CNI_COMMAND', body: wire({ ...addEnv, CNI_COMMAND: 'UPDATE' }), code: 4 },
    { desc: 'VERSION (answered by the shim alone)', body: wire({ ...addEnv, CNI_COMMAND: 'VERSION' }), code: 4 },
    { desc: 'a bad CNI_ARGS pair', body: wire({ ...addEnv, CNI_ARGS: 'garbage' }), code: 4 },
  ];
  for (const c of bodies) {
    it(`body with ${c.desc} -> code ${c.code}`, () => expect(codeOf(c.body)).toBe(c.code));
  }
});

describe('CNI_CONTAINERID', () => {
  const cases: { desc: string; id: string | undefined; ok: boolean }[] = [
    { desc: 'a 64-hex id', id: 'ab'.repeat(32), ok: true },
    { desc: 'letters, digits, _ . -', id: 'Pod_1.sandbox-2', ok: true },
    { desc: 'a single character', id: 'a', ok: true },
    { desc: 'missing', id: undefined, ok: false },
    { desc: 'empty', id: '', ok: false },
    { desc: 'starting with -', id: '-abc', ok: false },
    { desc: 'starting with .', id: '.abc', ok: false },
    { desc: 'starting with _', id: '_abc', ok: false },
    { desc: 'with a slash', id: 'a/b', ok: false },
    { desc: 'with a space', id: 'a b', ok: false },
    { desc: 'with a newline at the end', id: 'abc\n', ok: false },
    { desc: 'non-ASCII', id: 'pöd', ok: false },
  ];
  for (const c of cases) {
    it(`${c.desc}: ${c.ok ? 'accepted' : 'code 4'}`, () => {
      for (const command of ['ADD', 'DEL', 'CHECK']) {
        expect(codeOf(wire({ ...addEnv, CNI_COMMAND: command, CNI_CONTAINERID: c.id }))).toBe(c.ok ? undefined : 4);
      }
    });
  }
});

describe('CNI_IFNAME', () => {
  const cases: { desc: string; ifName: string | undefined; ok: boolean }[] = [
    { desc: 'eth0', ifName: 'eth0', ok: true },
    { desc: '15 characters', ifName: 'a23456789012345', ok: true },
    { desc: 'with dots and dashes', ifName: 'net-1.100', ok: true },
    { desc: 'missing', ifName: undefined, ok: false },
    { desc: 'empty', ifName: '', ok: false },
    { desc: '16 characters', ifName: 'a234567890123456', ok: false },
    { desc: '.', ifName: '.', ok: false },
    { desc: '..', ifName: '..', ok: false },
    { desc: 'with a slash', ifName: 'eth/0', ok: false },
    { desc: 'with a colon', ifName: 'eth0:1', ok: false },
    { desc: 'with a space', ifName: 'eth 0', ok: false },
    { desc: 'with a tab', ifName: 'eth\t0', ok: false },
  ];
  for (const c of cases) {
    it(`${c.desc}: ${c.ok ? 'accepted' : 'code 4'}`, () => {
      for (const command of ['ADD', 'DEL', 'CHECK']) {
        expect(codeOf(wire({ ...addEnv, CNI_COMMAND: command, CNI_IFNAME: c.ifName }))).toBe(c.ok ? undefined : 4);
      }
    });
  }
});

describe('which commands need what', () => {
  const cases: { desc: string; env: Record<string, string | undefined>; code: number | undefined }[] = [
    { desc: 'ADD without CNI_NETNS', env: { ...addEnv, CNI_NETNS: undefined }, code: 4 },
    { desc: 'ADD with an empty CNI_NETNS', env: { ...addEnv, CNI_NETNS: '' }, code: 4 },
    { desc: 'CHECK without CNI_NETNS', env: { ...addEnv, CNI_COMMAND: 'CHECK', CNI_NETNS: undefined }, code: 4 },
    { desc: 'DEL without CNI_NETNS (netns already gone)', env: { ...addEnv, CNI_COMMAND: 'DEL', CNI_NETNS: undefined }, code: undefined },
    { desc: 'DEL with an empty CNI_NETNS', env: { ...addEnv, CNI_COMMAND: 'DEL', CNI_NETNS: '' }, code: undefined },
    { desc: 'GC with no container variables', env: { CNI_COMMAND: 'GC' }, code: undefined },
    { desc: 'STATUS with no container variables', env: { CNI_COMMAND: 'STATUS' }, code: undefined },
    { desc: 'GC ignores a bad container id', env: { CNI_COMMAND: 'GC', CNI_CONTAINERID: '/bad', CNI_IFNAME: '..' }, code: undefined },
  ];
  for (const c of cases) {
    it(`${c.desc} -> ${c.code === undefined ? 'accepted' : `code ${c.code}`}`, () => expect(codeOf(wire(c.env))).toBe(c.code));
  }
});

describe('deadline', () => {
  // The daemon gives up 500 ms (at most a tenth of the budget) before the shim does.
  const cases: { desc: string; deadlineMs: unknown; want: number }[] = [
    { desc: 'the ADD default', deadlineMs: 60_000, want: NOW + 59_500 },
    { desc: 'a short timeoutSeconds', deadlineMs: 5_000, want: NOW + 4_500 },
    { desc: 'the STATUS default', deadlineMs: 5_000, want: NOW + 4_500 },
    { desc: 'short: the margin shrinks to a tenth', deadlineMs: 1_500, want: NOW + 1_350 },
    { desc: 'very short: still before the shim', deadlineMs: 200, want: NOW + 180 },
    { desc: 'missing: 60 s assumed', deadlineMs: undefined, want: NOW + 59_500 },
    { desc: 'not a number: 60 s assumed', deadlineMs: '5000', want: NOW + 59_500 },
  ];
  for (const c of cases) {
    it(`${c.desc}: ${String(c.deadlineMs)} ms`, () => {
      const body = { ...wire(addEnv), deadlineMs: c.deadlineMs };
      expect(decodeRequest(body, NOW).deadline).toBe(c.want);
    });
  }

  it('uses the clock when no time is given', () => {
    const before = Date.now();
    const { deadline } = decodeRequest(wire(addEnv, { deadlineMs: 10_000 }));
    expect(deadline).toBeGreaterThanOrEqual(before + 9_500);
    expect(deadline).toBeLessThanOrEqual(Date.now() + 9_500);
  });
});

describe('DEL and GC read only what they use (the cleanup of a refused ADD must not be refused too)', () => {
  const badConf = JSON.stringify({
    cniVersion: '1.0.0', name: 'ovn', type: 'ovnode', mtu: 5, dns: { a: 1 },
    runtimeConfig: { ips: ['garbage'], mac: '0a:58:0a:10:00:0g' }, args: { cni: { ips: ['999.1.1.1'] } }, prevResult: { routes: [null] },
  });
  const badArgs = 'MAC=0a:58:0a:10:00:0g;IP=garbage;Unknown=1;junk;K8S_POD_NAME=web-0;K8S_POD_NAMESPACE=shop';

  it('an ADD with those values is refused', () => {
    expect(codeOf(wire(addEnv, { config: badConf }))).toBe(7);
    expect(codeOf(wire({ ...addEnv, CNI_ARGS: badArgs }))).toBe(4);
    expect(codeOf(wire({ ...addEnv, CNI_ARGS: 'IgnoreUnknown=1;MAC=0a:58:0a:10:00:0g' }))).toBe(7);
  });

  it('a DEL with the same values is accepted and keeps the pod identity', () => {
    const req = decodeRequest(wire({ ...addEnv, CNI_COMMAND: 'DEL', CNI_ARGS: badArgs }, { config: badConf }), NOW);
    expect(req.args).toEqual({ podName: 'web-0', podNamespace: 'shop' });
    expect(req.conf).toEqual({ cniVersion: '1.0.0', name: 'ovn', type: 'ovnode', staticIps: [] });
  });

  it('GC still reads its valid attachments', () => {
    const conf = JSON.stringify({ ...JSON.parse(badConf) as object, 'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 'eth0' }] });
    expect(decodeRequest(wire({ CNI_COMMAND: 'GC' }, { config: conf }), NOW).conf.validAttachments).toEqual([{ containerId: 'c1', ifName: 'eth0' }]);
  });

  it('a DEL still needs a decodable netconf of a supported version', () => {
    expect(codeOf(wire({ ...addEnv, CNI_COMMAND: 'DEL' }, { config: '{' }))).toBe(6);
    expect(codeOf(wire({ ...addEnv, CNI_COMMAND: 'DEL' }, { config: JSON.stringify({ cniVersion: '9.9.9', name: 'n', type: 't' }) }))).toBe(1);
  });
});
