// The /metrics server outlives errors it emits once listening (EMFILE from accept, ...): they are
// logged with their stack and it keeps serving. Lives with the embedded tests: same hardening.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Metrics } from '../../../../daemon/metrics';
import { FakeLog } from './fake-log';

const servers: Server[] = [];

afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

async function listening(log: FakeLog): Promise<{ server: Server; url: string }> {
  const server = await new Metrics().listen('127.0.0.1:0', log.logger);
  servers.push(server);
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics` };
}

describe('Metrics.listen', () => {
  it('survives an error emitted after listen, logs it and keeps serving', async () => {
    const log = new FakeLog();
    const { server, url } = await listening(log);
    const emfile = Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' });

    expect(() => server.emit('error', emfile)).not.toThrow();
    expect(() => server.emit('error', emfile)).not.toThrow(); // not a one-shot listener

    const logged = log.all('metrics server error');
    expect(logged).toHaveLength(2);
    expect(logged[0].err?.code).toBe('EMFILE');
    expect(logged[0].err?.stack).toMatch(/accept EMFILE/);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/ovnode_cni_request_duration_seconds/);
  });

  it('still rejects when the address cannot be bound, leaving no listener behind on success', async () => {
    const log = new FakeLog();
    const { server } = await listening(log);
    expect(server.listenerCount('error')).toBe(1);
    const taken = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    await expect(new Metrics().listen(taken, log.logger)).rejects.toThrow(/EADDRINUSE/);
  });
});
