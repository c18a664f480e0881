// Services without kube-proxy: Services and EndpointSlices, watched from the API, become
// Load_Balancer rows of this node's NB on ovnode's switches and the cluster router (DESIGN.md,
// "Services without kube-proxy"). Watch events only mark Services dirty; passes run through
// LatestSync (never two at once, a burst folds into two passes), each recomputing the dirty
// Services' rows and applying the difference in one NB transaction. The first pass after start,
// a change of the node's addresses and a failed pass reconcile everything, which is also how a
// restart finds rows of Services deleted meanwhile; a restart that changed nothing writes nothing.
// NB changes to switches and the router (a new switch) re-attach the rows; changes to own rows
// made by someone else are put back.

import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { OvsdbClient } from '../ovsdb/client';
import { asMap, valuesEqual, type Row } from '../ovsdb/values';
import { ROUTER } from '../ovn/topology';
import { NB } from '../ovs/schema';
import { LatestSync } from '../node/latest-sync';
import type { KubeApi } from '../sources/kube/api';
import { Backoff, type BackoffOptions } from '../sources/kube/backoff';
import { Reflector, type ReflectorEvent } from '../sources/kube/reflector';
import type { KubeStreamApi } from '../sources/kube/stream';
import { desiredLoadBalancers, nodePortRules, serviceLoadBalancers } from './desired';
import { endpointSlicesPath, endpointSliceVersion, type EndpointSliceVersion } from './discovery';
import { LB_SERVICE_KEY, SWITCH_CIDRS_KEY } from './names';
import { monitorLoadBalancers } from './nb-monitor';
import { LB_COLUMN, LB_TABLE, isOwnedLb, planServiceLbs } from './nb-plan';
import { HEADLESS_LABEL, SERVICE_NAME_LABEL, SERVICE_PROXY_NAME_LABEL, projectEndpointSlice, projectService } from './project';
import { SliceIndex } from './slice-index';
import type { DesiredLb, NodePortRule, ServiceSlim, SliceSlim } from './types';

/** As kube-proxy: objects another proxy serves, and headless Services' slices, are not watched. */
const NOT_OURS = `!${SERVICE_PROXY_NAME_LABEL},!${HEADLESS_LABEL}`;

export interface ServicesControllerOptions {
  api: KubeApi & KubeStreamApi;
  nb: OvsdbClient;
  /** This node's addresses, on which node ports are served; read at every pass. */
  nodeAddresses: () => string[];
  log: Logger;
  /** Delays between retries of a failed pass (default 500 ms doubling up to 30 s). */
  retry?: BackoffOptions;
  /** After each pass, for metrics. */
  onPass?: (report: PassReport) => void;
}

export interface PassReport {
  ok: boolean;
  /** NB operations written (0 when the NB already matched or the pass failed). */
  ops: number;
  ms: number;
  /** Every Service reconciled, not only the dirty ones. */
  full: boolean;
  /** Services reconciled. */
  services: number;
}

export type NodePortListener = (rules: readonly NodePortRule[]) => void;

export class ServicesController {
  readonly #opts: ServicesControllerOptions;
  readonly #log: Logger;
  readonly #sync: LatestSync<void>;
  readonly #slices = new SliceIndex();
  readonly #backoff: Backoff;
  readonly #listeners = new Set<NodePortListener>();
  readonly #unsubscribe: Array<() => void> = [];
  readonly #firstPass: { promise: Promise<void>; resolve: () => void };
  #services: Reflector<ServiceSlim> | undefined;
  #sliceReflector: Reflector<SliceSlim> | undefined;
  #version: EndpointSliceVersion | undefined;
  #dirty = new Set<string>();
  #full = true;
  #live = false;
  #stopped = false;
  #addressesKey: string | undefined;
  #rules: NodePortRule[] = [];
  #rulesKey = '[]';
  #retryTimer: NodeJS.Timeout | undefined;

