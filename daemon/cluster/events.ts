// Kubernetes Events about objects the daemon acts on: what `kubectl describe` shows an operator
// (a refused Subnet, a pod that could not be networked), not only a log line. Writes are
// fire-and-forget with a bounded retry: an event is advice, never on a request's critical path.

import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { KubeApi } from '../sources/kube/api';

export interface EventSubject {
  apiVersion: string;
  kind: string;
  name: string;
  /** Empty for cluster-scoped objects (their events go to the `default` namespace). */
  namespace: string;
  uid?: string;
}

export interface EventNote {
  type: 'Normal' | 'Warning';
  /** CamelCase, short: `SubnetRefused`, `AddFailed`. */
  reason: string;
  message: string;
}

const COMPONENT = 'ovnode';
const MAX_MESSAGE = 1024;

export class EventRecorder {
  /** Events already written (name -> count), so a repeat is a count bump, not a new object. */
  private readonly counts = new Map<string, number>();

  constructor(private readonly api: KubeApi, private readonly nodeName: string, private readonly log: Logger) {}

  /** Records the event; resolves whether or not the API took it (failures are logged). */
  async record(subject: EventSubject, note: EventNote): Promise<void> {
    const namespace = subject.namespace || 'default';
    // One event object per (subject, reason, message): the same refusal seen again bumps its count.
    // The uid is part of the name: an object deleted and created again under its name gets Events of its own (kubectl describe shows only those of its uid).
    const digest = createHash('sha256').update(`${subject.kind}/${subject.namespace}/${subject.name}/${subject.uid ?? ''}/${note.reason}/${note.message}`).digest('hex').slice(0, 16);
    const name = `${subject.name.slice(0, 200)}.${digest}`;
    const now = new Date().toISOString();
    const count = (this.counts.get(name) ?? 0) + 1;
    try {
      if (count === 1) {
        const res = await this.api.request({
          method: 'POST', path: `/api/v1/namespaces/${namespace}/events`,
          body: {
            apiVersion: 'v1', kind: 'Event',
            metadata: { name, namespace },
            involvedObject: { apiVersion: subject.apiVersion, kind: subject.kind, name: subject.name, namespace: subject.namespace || undefined, uid: subject.uid },
            type: note.type, reason: note.reason, message: note.message.slice(0, MAX_MESSAGE),
            source: { component: COMPONENT, host: this.nodeName },
            reportingComponent: COMPONENT, reportingInstance: this.nodeName,
            firstTimestamp: now, lastTimestamp: now, count: 1,
          },
        });
        // 409: written before this daemon started; continue as a repeat.
        if (res.status !== 409 && (res.status < 200 || res.status > 299)) throw new Error(`HTTP ${res.status}`);
        if (res.status !== 409) { this.counts.set(name, 1); return; }
      }
      const res = await this.api.request({
        method: 'PATCH', path: `/api/v1/namespaces/${namespace}/events/${name}`,
        body: { count, lastTimestamp: now },
      });
      if (res.status < 200 || res.status > 299) throw new Error(`HTTP ${res.status}`);
      this.counts.set(name, count);
    } catch (e) {
      this.log.warn({ step: 'events', subject: `${subject.kind} ${namespace}/${subject.name}`, reason: note.reason, err: e }, 'event not recorded');
    }
  }
}
