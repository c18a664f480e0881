// Sends one CNI request to ovnoded over its unix socket and returns the decoded reply.
// Transport failures become "try again later" (11): the runtime retries, which is right when
// the daemon is restarting, and the message names the socket so an operator can look.

import * as http from 'node:http';
import { TryAgainLaterError } from '../common/errors';
import { CNI_PATH_HTTP, type CniWireReply, type CniWireRequest } from '../common/protocol';

export interface DaemonCall {
  socketPath: string;
  request: CniWireRequest;
}

export function callDaemon({ socketPath, request }: DaemonCall): Promise<CniWireReply> {
  const body = JSON.stringify(request);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath,
        path: CNI_PATH_HTTP,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        timeout: request.deadlineMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => reject(unreachable(socketPath, e)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve(text.length === 0 ? {} : (JSON.parse(text) as CniWireReply));
          } catch (e) {
            reject(new TryAgainLaterError('ovnoded sent an unreadable reply', { details: String(e), cause: e }));
          }
        });
      },
    );
    req.on('timeout', () => {
      req.destroy();
      reject(new TryAgainLaterError(`ovnoded did not answer within ${request.deadlineMs} ms`, {
        details: `socket ${socketPath}`,
      }));
    });
    req.on('error', (e) => reject(unreachable(socketPath, e)));
    req.end(body);
  });
}

function unreachable(socketPath: string, e: Error): TryAgainLaterError {
  return new TryAgainLaterError(`ovnoded is not reachable at ${socketPath}`, { details: e.message, cause: e });
}
