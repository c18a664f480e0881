// EndpointSlices by the Service they belong to, kept from the reflector's events: a Service's
// slices are found without scanning every slice of the cluster. Holds the reflector's own
// projections (no copies).

import type { ReflectorEvent } from '../sources/kube/reflector';
import type { SliceSlim } from './types';

export class SliceIndex {
  readonly #byService = new Map<string, Map<string, SliceSlim>>();

  /** Applies one reflector event; returns the Services (`namespace/name`) whose slices changed. */
  apply(ev: ReflectorEvent<SliceSlim>): string[] {
    const touched: string[] = [];
    const drop = (slice: SliceSlim | undefined): void => {
      if (!slice) return;
      const map = this.#byService.get(slice.service);
      if (map?.delete(ev.key)) touched.push(slice.service);
      if (map?.size === 0) this.#byService.delete(slice.service);
    };
    // The label naming the Service may change: the slice leaves the old one.
    drop(ev.old);
    if (ev.type === 'DELETED') {
      drop(ev.object);
      return touched;
    }
    let map = this.#byService.get(ev.object.service);
    if (!map) this.#byService.set(ev.object.service, (map = new Map()));
    map.set(ev.key, ev.object);
    if (!touched.includes(ev.object.service)) touched.push(ev.object.service);
    return touched;
  }

  of(service: string): SliceSlim[] {
    const map = this.#byService.get(service);
    return map ? [...map.values()] : [];
  }

  get services(): number {
    return this.#byService.size;
  }
}
