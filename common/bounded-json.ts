// JSON decoding with a nesting bound. JSON.parse itself copes with deep nesting, but every
// recursive walk over the value afterwards (JSON.stringify of a reply, structured logging, our
// own validators) can exhaust the stack: a 10000-deep netconf killed the daemon that way. No CNI
// document needs more than a handful of levels, so anything deeper is refused before parsing.

import { DecodeError } from './errors';

/** Deepest nesting of objects/arrays accepted in a netconf or wire request. */
export const MAX_JSON_DEPTH = 64;

/** Nesting depth of a JSON text, counted without parsing it; strings are skipped. */
export function jsonDepth(text: string, stopAbove = Infinity): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) {
        max = depth;
        if (max > stopAbove) return max;
      }
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}

/** JSON.parse behind the depth bound; both failures are decode errors (CNI code 6). */
export function parseBoundedJson(text: string, what: string, maxDepth = MAX_JSON_DEPTH): unknown {
  if (jsonDepth(text, maxDepth) > maxDepth) {
    throw new DecodeError(`error decoding ${what}`, { details: `nesting deeper than ${maxDepth} levels` });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DecodeError(`error decoding ${what}`, { details: (e as Error).message });
  }
}
