// Label selector semantics: matchLabels AND matchExpressions; NotIn and DoesNotExist hold for
// a missing key; an absent or empty selector selects everything.
import { describe, expect, it } from 'vitest';
import { isEmptySelector, matchesSelector } from '../../../../daemon/objects/selectors';
import type { LabelSelector, LabelSelectorRequirement } from '../../../../daemon/objects/types';

const sel = (matchLabels: Record<string, string> = {}, matchExpressions: LabelSelectorRequirement[] = []): LabelSelector => ({
  matchLabels,
  matchExpressions,
});
const expr = (key: string, operator: LabelSelectorRequirement['operator'], values: string[] = []): LabelSelectorRequirement => ({
  key,
  operator,
  values,
});

describe('matchesSelector', () => {
  const web = { app: 'web', tier: 'front' };
  const cases: { desc: string; selector: LabelSelector | undefined; labels: Record<string, string>; match: boolean }[] = [
    { desc: 'absent selector matches everything', selector: undefined, labels: {}, match: true },
    { desc: 'empty selector matches a pod without labels', selector: sel(), labels: {}, match: true },
    { desc: 'empty selector matches a labelled pod', selector: sel(), labels: web, match: true },
    { desc: 'matchLabels equal', selector: sel({ app: 'web' }), labels: web, match: true },
    { desc: 'matchLabels different value', selector: sel({ app: 'db' }), labels: web, match: false },
    { desc: 'matchLabels missing key', selector: sel({ role: 'x' }), labels: web, match: false },
    { desc: 'matchLabels all pairs must hold', selector: sel({ app: 'web', tier: 'back' }), labels: web, match: false },
    { desc: 'matchLabels with empty value matches empty value', selector: sel({ x: '' }), labels: { x: '' }, match: true },
    { desc: 'matchLabels with empty value needs the key', selector: sel({ x: '' }), labels: {}, match: false },
    { desc: 'In: value listed', selector: sel({}, [expr('app', 'In', ['db', 'web'])]), labels: web, match: true },
    { desc: 'In: value not listed', selector: sel({}, [expr('app', 'In', ['db'])]), labels: web, match: false },
    { desc: 'In: key missing', selector: sel({}, [expr('role', 'In', ['x'])]), labels: web, match: false },
    { desc: 'NotIn: value listed', selector: sel({}, [expr('app', 'NotIn', ['web'])]), labels: web, match: false },
    { desc: 'NotIn: value not listed', selector: sel({}, [expr('app', 'NotIn', ['db'])]), labels: web, match: true },
    { desc: 'NotIn: key missing matches', selector: sel({}, [expr('role', 'NotIn', ['x'])]), labels: web, match: true },
    { desc: 'Exists: present', selector: sel({}, [expr('tier', 'Exists')]), labels: web, match: true },
    { desc: 'Exists: absent', selector: sel({}, [expr('role', 'Exists')]), labels: web, match: false },
    { desc: 'DoesNotExist: absent', selector: sel({}, [expr('role', 'DoesNotExist')]), labels: web, match: true },
    { desc: 'DoesNotExist: present', selector: sel({}, [expr('app', 'DoesNotExist')]), labels: web, match: false },
    {
      desc: 'labels and expressions are ANDed',
      selector: sel({ app: 'web' }, [expr('tier', 'In', ['back'])]),
      labels: web,
      match: false,
    },
    {
      desc: 'every expression must hold',
      selector: sel({}, [expr('app', 'Exists'), expr('tier', 'NotIn', ['back']), expr('role', 'DoesNotExist')]),
      labels: web,
      match: true,
    },
    { desc: 'inherited object keys are not labels', selector: sel({}, [expr('toString', 'Exists')]), labels: {}, match: false },
  ];
  for (const c of cases) it(c.desc, () => expect(matchesSelector(c.selector, c.labels)).toBe(c.match));
});

describe('isEmptySelector', () => {
  const cases: { desc: string; selector: LabelSelector | undefined; empty: boolean }[] = [
    { desc: 'absent', selector: undefined, empty: true },
    { desc: '{}', selector: sel(), empty: true },
    { desc: 'matchLabels', selector: sel({ a: 'b' }), empty: false },
    { desc: 'matchExpressions', selector: sel({}, [expr('a', 'Exists')]), empty: false },
  ];
  for (const c of cases) it(c.desc, () => expect(isEmptySelector(c.selector)).toBe(c.empty));
});
