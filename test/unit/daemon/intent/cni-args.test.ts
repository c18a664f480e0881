// CNI_ARGS decoding: K8S_* keys, legacy IP/MAC, IgnoreUnknown and malformed pairs.
import { describe, expect, it } from 'vitest';
import { InvalidEnvError } from '../../../../common/errors';
import { parseCniArgs, type CniArgs } from '../../../../daemon/intent/cni-args';

const kubelet = 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=c0ffee;K8S_POD_UID=1f2e-3d4c';

describe('parseCniArgs', () => {
  const cases: { desc: string; raw: string | undefined; want: CniArgs }[] = [
    { desc: 'unset', raw: undefined, want: {} },
    { desc: 'empty', raw: '', want: {} },
    {
      desc: 'what kubelet sends maps the K8S_* keys',
      raw: kubelet,
      want: { podNamespace: 'default', podName: 'web-0', infraContainerId: 'c0ffee', podUid: '1f2e-3d4c' },
    },
    { desc: 'empty pairs between separators are skipped', raw: ';K8S_POD_NAME=web;;', want: { podName: 'web' } },
    { desc: 'an empty value leaves the field unset', raw: 'K8S_POD_NAME=;K8S_POD_NAMESPACE=ns', want: { podNamespace: 'ns' } },
    { desc: 'the value keeps everything after the first =', raw: 'K8S_POD_NAME=a=b', want: { podName: 'a=b' } },
    { desc: 'the last of a repeated key wins', raw: 'K8S_POD_NAME=a;K8S_POD_NAME=b', want: { podName: 'b' } },
    { desc: 'legacy IP', raw: 'IP=10.16.0.9', want: { ips: ['10.16.0.9'] } },
    { desc: 'legacy IP, dual stack, with spaces', raw: 'IP=10.16.0.9, fd00::9', want: { ips: ['10.16.0.9', 'fd00::9'] } },
    { desc: 'legacy IP with empty items', raw: 'IP=10.16.0.9,,', want: { ips: ['10.16.0.9'] } },
    { desc: 'legacy MAC', raw: 'MAC=0a:58:0a:10:00:09', want: { mac: '0a:58:0a:10:00:09' } },
    { desc: 'legacy IP and MAC together', raw: 'IP=10.16.0.9;MAC=0a:58:0a:10:00:09', want: { ips: ['10.16.0.9'], mac: '0a:58:0a:10:00:09' } },
    { desc: 'IgnoreUnknown=1 allows unknown keys', raw: 'IgnoreUnknown=1;FOO=bar;K8S_POD_NAME=web', want: { podName: 'web' } },
    { desc: 'IgnoreUnknown=true allows unknown keys', raw: 'IgnoreUnknown=true;FOO=bar', want: {} },
    { desc: 'IgnoreUnknown=TRUE allows unknown keys', raw: 'FOO=bar;IgnoreUnknown=TRUE', want: {} },
    { desc: 'IgnoreUnknown=0 on its own is fine', raw: 'IgnoreUnknown=0;K8S_POD_NAME=web', want: { podName: 'web' } },
  ];
  for (const c of cases) {
    it(c.desc, () => expect(parseCniArgs(c.raw)).toEqual(c.want));
  }

  const bad: { desc: string; raw: string; err: RegExp }[] = [
    { desc: 'an unknown key without IgnoreUnknown', raw: 'K8S_POD_NAME=web;FOO=bar', err: /unknown key\(s\) FOO/ },
    { desc: 'every unknown key is named', raw: 'FOO=1;BAR=2', err: /FOO, BAR/ },
    { desc: 'an unknown key with IgnoreUnknown=0', raw: 'IgnoreUnknown=0;FOO=bar', err: /unknown key/ },
    { desc: 'an unknown key with IgnoreUnknown=yes', raw: 'IgnoreUnknown=yes;FOO=bar', err: /unknown key/ },
    { desc: 'a misspelt static IP key', raw: 'IPS=10.16.0.9', err: /unknown key\(s\) IPS/ },
    { desc: 'keys are case-sensitive', raw: 'k8s_pod_name=web', err: /unknown key/ },
    { desc: 'a pair without =', raw: 'K8S_POD_NAME=web;garbage', err: /invalid pair "garbage"/ },
    { desc: 'a pair with an empty key', raw: '=value', err: /invalid pair "=value"/ },
    { desc: 'a malformed pair even with IgnoreUnknown', raw: 'IgnoreUnknown=1;oops', err: /invalid pair/ },
  ];
  for (const c of bad) {
    it(`refuses ${c.desc} with code 4`, () => {
      let caught: unknown;
      try { parseCniArgs(c.raw); } catch (e) { caught = e; }
      expect(caught).toBeInstanceOf(InvalidEnvError);
      expect((caught as InvalidEnvError).cniCode).toBe(4);
      expect((caught as InvalidEnvError).message).toMatch(c.err);
    });
  }
});
