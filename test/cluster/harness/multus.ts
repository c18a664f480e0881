// Multus CNI v4.0.2 (thin plugin) in front of ovnode on the lab, deployed as on a real cluster
// (test/cluster/manifests/multus.yaml: the NetworkAttachmentDefinition CRD, RBAC and a DaemonSet
// of lab/multus:4.0.2, which scripts/lab/build-multus.sh builds), for tests that attach
// NetworkAttachmentDefinitions. removeMultus() puts the nodes back to ovnode alone, since the lab
// serves every later cluster test file.
//
// thin_entrypoint writes 00-multus.conflist (ovnode's conflist is CNI 1.0.0); 00-multus.conf
// (older CNI versions) is handled the same way, so the helpers do not depend on that choice.

import { join } from 'node:path';
import { kubectl, kubectlOk, nodeExec, readLab, REPO, waitForCondition } from './lab';
import { deployOvnode, SYSTEM_NS, waitDaemonSetReady } from './pods';

export const MULTUS_MANIFEST = join(REPO, 'test', 'cluster', 'manifests', 'multus.yaml');
export const MULTUS_DAEMONSET = 'multus';
export const NAD_CRD = 'network-attachment-definitions.k8s.cni.cncf.io';
/** On each node (its mount namespace): what the DaemonSet installs. */
export const MULTUS_CONF_FILES = ['/etc/cni/net.d/00-multus.conflist', '/etc/cni/net.d/00-multus.conf'];
export const MULTUS_BIN = '/opt/cni/bin/multus';
export const MULTUS_D = '/etc/cni/net.d/multus.d';

/** `sh -c` inside a node; throws with its output when it fails. */
async function nodeSh(node: string, script: string): Promise<string> {
  const r = await nodeExec(node, ['sh', '-c', script], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`${node}: \`${script}\` failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/**
 * Deploys ovnode (if needed), then Multus; resolves once the CRD serves, the DaemonSet is ready
 * on every node (its readiness means this pod generated the config) and every node has the
 * Multus config, the multus executable and its kubeconfig.
 */
export async function deployMultus(): Promise<void> {
  await deployOvnode();
  await kubectlOk(['apply', '-f', MULTUS_MANIFEST], { timeoutMs: 120_000 });
  await waitForCondition(`crd/${NAD_CRD}`, 'Established', { timeoutMs: 60_000 });
  await waitDaemonSetReady(MULTUS_DAEMONSET, 300_000);
  const conf = MULTUS_CONF_FILES.join(' ');
  for (const n of readLab().nodes) {
    // Exactly one of the two names, so the runtime's first config is Multus' and not a stale one.
    const found = (await nodeSh(n.name, `for f in ${conf}; do [ -s "$f" ] && echo "$f"; done; true`)).trim().split('\n').filter(Boolean);
    if (found.length !== 1) throw new Error(`${n.name}: expected one Multus config of ${conf}, found ${found.length ? found.join(', ') : 'none'}`);
    await nodeSh(n.name, `test -x ${MULTUS_BIN} && test -s ${MULTUS_D}/multus.kubeconfig`);
  }
}

/**
 * Deletes everything the manifest created (NetworkAttachmentDefinitions go with the CRD), waits
 * for the DaemonSet's pods to go, then removes what they left on each node: without it the
 * runtime would keep calling Multus (the config sorts first) with no DaemonSet behind it.
 * Delete pods with extra attachments before: once Multus is gone, the runtime tears a pod down
 * through ovnode alone, and nothing calls DEL for the attachments Multus added.
 */
export async function removeMultus(): Promise<void> {
  await kubectlOk(['delete', '-f', MULTUS_MANIFEST, '--ignore-not-found', '--wait=true'], { timeoutMs: 180_000 });
  // The DaemonSet is gone once deleted; its pods go afterwards (background deletion). A pod still
  // running could write the config again after the files below are removed.
  const r = await kubectl(['-n', SYSTEM_NS, 'wait', '--for=delete', 'pod', '-l', `app=${MULTUS_DAEMONSET}`, '--timeout=120s'], { timeoutMs: 135_000 });
  if (r.code !== 0 && !/no matching resources|not ?found/i.test(r.stderr)) {
    throw new Error(`waiting for the multus pods to go failed: ${r.stderr.trim() || r.stdout.trim()}`);
  }
  for (const n of readLab().nodes) {
    await nodeSh(n.name, `rm -f ${MULTUS_CONF_FILES.join(' ')} ${MULTUS_BIN} && rm -rf ${MULTUS_D}`);
  }
}
