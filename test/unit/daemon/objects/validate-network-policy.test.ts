// NetworkPolicy validation and defaulting as the API server does them (SetDefaults_NetworkPolicy,
// ValidateNetworkPolicySpec), one row per rule, with the API server's messages.
import { describe, expect, it } from 'vitest';
import type { KubeObject, NetworkPolicyObj } from '../../../../daemon/objects/types';
import { runRow, validate, type Body, type Row } from './validate-helpers';

const NAME = 'NetworkPolicy default/np';
const np = (spec: Body, metadata: Body = { name: 'np' }): Body => ({ metadata, spec });
const specOf = (o: KubeObject) => (o as NetworkPolicyObj).spec;
const fromBlock = (ipBlock: Body): Body => np({ ingress: [{ from: [{ ipBlock }] }] });
const port = (p: Body): Body => np({ ingress: [{ ports: [p] }] });
const peer = (x: unknown): Body => np({ ingress: [{ from: [x] }] });
const podSel = (sel: unknown): Body => np({ podSelector: sel });

describe('NetworkPolicy defaulting', () => {
  const rows: Row[] = [
    {
      desc: 'policyTypes absent, no egress rules: ["Ingress"]',
      body: np({ ingress: [{}] }),
      check: (o) => expect(specOf(o).policyTypes).toEqual(['Ingress']),
    },
    {
      desc: 'policyTypes absent, egress rules present: ["Ingress", "Egress"]',
      body: np({ egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8' } }] }] }),
      check: (o) => expect(specOf(o).policyTypes).toEqual(['Ingress', 'Egress']),
    },
    {
      desc: 'policyTypes absent, egress: [] (no rules): ["Ingress"]',
      body: np({ egress: [] }),
      check: (o) => expect(specOf(o).policyTypes).toEqual(['Ingress']),
    },
    {
      desc: 'policyTypes: [] reads as absent',
      body: np({ policyTypes: [], egress: [{}] }),
      check: (o) => expect(specOf(o).policyTypes).toEqual(['Ingress', 'Egress']),
    },
    {
      desc: 'policyTypes given: kept as given (egress only)',
      body: np({ policyTypes: ['Egress'] }),
      check: (o) => expect(specOf(o).policyTypes).toEqual(['Egress']),
    },
    {
      desc: 'a repeated policyType is kept once',
      body: np({ policyTypes: ['Ingress', 'Ingress'] }),
      check: (o) => expect(specOf(o).policyTypes).toEqual(['Ingress']),
    },
    {
      desc: 'podSelector absent: {} (every pod of the namespace), as the API server decodes it',
      body: np({}),
      check: (o) => expect(specOf(o).podSelector).toEqual({ matchLabels: {}, matchExpressions: [] }),
    },
    {
      desc: 'podSelector: null reads as {}',
      body: podSel(null),
      check: (o) => expect(specOf(o).podSelector).toEqual({ matchLabels: {}, matchExpressions: [] }),
    },
    {
      desc: 'metadata.namespace absent: "default"',
      body: np({}),
      check: (o) => expect(o.metadata).toEqual({ name: 'np', namespace: 'default', labels: {}, annotations: {} }),
    },
    {
      desc: 'ingress[].from and egress[].to become peers; no from = from anywhere',
      body: np({ ingress: [{}, { from: [{ podSelector: {} }] }], egress: [{ to: [{ namespaceSelector: { matchLabels: { a: 'b' } } }] }] }),
      check: (o) => {
        expect(specOf(o).ingress).toEqual([
          { peers: [], ports: [] },
          { peers: [{ podSelector: { matchLabels: {}, matchExpressions: [] } }], ports: [] },
        ]);
        expect(specOf(o).egress).toEqual([{ peers: [{ namespaceSelector: { matchLabels: { a: 'b' }, matchExpressions: [] } }], ports: [] }]);
      },
    },
    {
      desc: 'a null rule is an allow-all rule',
      body: np({ ingress: [null] }),
      check: (o) => expect(specOf(o).ingress).toEqual([{ peers: [], ports: [] }]),
    },
    {
      desc: 'ports: protocol defaults to TCP',
      body: port({ port: 80 }),
      check: (o) => expect(specOf(o).ingress[0]?.ports).toEqual([{ protocol: 'TCP', port: 80 }]),
    },
    {
      desc: 'ports: no port means every port of the protocol',
      body: port({ protocol: 'UDP' }),
      check: (o) => expect(specOf(o).ingress[0]?.ports).toEqual([{ protocol: 'UDP' }]),
    },
    {
      desc: 'ports: endPort with a numeric port',
      body: port({ protocol: 'SCTP', port: 32000, endPort: 32768 }),
      check: (o) => expect(specOf(o).ingress[0]?.ports).toEqual([{ protocol: 'SCTP', port: 32000, endPort: 32768 }]),
    },
    {
      desc: 'ports: endPort equal to port',
      body: port({ port: 53, endPort: 53 }),
      check: (o) => expect(specOf(o).ingress[0]?.ports[0]?.endPort).toBe(53),
    },
    {
      desc: 'ports: a named port',
      body: port({ port: 'http' }),
      check: (o) => expect(specOf(o).ingress[0]?.ports).toEqual([{ protocol: 'TCP', port: 'http' }]),
    },
    {
      desc: 'ipBlock: except entries inside the cidr, IPv6 too',
      body: np({ egress: [{ to: [{ ipBlock: { cidr: 'fd00::/64', except: ['fd00::/80', 'fd00::1/128'] } }] }] }),
      check: (o) => expect(specOf(o).egress[0]?.peers[0]?.ipBlock).toEqual({ cidr: 'fd00::/64', except: ['fd00::/80', 'fd00::1/128'] }),
    },
    {
      desc: 'ipBlock: except defaults to []',
      body: fromBlock({ cidr: '10.0.0.0/8' }),
      check: (o) => expect(specOf(o).ingress[0]?.peers[0]).toEqual({ ipBlock: { cidr: '10.0.0.0/8', except: [] } }),
    },
    {
      desc: 'peer: podSelector and namespaceSelector together',
      body: peer({ podSelector: { matchLabels: { app: 'a' } }, namespaceSelector: {} }),
      check: (o) => expect(Object.keys(specOf(o).ingress[0]?.peers[0] ?? {})).toEqual(['podSelector', 'namespaceSelector']),
    },
    {
      desc: 'selector: In / NotIn with values, Exists / DoesNotExist without',
      body: podSel({
        matchExpressions: [
          { key: 'a', operator: 'In', values: ['x'] },
          { key: 'b', operator: 'NotIn', values: ['y', 'z'] },
          { key: 'example.com/c', operator: 'Exists' },
          { key: 'd', operator: 'DoesNotExist', values: [] },
        ],
      }),
      check: (o) => expect(specOf(o).podSelector.matchExpressions.map((e) => e.values.length)).toEqual([1, 2, 0, 0]),
    },
  ];
  for (const row of rows) it(row.desc, () => runRow('NetworkPolicy', row));
});

describe('NetworkPolicy rejections', () => {
  const rows: Row[] = [
    {
      desc: 'policyTypes: lower case "egress" (seed 004 example 3)',
      body: np({ policyTypes: ['egress'] }),
      error: `${NAME}: spec.policyTypes[0]: Unsupported value: "egress": supported values: "Ingress", "Egress"`,
    },
    {
      desc: 'policyTypes: more than two',
      body: np({ policyTypes: ['Ingress', 'Egress', 'Ingress'] }),
      error: `${NAME}: spec.policyTypes: Invalid value: a list: may not specify more than two policyTypes`,
    },
    {
      desc: 'policyTypes: not a list',
      body: np({ policyTypes: 'Ingress' }),
      error: `${NAME}: spec.policyTypes: Invalid value: "Ingress": must be a list`,
    },
    {
      desc: 'podSelector: not an object',
      body: podSel('app=web'),
      error: `${NAME}: spec.podSelector: Invalid value: "app=web": must be an object`,
    },
    {
      desc: 'podSelector misspelt: strict field validation refuses it rather than selecting every pod',
      body: np({ podselector: { matchLabels: { app: 'web' } } }),
      error: `${NAME}: unknown field "spec.podselector"`,
    },
    {
      desc: 'unknown field in a rule',
      body: np({ ingress: [{ form: [] }] }),
      error: `${NAME}: unknown field "spec.ingress[0].form"`,
    },
    {
      desc: 'ingress rule with `to` (egress field)',
      body: np({ ingress: [{ to: [] }] }),
      error: `${NAME}: unknown field "spec.ingress[0].to"`,
    },
    {
      desc: 'ports: protocol in lower case',
      body: port({ protocol: 'tcp', port: 80 }),
      error: `${NAME}: spec.ingress[0].ports[0].protocol: Unsupported value: "tcp": supported values: "TCP", "UDP", "SCTP"`,
    },
    {
      desc: 'ports: port 0',
      body: port({ port: 0 }),
      error: `${NAME}: spec.ingress[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive`,
    },
    {
      desc: 'ports: port 65536',
      body: port({ port: 65536 }),
      error: `${NAME}: spec.ingress[0].ports[0].port: Invalid value: 65536: must be between 1 and 65535, inclusive`,
    },
    {
      desc: 'ports: a quoted number is a port name, and names need a letter',
      body: port({ port: '80' }),
      error: `${NAME}: spec.ingress[0].ports[0].port: Invalid value: "80": must contain at least one letter (a-z)`,
    },
    {
      desc: 'ports: endPort below port',
      body: port({ port: 100, endPort: 99 }),
      error: `${NAME}: spec.ingress[0].ports[0].endPort: Invalid value: 99: must be greater than or equal to \`port\``,
    },
    {
      desc: 'ports: endPort with a named port',
      body: port({ port: 'http', endPort: 90 }),
      error: `${NAME}: spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when \`port\` is non-numeric`,
    },
    {
      desc: 'ports: endPort without port',
      body: port({ endPort: 90 }),
      error: `${NAME}: spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when \`port\` is not specified`,
    },
    {
      desc: 'ports: endPort above 65535',
      body: port({ port: 1, endPort: 70000 }),
      error: `${NAME}: spec.ingress[0].ports[0].endPort: Invalid value: 70000: must be between 1 and 65535, inclusive`,
    },
    {
      desc: 'ports: port not an integer',
      body: port({ port: 80.5 }),
      error: `${NAME}: spec.ingress[0].ports[0].port: Invalid value: 80.5: must be an integer`,
    },
    {
      desc: 'ipBlock: cidr not a CIDR',
      body: fromBlock({ cidr: '172.20.10.0' }),
      error: `${NAME}: spec.ingress[0].from[0].ipBlock.cidr: Invalid value: "172.20.10.0": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)`,
    },
    {
      desc: 'ipBlock: cidr missing',
      body: fromBlock({ except: ['10.0.0.0/24'] }),
      error: `${NAME}: spec.ingress[0].from[0].ipBlock.cidr: Required value`,
    },
    {
      desc: 'ipBlock: except outside the cidr',
      body: fromBlock({ cidr: '10.0.0.0/16', except: ['10.1.0.0/24'] }),
      error: `${NAME}: spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "10.1.0.0/24": must be a strict subset of \`cidr\``,
    },
    {
      desc: 'ipBlock: except equal to the cidr is not a strict subset',
      body: fromBlock({ cidr: '10.0.0.0/16', except: ['10.0.0.0/16'] }),
      error: `${NAME}: spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "10.0.0.0/16": must be a strict subset of \`cidr\``,
    },
    {
      desc: 'ipBlock: except of the other family',
      body: fromBlock({ cidr: '10.0.0.0/8', except: ['fd00::/64'] }),
      error: `${NAME}: spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "fd00::/64": must be a strict subset of \`cidr\``,
    },
    {
      desc: 'ipBlock: except not a CIDR',
      body: fromBlock({ cidr: '10.0.0.0/8', except: ['10.1.1.1'] }),
      error: `${NAME}: spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "10.1.1.1": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)`,
    },
    {
      desc: 'peer: empty',
      body: peer({}),
      error: `${NAME}: spec.ingress[0].from[0]: Required value: must specify a peer`,
    },
    {
      desc: 'peer: ipBlock with podSelector',
      body: np({ egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} }] }] }),
      error: `${NAME}: spec.egress[0].to[0]: Forbidden: may not specify both ipBlock and another peer`,
    },
    {
      desc: 'peer: ipBlock with namespaceSelector',
      body: peer({ ipBlock: { cidr: '10.0.0.0/8' }, namespaceSelector: {} }),
      error: `${NAME}: spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer`,
    },
    {
      desc: 'selector: In without values',
      body: podSel({ matchExpressions: [{ key: 'a', operator: 'In' }] }),
      error: `${NAME}: spec.podSelector.matchExpressions[0].values: Required value: must be specified when \`operator\` is 'In' or 'NotIn'`,
    },
    {
      desc: 'selector: NotIn with an empty list',
      body: podSel({ matchExpressions: [{ key: 'a', operator: 'NotIn', values: [] }] }),
      error: `${NAME}: spec.podSelector.matchExpressions[0].values: Required value: must be specified when \`operator\` is 'In' or 'NotIn'`,
    },
    {
      desc: 'selector: Exists with values',
      body: podSel({ matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] }),
      error: `${NAME}: spec.podSelector.matchExpressions[0].values: Forbidden: may not be specified when \`operator\` is 'Exists' or 'DoesNotExist'`,
    },
    {
      desc: 'selector: DoesNotExist with values (in a peer)',
      body: peer({ namespaceSelector: { matchExpressions: [{ key: 'a', operator: 'DoesNotExist', values: ['x'] }] } }),
      error: `${NAME}: spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].values: Forbidden: may not be specified when \`operator\` is 'Exists' or 'DoesNotExist'`,
    },
    {
      desc: 'selector: unknown operator',
      body: podSel({ matchExpressions: [{ key: 'a', operator: 'Equals', values: ['x'] }] }),
      error: `${NAME}: spec.podSelector.matchExpressions[0].operator: Invalid value: "Equals": not a valid selector operator (use one of In, NotIn, Exists, DoesNotExist)`,
    },
    {
      desc: 'selector: operator missing',
      body: podSel({ matchExpressions: [{ key: 'a' }] }),
      error: `${NAME}: spec.podSelector.matchExpressions[0].operator: Required value`,
    },
    {
      desc: 'selector: key missing',
      body: podSel({ matchExpressions: [{ operator: 'Exists' }] }),
      error: `${NAME}: spec.podSelector.matchExpressions[0].key: Required value`,
    },
    {
      desc: 'selector: matchLabels value unquoted true',
      body: podSel({ matchLabels: { enabled: true } }),
      error: `${NAME}: spec.podSelector.matchLabels.enabled: Invalid value: true: must be a string (quote it in YAML)`,
    },
    {
      desc: 'selector: matchLabels key not a qualified name',
      body: podSel({ matchLabels: { 'bad key': 'x' } }),
      error:
        `${NAME}: spec.podSelector.matchLabels: Invalid value: "bad key": name part must consist of alphanumeric characters, ` +
        "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc')",
    },
    {
      desc: 'selector: unknown field',
      body: podSel({ matchLabel: { a: 'b' } }),
      error: `${NAME}: unknown field "spec.podSelector.matchLabel"`,
    },
    {
      desc: 'every error is reported, joined by "; "',
      body: np({ policyTypes: ['ingress'], ingress: [{ ports: [{ port: 0 }] }] }),
      error:
        `${NAME}: spec.ingress[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive; ` +
        'spec.policyTypes[0]: Unsupported value: "ingress": supported values: "Ingress", "Egress"',
    },
  ];
  for (const row of rows) it(row.desc, () => runRow('NetworkPolicy', row));

  it('a rejected object carries kind, name, namespace and source', () => {
    const r = validate('NetworkPolicy', np({ policyTypes: ['egress'] }, { name: 'ip-block', namespace: 'team-a' }));
    expect(r).toEqual({
      ok: false,
      rejected: {
        source: 'test.yaml',
        kind: 'NetworkPolicy',
        name: 'ip-block',
        namespace: 'team-a',
        message: 'NetworkPolicy team-a/ip-block: spec.policyTypes[0]: Unsupported value: "egress": supported values: "Ingress", "Egress"',
      },
    });
  });
});
