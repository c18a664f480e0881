// Metadata rules shared by every kind (names, namespace defaulting, labels, annotations) and the
// v1 Namespace and Pod kinds.
import { describe, expect, it } from 'vitest';
import type { PodObj } from '../../../../daemon/objects/types';
import { runRow, type Body, type Row } from './validate-helpers';

const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start " +
  "and end with an alphanumeric character (e.g. 'example.com')";
const LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end " +
  "with an alphanumeric character (e.g. 'my-name',  or '123-abc')";

const pod = (spec: Body, metadata: Body = { name: 'p' }): Body => ({ metadata, spec });
const oneContainer = (c: Body): Body => pod({ containers: [{ name: 'c', ...c }] });
const podSpec = (o: unknown) => (o as PodObj).spec;

describe('metadata', () => {
  const rows: Array<Row & { kind: 'Pod' | 'Namespace' | 'Subnet' }> = [
    {
      desc: 'labels and annotations are kept; namespace defaults to "default"',
      kind: 'Pod',
      body: pod({ containers: [{ name: 'c' }] }, { name: 'p', labels: { app: 'web', 'example.com/tier': '' }, annotations: { 'ovn.kubernetes.io/logical_switch': 'sw', note: 'any text at all: ok' } }),
      check: (o) =>
        expect(o.metadata).toEqual({
          name: 'p',
          namespace: 'default',
          labels: { app: 'web', 'example.com/tier': '' },
          annotations: { 'ovn.kubernetes.io/logical_switch': 'sw', note: 'any text at all: ok' },
        }),
    },
    {
      desc: 'a namespace on a cluster-scoped kind is ignored',
      kind: 'Subnet',
      body: { metadata: { name: 's', namespace: 'kube-system' }, spec: { cidrBlock: '10.1.0.0/24' } },
      check: (o) => expect(o.metadata.namespace).toBe(''),
    },
    {
      desc: 'name missing',
      kind: 'Pod',
      body: pod({ containers: [{ name: 'c' }] }, {}),
      error: 'Pod default/(unnamed): metadata.name: Required value: name or generateName is required',
    },
    {
      desc: 'generateName instead of a name',
      kind: 'Pod',
      body: pod({ containers: [{ name: 'c' }] }, { generateName: 'web-' }),
      error: 'Pod default/(unnamed): metadata.name: Required value: generateName needs an API server; set metadata.name in a manifest',
    },
    {
      desc: 'name with upper case',
      kind: 'Pod',
      body: pod({ containers: [{ name: 'c' }] }, { name: 'Web' }),
      error: `Pod default/Web: metadata.name: Invalid value: "Web": ${SUBDOMAIN_MSG}`,
    },
    {
      desc: 'Namespace names are labels: no dots',
      kind: 'Namespace',
      body: { metadata: { name: 'team.a' } },
      error: `Namespace team.a: metadata.name: Invalid value: "team.a": ${LABEL_MSG}`,
    },
    {
      desc: 'a name not a string',
      kind: 'Namespace',
      body: { metadata: { name: 42 } },
      error: 'Namespace (unnamed): metadata.name: Invalid value: 42: must be a string (quote it in YAML)',
    },
    {
      desc: 'namespace with an underscore',
      kind: 'Pod',
      body: pod({ containers: [{ name: 'c' }] }, { name: 'p', namespace: 'team_a' }),
      error: `Pod team_a/p: metadata.namespace: Invalid value: "team_a": ${LABEL_MSG}`,
    },
    {
      desc: 'label value unquoted number',
      kind: 'Namespace',
      body: { metadata: { name: 'n', labels: { version: 2 } } },
      error: 'Namespace n: metadata.labels.version: Invalid value: 2: must be a string (quote it in YAML)',
    },
    {
      desc: 'label value too long',
      kind: 'Namespace',
      body: { metadata: { name: 'n', labels: { a: 'x'.repeat(64) } } },
      error: `Namespace n: metadata.labels: Invalid value: "${'x'.repeat(64)}": must be no more than 63 characters`,
    },
    {
      desc: 'label key with an empty prefix',
      kind: 'Namespace',
      body: { metadata: { name: 'n', labels: { '/a': 'b' } } },
      error: 'Namespace n: metadata.labels: Invalid value: "/a": prefix part must be non-empty',
    },
    {
      desc: 'annotation value not a string',
      kind: 'Namespace',
      body: { metadata: { name: 'n', annotations: { 'ovn.kubernetes.io/port_security': true } } },
      error: 'Namespace n: metadata.annotations.ovn.kubernetes.io/port_security: Invalid value: true: must be a string (quote it in YAML)',
    },
    {
      desc: 'metadata not an object',
      kind: 'Namespace',
      body: { metadata: 'n' },
      error: 'Namespace (unnamed): metadata: Invalid value: "n": must be an object; metadata.name: Required value: name or generateName is required',
    },
  ];
  for (const row of rows) it(row.desc, () => runRow(row.kind, row));
});

describe('Pod', () => {
  const rows: Row[] = [
    {
      desc: 'container ports: protocol defaults to TCP, name kept',
      body: oneContainer({ ports: [{ name: 'http', containerPort: 8080 }, { containerPort: 53, protocol: 'UDP' }] }),
      check: (o) =>
        expect(podSpec(o).containers).toEqual([
          { name: 'c', ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }, { containerPort: 53, protocol: 'UDP' }] },
        ]),
    },
    {
      desc: 'a container without ports',
      body: oneContainer({ image: 'nginx' }),
      check: (o) => expect(podSpec(o).containers).toEqual([{ name: 'c', ports: [] }]),
    },
    { desc: 'containers missing', body: pod({}), error: 'Pod default/p: spec.containers: Required value' },
    { desc: 'spec missing', body: { metadata: { name: 'p' } }, error: 'Pod default/p: spec.containers: Required value' },
    {
      desc: 'container name missing',
      body: pod({ containers: [{ image: 'x' }] }),
      error: 'Pod default/p: spec.containers[0].name: Required value',
    },
    {
      desc: 'container names repeat',
      body: pod({ containers: [{ name: 'c' }, { name: 'c' }] }),
      error: 'Pod default/p: spec.containers[1].name: Duplicate value: "c"',
    },
    {
      desc: 'containerPort missing',
      body: oneContainer({ ports: [{ name: 'http' }] }),
      error: 'Pod default/p: spec.containers[0].ports[0].containerPort: Required value',
    },
    {
      desc: 'containerPort out of range',
      body: oneContainer({ ports: [{ containerPort: 70000 }] }),
      error: 'Pod default/p: spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive',
    },
    {
      desc: 'port protocol unknown',
      body: oneContainer({ ports: [{ containerPort: 80, protocol: 'HTTP' }] }),
      error: 'Pod default/p: spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: "TCP", "UDP", "SCTP"',
    },
    {
      desc: 'port name too long',
      body: oneContainer({ ports: [{ containerPort: 80, name: 'a-very-long-port-name' }] }),
      error: 'Pod default/p: spec.containers[0].ports[0].name: Invalid value: "a-very-long-port-name": must be no more than 15 characters',
    },
    {
      desc: 'port names are unique across the containers of the pod',
      body: pod({ containers: [{ name: 'a', ports: [{ name: 'web', containerPort: 80 }] }, { name: 'b', ports: [{ name: 'web', containerPort: 81 }] }] }),
      error: 'Pod default/p: spec.containers[1].ports[0].name: Duplicate value: "web"',
    },
  ];
  for (const row of rows) it(row.desc, () => runRow('Pod', row));
});
