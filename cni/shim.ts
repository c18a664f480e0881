// The shim's logic: environment + stdin -> one request to ovnoded -> what to print and the exit code.
// It checks only what it must to answer correctly without the daemon (VERSION, undecodable
// input, unsupported versions, missing variables); everything else is the daemon's job.

import { COMMANDS, SUPPORTED_VERSIONS, assertSupportedVersion, isSupportedVersion, type CniCommand } from '../common/cni-spec';
import { DecodeError, InvalidConfigError, InvalidEnvError, IoError, toCniError, TryAgainLaterError } from '../common/errors';
import { CNI_ENV_KEYS, DEFAULT_DAEMON_SOCKET, DEFAULT_DEADLINE_MS, MAX_CONFIG_BYTES, PROTOCOL_VERSION } from '../common/protocol';
import { callDaemon } from './client';

export interface Outcome { stdout?: unknown; exitCode: number }

export async function runShim(env: NodeJS.ProcessEnv, stdin: () => string): Promise<Outcome> {
  let cniVersion: string = SUPPORTED_VERSIONS[SUPPORTED_VERSIONS.length - 1];
  try {
    const command = readCommand(env);
    const raw = readStdin(stdin);
    if (command === 'VERSION') return { stdout: versionInfo(raw), exitCode: 0 };
    const conf = decodeConfig(raw);
    if (isSupportedVersion(conf.cniVersion)) cniVersion = conf.cniVersion;
    assertSupportedVersion(conf.cniVersion);
    requireEnv(env, command);
    const timeout = readTimeout(conf.timeoutSeconds);
    if (Buffer.byteLength(raw) > MAX_CONFIG_BYTES) {
      throw new DecodeError(`network configuration too large (${Buffer.byteLength(raw)} bytes, at most ${MAX_CONFIG_BYTES})`);
    }
    const reply = await callDaemon({
      socketPath: readDaemonSocket(conf.daemonSocket),
      request: {
        protocol: PROTOCOL_VERSION,
        env: pickEnv(env),
        config: raw,
        deadlineMs: timeout ?? DEFAULT_DEADLINE_MS[command] ?? 60_000,
      },
    });
    if (reply.body.error) return { stdout: { cniVersion, ...checkedError(reply.body.error) }, exitCode: 1 };
    if (reply.status < 200 || reply.status > 299) {
      throw new TryAgainLaterError(`ovnoded answered HTTP ${reply.status} without an error`, { details: `socket ${readDaemonSocket(conf.daemonSocket)}` });
    }
    // Only ADD prints a result (CNI spec: DEL/CHECK/GC/STATUS output nothing on success).
    if (command !== 'ADD') return { exitCode: 0 };
    const result = reply.body.result;
    if (typeof result !== 'object' || result === null || Array.isArray(result) || typeof result.cniVersion !== 'string') {
      throw new IoError('ovnoded answered ADD without a result');
    }
    return { stdout: result, exitCode: 0 };
  } catch (e) {
    return { stdout: { cniVersion, ...toCniError(e) }, exitCode: 1 };
  }
}

/** Optional netconf "daemonSocket": where ovnoded listens; anything but an absolute path is a mistake. */
function readDaemonSocket(v: unknown): string {
  if (v === undefined) return DEFAULT_DAEMON_SOCKET;
  if (typeof v !== 'string' || !v.startsWith('/')) {
    throw new InvalidConfigError('invalid network config: "daemonSocket" must be an absolute path to a unix socket');
  }
  return v;
}

/** A daemon error must be a CNI error (numeric code, string message) to be passed on as one. */
function checkedError(e: unknown): { code: number; msg: string; details?: string } {
  const o = (typeof e === 'object' && e !== null ? e : {}) as Record<string, unknown>;
  const out: { code: number; msg: string; details?: string } = {
    code: Number.isInteger(o.code) && (o.code as number) > 0 ? (o.code as number) : 999,
    msg: typeof o.msg === 'string' ? o.msg : 'ovnoded sent a malformed error',
  };
  if (typeof o.details === 'string') out.details = o.details;
  return out;
}

/** Optional netconf "timeoutSeconds": how long the shim waits for the daemon. */
function readTimeout(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 3600) {
    throw new InvalidConfigError('invalid network config: "timeoutSeconds" must be a number of seconds in (0, 3600]');
  }
  return v * 1000;
}

function readCommand(env: NodeJS.ProcessEnv): CniCommand {
  const c = env.CNI_COMMAND;
  if (!c) throw new InvalidEnvError('CNI_COMMAND is not set');
  if (!(COMMANDS as readonly string[]).includes(c)) throw new InvalidEnvError(`unknown CNI_COMMAND: ${c}`);
  return c as CniCommand;
}

function readStdin(stdin: () => string): string {
  try {
    return stdin();
  } catch (e) {
    throw new IoError('cannot read the network configuration from stdin', { details: String(e), cause: e });
  }
}

function decodeConfig(raw: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (e) {
    throw new DecodeError('error decoding network configuration', { details: (e as Error).message });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new DecodeError('error decoding network configuration', { details: 'stdin is not a JSON object' });
  }
  return v as Record<string, unknown>;
}

/** VERSION may come with an empty or minimal stdin (libcni sends {"cniVersion":"1.0.0"}). */
function versionInfo(raw: string): Record<string, unknown> {
  let asked: unknown;
  try { asked = (JSON.parse(raw) as Record<string, unknown>).cniVersion; } catch { asked = undefined; }
  return {
    cniVersion: isSupportedVersion(asked) ? asked : SUPPORTED_VERSIONS[SUPPORTED_VERSIONS.length - 1],
    supportedVersions: [...SUPPORTED_VERSIONS],
  };
}

function requireEnv(env: NodeJS.ProcessEnv, command: CniCommand): void {
  if (command === 'GC' || command === 'STATUS') return;
  const need = ['CNI_CONTAINERID', 'CNI_IFNAME'];
  // DEL must work after the netns is gone (CNI spec: DEL with an empty CNI_NETNS is valid).
  if (command !== 'DEL') need.push('CNI_NETNS');
  for (const k of need) if (!env[k]) throw new InvalidEnvError(`required environment variable ${k} is not set`);
}

function pickEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of CNI_ENV_KEYS) if (env[k] !== undefined) out[k] = env[k] as string;
  return out;
}
