// Label selector matching with Kubernetes semantics (apimachinery labels.Selector): every
// matchLabels pair and every matchExpressions requirement must hold; an empty selector matches all.

import type { LabelSelector, LabelSelectorRequirement } from './types';

function requirementHolds(r: LabelSelectorRequirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.hasOwn(labels, r.key);
  switch (r.operator) {
    case 'In':
      return has && r.values.includes(labels[r.key] as string);
    case 'NotIn':
      // A pod without the key is "not in" any set of values.
      return !has || !r.values.includes(labels[r.key] as string);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
  }
}

/** Whether `labels` satisfy `selector`; an absent selector, like `{}`, selects everything. */
export function matchesSelector(selector: LabelSelector | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels)) {
    if (!Object.hasOwn(labels, k) || labels[k] !== v) return false;
  }
  return selector.matchExpressions.every((r) => requirementHolds(r, labels));
}

/** True for an absent selector and for `{}`: both select every object in scope. */
export function isEmptySelector(selector: LabelSelector | undefined): boolean {
  return !selector || (Object.keys(selector.matchLabels).length === 0 && selector.matchExpressions.length === 0);
}
