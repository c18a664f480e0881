// Prometheus metrics (prom-client) and the /metrics endpoint, loopback by default.

import * as http from 'node:http';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly requestDuration = new Histogram({
    name: 'ovnode_cni_request_duration_seconds',
    help: 'Time to serve a CNI request, by command and outcome',
    labelNames: ['command', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: 'ovnode_cni_errors_total',
    help: 'CNI requests that failed, by command and CNI error code',
    labelNames: ['command', 'code'] as const,
    registers: [this.registry],
  });
  readonly stepDuration = new Histogram({
    name: 'ovnode_add_step_duration_seconds',
    help: 'Time of each ADD step',
    labelNames: ['step'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly policyApply = new Histogram({
    name: 'ovnode_policy_apply_duration_seconds',
    help: 'Time to recompute the security model and apply its difference to the NB',
    labelNames: ['outcome'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  readonly policyOps = new Counter({
    name: 'ovnode_policy_nb_operations_total',
    help: 'NB operations written by the policy engine',
    registers: [this.registry],
  });
  readonly rejectedObjects = new Gauge({
    name: 'ovnode_rejected_objects',
    help: 'Manifest objects refused at the last load (see the log for why)',
    registers: [this.registry],
  });
  readonly reconcileRemoved = new Counter({
    name: 'ovnode_reconcile_removed_total',
    help: 'Leaks removed by reconciliation (start-up and periodic), by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: 'ovnode_reconcile_errors_total',
    help: 'Reconciliation failures: a scan (kind "scan") or the removal of a leak of that kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly reconcileSuspected = new Gauge({
    name: 'ovnode_reconcile_suspected',
    help: 'Leaks seen by the last run and waiting for confirmation by the next one, by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly reconcileRunDuration = new Histogram({
    name: 'ovnode_reconcile_run_duration_seconds',
    help: 'Time of a periodic reconcile run, by trigger (timer, signal, ...) and outcome',
    labelNames: ['trigger', 'outcome'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [this.registry],
  });
  readonly reconcileLastRun = new Gauge({
    name: 'ovnode_reconcile_last_run_timestamp_seconds',
    help: 'When the last periodic reconcile run finished its scan (alert when it stops moving)',
    registers: [this.registry],
  });
  readonly conntrackFlushes = new Counter({
    name: 'ovnode_conntrack_flushes_total',
    help: 'Conntrack flushes of released pod addresses, per address: ok, failed (held and retried), abandoned',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly conntrackFlushDuration = new Histogram({
    name: 'ovnode_conntrack_flush_duration_seconds',
    help: 'Time of one conntrack flush batch through the ovs-vswitchd control socket',
    labelNames: ['outcome'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  /** Read at scrape time: addresses held back until their conntrack flush succeeds. */
  conntrackPendingCount: () => number = () => 0;
  readonly conntrackPending: Gauge;
  /** Read at scrape time from the monitored OVS view, so it can never drift from the truth. */
  attachmentCount: () => number = () => 0;
  readonly attachments: Gauge;
  /** Read at scrape time: the OVSDB clients count their own reconnections. */
  reconnectSources: Record<string, () => number> = {};
  readonly ovsdbReconnects: Gauge<'db'>;

  constructor() {
    const sources = (): Record<string, () => number> => this.reconnectSources;
    const count = (): number => this.attachmentCount();
    this.attachments = new Gauge({
      name: 'ovnode_attachments',
      help: 'Pod attachments on this node (OVS interfaces owned by ovnode)',
      registers: [this.registry],
      collect() { this.set(count()); },
    });
    this.ovsdbReconnects = new Gauge({
      name: 'ovnode_ovsdb_reconnects_total',
      help: 'Reconnections to an OVSDB server, by database',
      labelNames: ['db'] as const,
      registers: [this.registry],
      collect() {
        for (const [db, read] of Object.entries(sources())) this.set({ db }, read());
      },
    });
    const ctPending = (): number => this.conntrackPendingCount();
    this.conntrackPending = new Gauge({
      name: 'ovnode_conntrack_flush_pending',
      help: 'Released addresses held back from IPAM until their conntrack flush succeeds',
      registers: [this.registry],
      collect() { this.set(ctPending()); },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'ovnode_' });
  }

  /** Serves /metrics on host:port; resolves with the listening server. */
  listen(address: string, log: Logger): Promise<http.Server> {
    const idx = address.lastIndexOf(':');
    const host = address.slice(0, idx).replace(/^\[|\]$/g, '');
    const port = Number(address.slice(idx + 1));
    const server = http.createServer((req, res) => {
      if (req.url !== '/metrics') { res.writeHead(404).end(); return; }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (e: unknown) => res.writeHead(500).end(String(e)),
      );
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        // A listening server still emits 'error' (EMFILE from accept, ...); unhandled, it would
        // take the daemon down for the sake of a scrape. Logged; the server keeps listening.
        server.on('error', (err) => log.error({ step: 'metrics', address, err }, 'metrics server error'));
        resolve(server);
      });
    });
  }
}
