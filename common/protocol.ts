// The private protocol between the CNI shim and ovnoded.
//
// One HTTP/1.1 request per CNI invocation over the daemon's unix socket (0600 in a 0700
// directory: only root talks to it, so there is no authentication on top):
//   POST /cni   body CniWireRequest   -> 200 CniWireReply with `result` (or empty for DEL/CHECK/...)
//                                       -> 4xx/5xx CniWireReply with `error` (a CNI error JSON)
// The shim passes the whole CNI environment and stdin unparsed beyond what it must check itself,
// so all policy lives in one place (the daemon). `deadlineMs` is the time the shim will wait;
// the daemon stops earlier so that its error, not a transport timeout, reaches the runtime.

import type { CniErrorJson } from './errors';

export const PROTOCOL_VERSION = 1;
export const CNI_PATH_HTTP = '/cni';
/** GET: 200 when the daemon serves ADDs, 503 with the reason otherwise (readiness probes). */
export const READY_PATH_HTTP = '/readyz';
export const DEFAULT_DAEMON_SOCKET = '/run/ovnode/ovnoded.sock';

export interface CniWireRequest {
  protocol: number;
  /** CNI_* variables exactly as the runtime set them. */
  env: Record<string, string>;
  /** The network configuration from stdin, as received. */
  config: string;
  /** How long the shim waits for the reply. */
  deadlineMs: number;
}

/** Largest netconf the shim sends (the daemon also refuses larger request bodies, with code 6). */
export const MAX_CONFIG_BYTES = 512 * 1024;

export interface CniWireReply {
  result?: Record<string, unknown>;
  error?: CniErrorJson;
}

/** CNI environment variable names the shim forwards. */
export const CNI_ENV_KEYS = [
  'CNI_COMMAND',
  'CNI_CONTAINERID',
  'CNI_NETNS',
  'CNI_IFNAME',
  'CNI_ARGS',
  'CNI_PATH',
] as const;

/** Default deadlines per command; kubelet's CRI calls allow minutes, our own work takes ms. */
export const DEFAULT_DEADLINE_MS: Record<string, number> = {
  ADD: 60_000,
  DEL: 60_000,
  CHECK: 20_000,
  GC: 60_000,
  STATUS: 5_000,
};