  constructor(opts: ServicesControllerOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    this.#backoff = new Backoff({ initialMs: 500, maxMs: 30_000, ...opts.retry });
    this.#sync = new LatestSync(() => this.#pass(), (e) => this.#log.error({ step: 'services', err: String(e) }, 'services pass failed'));
    let resolve!: () => void;
    this.#firstPass = { promise: new Promise<void>((r) => { resolve = r; }), resolve };
  }

  /** The EndpointSlice API version in use (after start). */
  get endpointSliceVersion(): EndpointSliceVersion | undefined {
    return this.#version;
  }

  /**
   * Starts watching; resolves once both watches have listed and the first pass is applied (a
   * failing pass is retried until then). Rejects when `signal` aborts first; stop() either way.
   */
  async start(signal?: AbortSignal): Promise<void> {
    try {
      await this.#start(signal);
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  async #start(signal: AbortSignal | undefined): Promise<void> {
    const { api, nb, log } = this.#opts;
    await monitorLoadBalancers(nb);
    this.#version = await endpointSliceVersion(api, {
      ...(signal ? { signal } : {}),
      onRetry: (err, delayMs) => log.warn({ step: 'services', err: err.message, delayMs }, 'EndpointSlice discovery failed; retrying'),
    });
    if (this.#stopped) return;
    const services = new Reflector<ServiceSlim>({ api, path: '/api/v1/services', labelSelector: NOT_OURS, project: projectService, log });
    const slices = new Reflector<SliceSlim>({
      api, path: endpointSlicesPath(this.#version), labelSelector: `${SERVICE_NAME_LABEL},${NOT_OURS}`, project: projectEndpointSlice, log,
    });
    this.#services = services;
    this.#sliceReflector = slices;
    this.#unsubscribe.push(
      services.subscribe((ev) => this.#markDirty([ev.key])),
      slices.subscribe((ev: ReflectorEvent<SliceSlim>) => this.#markDirty(this.#slices.apply(ev))),
    );
    const onChange = (table: string, _u: string, old: Row | undefined, row: Row | undefined): void => this.#onNbChange(table, old, row);
    const onConnected = (): void => this.#retryNow();
    nb.on('change', onChange);
    nb.on('connected', onConnected);
    this.#unsubscribe.push(() => nb.off('change', onChange), () => nb.off('connected', onConnected));
    services.start();
    slices.start();
    await Promise.all([services.whenSynced(signal), slices.whenSynced(signal)]);
    log.info({ step: 'services', endpointSlices: this.#version, services: services.size, slices: slices.size }, 'services watches synced');
    this.#live = true;
    void this.#kick();
    await abortable(this.#firstPass.promise, signal);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#live = false;
    clearTimeout(this.#retryTimer);
    for (const u of this.#unsubscribe.splice(0)) u();
    await Promise.all([this.#services?.stop(), this.#sliceReflector?.stop()]);
  }

  /** Reconciles every Service on the next pass (e.g. after the node's addresses changed). */
  resync(): Promise<void> {
    this.#full = true;
    return this.#kick();
  }

  /** Node ports to forward to cluster IPs, as of the last applied pass. */
  nodePortRules(): NodePortRule[] {
    return [...this.#rules];
  }

  /** Called after a pass that changed the node-port rules; returns the unsubscribe function. */
  onNodePorts(listener: NodePortListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #markDirty(keys: readonly string[]): void {
    if (keys.length === 0) return;
    if (!this.#full) for (const k of keys) this.#dirty.add(k);
    void this.#kick();
  }

  #kick(): Promise<void> {
    if (!this.#live) return Promise.resolve();
    return this.#sync.request(undefined);
  }

  #onNbChange(table: string, old: Row | undefined, row: Row | undefined): void {
    if (table === LB_TABLE) {
      // Own rows changed: written by the last pass (the next finds nothing to do) or by someone else.
      const keys = [old, row].filter((r): r is Row => r !== undefined && isOwnedLb(r)).map((r) => String(asMap(r.external_ids)[LB_SERVICE_KEY] ?? ''));
      this.#markDirty(keys);
      return;
    }
    if (table === NB.ls || (table === NB.lr && (old?.name === ROUTER || row?.name === ROUTER))) {
      if (attachmentChanged(old, row)) void this.#kick();
    }
  }

  #slicesOf = (service: string): SliceSlim[] => this.#slices.of(service);

  async #pass(): Promise<void> {
    const started = performance.now();
    const services = this.#services as Reflector<ServiceSlim>;
    const addresses = [...new Set(this.#opts.nodeAddresses())].sort();
    const addressesKey = addresses.join(',');
    const full = this.#full || addressesKey !== this.#addressesKey;
    const keys = this.#dirty;
    this.#full = false;
    this.#dirty = new Set();
    let ops = 0;
    try {
      const desired = full
        ? desiredLoadBalancers({ services: services.values(), slicesOf: this.#slicesOf, nodeAddresses: addresses })
        : [...keys].flatMap((k): DesiredLb[] => {
          const svc = services.get(k);
          return svc ? serviceLoadBalancers(svc, this.#slicesOf(k), addresses) : [];
        });
      const plan = planServiceLbs({ nb: this.#opts.nb, desired, ...(full ? {} : { scope: keys }) });
      ops = plan.length;
      if (ops > 0) await this.#opts.nb.transact([...plan, { op: 'comment', comment: 'ovnode: services' }]);
      this.#addressesKey = addressesKey;
      this.#backoff.reset();
      const ms = +(performance.now() - started).toFixed(2);
      const count = full ? services.size : keys.size;
      this.#log[ops > 0 || full ? 'info' : 'debug']({ step: 'services', ops, ms, full, services: count, lbs: desired.length }, 'services applied');
      this.#opts.onPass?.({ ok: true, ops, ms, full, services: count });
      if (full || keys.size > 0) this.#publishRules(services);
      this.#firstPass.resolve();
    } catch (e) {
      // Nothing is lost: what this pass was to do is done by the retry.
      if (full) this.#full = true;
      else for (const k of keys) this.#dirty.add(k);
      const delayMs = this.#backoff.next();
      const ms = +(performance.now() - started).toFixed(2);
      this.#log.error({ step: 'services', err: String(e), ops, ms, retryInMs: delayMs }, 'services pass failed; retrying');
      this.#opts.onPass?.({ ok: false, ops: 0, ms, full, services: full ? services.size : keys.size });
      this.#scheduleRetry(delayMs);
    }
  }

  #scheduleRetry(delayMs: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#kick();
    }, delayMs);
    this.#retryTimer.unref();
  }

  /** The NB is back: a pass waiting for its retry runs now. */
  #retryNow(): void {
    if (this.#retryTimer === undefined) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    void this.#kick();
  }

  #publishRules(services: Reflector<ServiceSlim>): void {
    const rules = nodePortRules(services.values());
    const key = JSON.stringify(rules);
    if (key === this.#rulesKey) return;
    this.#rules = rules;
    this.#rulesKey = key;
    for (const listener of this.#listeners) {
      try {
        listener(this.nodePortRules());
      } catch (e) {
        this.#log.error({ step: 'services', err: String(e) }, 'node-port listener failed');
      }
    }
  }
}

/** A switch or the router appeared, went, or changed what decides its load balancers. */
function attachmentChanged(old: Row | undefined, row: Row | undefined): boolean {
  if (!old || !row) return true;
  return old.name !== row.name
    || asMap(old.external_ids)[SWITCH_CIDRS_KEY] !== asMap(row.external_ids)[SWITCH_CIDRS_KEY]
    || !valuesEqual(old[LB_COLUMN], row[LB_COLUMN]);
}

function abortable(p: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return p;
  return Promise.race([p, new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason as Error);
    signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
  })]);
}
