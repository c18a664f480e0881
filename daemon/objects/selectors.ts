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

/** A selector as a predicate, for selectors evaluated many times (the policy engine's indexes). */
export type LabelPredicate = (labels: Readonly<Record<string, string>>) => boolean;

const SELECT_ALL: LabelPredicate = () => true;

/**
 * `matchesSelector` with the selector's own work done once: matchLabels become a pair list, so
 * a call allocates nothing. Same semantics, including "absent or empty selects everything".
 */
export function compileSelector(selector: LabelSelector | undefined): LabelPredicate {
  if (!selector || isEmptySelector(selector)) return SELECT_ALL;
  const pairs = Object.entries(selector.matchLabels);
  const requirements = selector.matchExpressions;
  return (labels) => {
    for (const [k, v] of pairs) {
      if (!Object.hasOwn(labels, k) || labels[k] !== v) return false;
    }
    for (const r of requirements) if (!requirementHolds(r, labels)) return false;
    return true;
  };
}

/** True for an absent selector and for `{}`: both select every object in scope. */
export function isEmptySelector(selector: LabelSelector | undefined): boolean {
  return !selector || (Object.keys(selector.matchLabels).length === 0 && selector.matchExpressions.length === 0);
}
