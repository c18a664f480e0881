// v1 Namespace and v1 Pod: only what the policy engine reads (labels, annotations, container
// ports for named NetworkPolicy ports), checked as the API server's ValidatePod checks it.

import { child, FieldErrors, index, type Json } from './field-errors';
import { checkPortNumber, dns1123LabelErrors, portNameErrors } from './validate-meta';
import type { ContainerPort, NamespaceObj, ObjectMeta, PodObj } from './types';

const PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;

export function validateNamespace(_errs: FieldErrors, metadata: ObjectMeta): NamespaceObj {
  return { kind: 'Namespace', metadata };
}

function readContainerPort(errs: FieldErrors, v: unknown, path: string, names: Set<string>): ContainerPort | undefined {
  const obj = errs.object(v, path) ?? {};
  const portPath = child(path, 'containerPort');
  const containerPort = errs.integer(obj.containerPort, portPath);
  if (containerPort === undefined) {
    if (obj.containerPort === undefined || obj.containerPort === null) errs.required(portPath);
  } else checkPortNumber(errs, containerPort, portPath);
  const protocol = errs.oneOf(obj.protocol, child(path, 'protocol'), PROTOCOLS) ?? 'TCP';
  const name = errs.string(obj.name, child(path, 'name'));
  if (name !== undefined && name !== '') {
    for (const m of portNameErrors(name)) errs.invalid(child(path, 'name'), name, m);
    // Port names are unique across the pod's containers: a NetworkPolicy port name must resolve to one port.
    if (names.has(name)) errs.duplicate(child(path, 'name'), name);
    names.add(name);
  }
  if (containerPort === undefined) return undefined;
  return name ? { name, containerPort, protocol } : { containerPort, protocol };
}

export function validatePod(errs: FieldErrors, metadata: ObjectMeta, doc: Json): PodObj {
  const spec = errs.object(doc.spec, 'spec') ?? {};
  const containersPath = 'spec.containers';
  const items = errs.array(spec.containers, containersPath);
  if (items.length === 0 && (spec.containers == null || Array.isArray(spec.containers))) errs.required(containersPath);
  const containerNames = new Set<string>();
  const portNames = new Set<string>();
  const containers = items.map((item, i) => {
    const path = index(containersPath, i);
    const c = errs.object(item, path) ?? {};
    const name = errs.string(c.name, child(path, 'name')) ?? '';
    if (name === '') errs.required(child(path, 'name'));
    else {
      for (const m of dns1123LabelErrors(name)) errs.invalid(child(path, 'name'), name, m);
      if (containerNames.has(name)) errs.duplicate(child(path, 'name'), name);
      containerNames.add(name);
    }
    const ports: ContainerPort[] = [];
    errs.array(c.ports, child(path, 'ports')).forEach((p, j) => {
      const port = readContainerPort(errs, p, index(child(path, 'ports'), j), portNames);
      if (port) ports.push(port);
    });
    return { name, ports };
  });
  return { kind: 'Pod', metadata, spec: { containers } };
}
