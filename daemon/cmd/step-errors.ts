// Unknown failures get the code of the step they happened in. Inside a step, anything not
// already a classified OvnodeError (a netlink or native failure, a netns that vanished, a
// TypeError from a bug) becomes that step's CNI error, so the runtime never sees "999 internal
// error" for a failure we can name; the original stays attached as the cause.

import { IpamError, isOvnodeError, OvsdbError, PlumbError, type OvnodeError } from '../../common/errors';

export type Step = 'vf' | 'ipam' | 'plumb' | 'ovn' | 'ovs' | 'wait';

const WRAP: Record<Step, (msg: string, o: { details?: string; cause?: unknown }) => OvnodeError> = {
  vf: (m, o) => new PlumbError(m, o),
  ipam: (m, o) => new IpamError(m, o),
  plumb: (m, o) => new PlumbError(m, o),
  ovn: (m, o) => new OvsdbError(m, o),
  ovs: (m, o) => new OvsdbError(m, o),
  wait: (m, o) => new OvsdbError(m, o),
};

/** Classifies what a step throws; works for synchronous and asynchronous steps alike. */
export function classify(step: Step, e: unknown): unknown {
  if (isOvnodeError(e)) return e;
  const message = e instanceof Error ? e.message : String(e);
  return WRAP[step](`${step} failed: ${message}`, { details: message, cause: e });
}

export function atStep<T>(step: Step, fn: () => T): T {
  let out: T;
  try {
    out = fn();
  } catch (e) {
    throw classify(step, e);
  }
  if (out instanceof Promise) return out.catch((e: unknown) => { throw classify(step, e); }) as T;
  return out;
}
