// JsonStreamSplitter: RFC 7047 §4 messages arrive back to back without delimiters, cut anywhere.
import { describe, expect, it } from 'vitest';
import { JsonStreamSplitter } from '../../../daemon/ovsdb/framing';

/** Feeds `chunks` and returns the parsed messages. */
function split(chunks: (string | Buffer)[], max?: number): unknown[] {
  const s = new JsonStreamSplitter(max);
  return chunks.flatMap((c) => s.push(Buffer.isBuffer(c) ? c : Buffer.from(c))).map((t) => JSON.parse(t));
}

/** Every way of cutting `text` in two. */
function everyCut(text: string): Buffer[][] {
  const b = Buffer.from(text);
  return Array.from({ length: b.length + 1 }, (_, i) => [b.subarray(0, i), b.subarray(i)]);
}

const tricky = { id: 1, result: { s: 'a}b{c', q: 'say "hi" \\ {', e: '', u: 'é漢🚀', n: [[1, { x: [] }]] }, error: null };

describe('JsonStreamSplitter', () => {
  const cases: { desc: string; chunks: string[]; want: unknown[] }[] = [
    { desc: 'one whole message', chunks: ['{"id":1,"result":[],"error":null}'], want: [{ id: 1, result: [], error: null }] },
    { desc: 'several messages in one chunk', chunks: ['{"a":1}{"b":2}{"c":3}'], want: [{ a: 1 }, { b: 2 }, { c: 3 }] },
    { desc: 'whitespace and newlines between messages', chunks: [' {"a":1}\n\n {"b":2}\r\n'], want: [{ a: 1 }, { b: 2 }] },
    { desc: 'message split across three chunks', chunks: ['{"a":', '[1,2', ']}'], want: [{ a: [1, 2] }] },
    { desc: 'end of one and start of the next in one chunk', chunks: ['{"a":1}{"b"', ':2}'], want: [{ a: 1 }, { b: 2 }] },
    { desc: 'braces inside strings', chunks: ['{"s":"}}}{{"}'], want: [{ s: '}}}{{' }] },
    { desc: 'escaped quote followed by a brace', chunks: ['{"s":"\\"}"}'], want: [{ s: '"}' }] },
    { desc: 'escaped backslash before the closing quote', chunks: ['{"s":"\\\\"}{"t":1}'], want: [{ s: '\\' }, { t: 1 }] },
    { desc: 'escape split from the escaped quote', chunks: ['{"s":"a\\', '"}"}'], want: [{ s: 'a"}' }] },
    { desc: 'no message yet', chunks: ['{"a":{"b":'], want: [] },
  ];
  for (const c of cases) {
    it(c.desc, () => expect(split(c.chunks)).toEqual(c.want));
  }

  it('finds the same message whatever the cut, multibyte characters included', () => {
    const text = JSON.stringify(tricky) + JSON.stringify({ id: 2 });
    for (const chunks of everyCut(text)) expect(split(chunks)).toEqual([tricky, { id: 2 }]);
  });

  it('reassembles a message fed one byte at a time', () => {
    const bytes = Buffer.from(JSON.stringify(tricky));
    const chunks = Array.from(bytes, (_, i) => bytes.subarray(i, i + 1));
    expect(split(chunks)).toEqual([tricky]);
  });

  it('holds back the bytes of an unfinished message only', () => {
    const s = new JsonStreamSplitter();
    expect(s.push(Buffer.from('{"a":1} {"b":'))).toEqual(['{"a":1}']);
    expect(s.bufferedBytes).toBe(5);
    expect(s.push(Buffer.from('2}'))).toEqual(['{"b":2}']);
    expect(s.bufferedBytes).toBe(0);
  });

  it('rejects data that is not an object between messages', () => {
    expect(() => split(['{"a":1}x'])).toThrow(/expected '\{'/);
    expect(() => split(['[1]'])).toThrow(/expected '\{'/);
  });

  it('rejects a message larger than the limit', () => {
    expect(() => split(['{"a":"', 'x'.repeat(100)], 64)).toThrow(/larger than 64 bytes/);
  });
});
