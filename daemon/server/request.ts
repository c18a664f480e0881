// Decoding of one wire request into a typed CniRequest, once, at the edge.

import { COMMANDS, type CniCommand } from '../../common/cni-spec';
import { parseBoundedJson } from '../../common/bounded-json';
import { DecodeError, IncompatibleVersionError, InvalidEnvError } from '../../common/errors';
import { PROTOCOL_VERSION, type CniWireRequest } from '../../common/protocol';
import { parseCniArgs, type CniArgs } from '../intent/cni-args';
import { parseNetConf, type NetConf } from '../intent/netconf';

export interface CniRequest {
  command: Exclude<CniCommand, 'VERSION'>;
  containerId: string;
  netns: string;
  ifName: string;
  args: CniArgs;
  conf: NetConf;
  /** Epoch ms after which the daemon gives up (before the shim does). */
  deadline: number;
}

// libcni's own validation (pkg/utils): container ids and interface names.
const CONTAINER_ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** The daemon stops this much before the shim gives up, so its error reaches the runtime. */
const DEADLINE_MARGIN_MS = 500;

/** The wire request's JSON, behind the nesting bound (the netconf inside is checked again). */
export function parseWireBody(text: string): unknown {
  return parseBoundedJson(text, 'request body');
}

export function decodeRequest(body: unknown, now = Date.now()): CniRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new DecodeError('request body is not a JSON object');
  const wire = body as Partial<CniWireRequest>;
  if (wire.protocol !== PROTOCOL_VERSION) {
    // A shim of another release (an upgrade half done): its fields may mean something else.
    throw new IncompatibleVersionError(`ovnode wire protocol ${JSON.stringify(wire.protocol ?? null)} is not spoken by this ovnoded`, {
      details: `ovnoded speaks protocol ${PROTOCOL_VERSION}; install the CNI executable of the same release`,
    });
  }
  if (typeof wire.config !== 'string' || typeof wire.env !== 'object' || wire.env === null) {
    throw new DecodeError('request must carry "env" and "config"');
  }
  const env = wire.env as Record<string, unknown>;
  for (const [k, v] of Object.entries(env)) {
    if (typeof v !== 'string') throw new DecodeError(`request env ${k} is not a string`);
  }
  const command = env.CNI_COMMAND as string | undefined;
  if (!command || !(COMMANDS as readonly string[]).includes(command) || command === 'VERSION') {
    throw new InvalidEnvError(`unknown CNI_COMMAND: ${command ?? ''}`);
  }
  const teardown = command !== 'ADD' && command !== 'CHECK';
  const conf = parseNetConf(wire.config, { teardown });
  const req: CniRequest = {
    command: command as CniRequest['command'],
    containerId: (env.CNI_CONTAINERID as string | undefined) ?? '',
    netns: (env.CNI_NETNS as string | undefined) ?? '',
    ifName: (env.CNI_IFNAME as string | undefined) ?? '',
    args: parseCniArgs(env.CNI_ARGS as string | undefined, { teardown }),
    conf,
    deadline: now + daemonBudget(typeof wire.deadlineMs === 'number' && wire.deadlineMs > 0 && wire.deadlineMs <= 3_600_000 ? wire.deadlineMs : 60_000),
  };
  validateEnv(req);
  return req;
}

function daemonBudget(shimMs: number): number {
  return shimMs - Math.min(DEADLINE_MARGIN_MS, shimMs / 10);
}

function validateEnv(req: CniRequest): void {
  if (req.command === 'GC' || req.command === 'STATUS') return;
  if (!CONTAINER_ID_RE.test(req.containerId)) {
    throw new InvalidEnvError(`CNI_CONTAINERID ${JSON.stringify(req.containerId)} is invalid (want ${CONTAINER_ID_RE.source})`);
  }
  const n = req.ifName;
  if (n.length === 0 || n.length > 15 || n === '.' || n === '..' || /[/:\s]/.test(n)) {
    throw new InvalidEnvError(`CNI_IFNAME ${JSON.stringify(n)} is not a valid interface name`);
  }
  if (req.command !== 'DEL' && req.netns === '') throw new InvalidEnvError('CNI_NETNS is not set');
  if (req.netns !== '' && (!req.netns.startsWith('/') || req.netns.includes('\0') || req.netns.length > 4096)) {
    throw new InvalidEnvError(`CNI_NETNS ${JSON.stringify(req.netns)} is not an absolute path`);
  }
}
