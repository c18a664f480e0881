// The Node's NetworkUnavailable condition: False once this node's datapath serves pods, which is
// what schedulers and operators read (kubelet never sets it; network plugins do).

import type { KubeApi } from '../sources/kube/api';

export async function markNetworkAvailable(api: KubeApi, nodeName: string): Promise<void> {
  const now = new Date().toISOString();
  const res = await api.request({
    method: 'PATCH',
    path: `/api/v1/nodes/${encodeURIComponent(nodeName)}/status`,
    // Strategic merge: conditions merge by type, so kubelet's own conditions stay as they are.
    contentType: 'application/strategic-merge-patch+json',
    body: {
      status: {
        conditions: [{
          type: 'NetworkUnavailable', status: 'False', reason: 'OvnodeReady',
          message: 'ovnode serves pods on this node', lastTransitionTime: now, lastHeartbeatTime: now,
        }],
      },
    },
  });
  if (res.status < 200 || res.status > 299) throw new Error(`PATCH node ${nodeName} status: HTTP ${res.status}`);
}
