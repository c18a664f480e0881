import { describe, expect, it } from 'vitest';
import { KubeTransportError } from '../../../../../daemon/sources/kube/errors';
import { ndjson } from '../../../../../daemon/sources/kube/stream';

async function* chunks(...parts: string[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield Buffer.from(p);
}

async function collect(source: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const v of source) out.push(v);
  return out;
}

describe('ndjson', () => {
  it('parses values split across chunks and several values in one chunk, skipping blank lines', async () => {
    const values = await collect(ndjson(chunks('{"type":"ADD', 'ED","n":1}\n{"n":2}\n\n{"n"', ':3}\n', '{"s":"é"', '}\n')));
    expect(values).toEqual([{ type: 'ADDED', n: 1 }, { n: 2 }, { n: 3 }, { s: 'é' }]);
  });

  it('keeps a multi-byte character cut between two chunks intact', async () => {
    const bytes = Buffer.from('{"s":"ü"}\n');
    const cut = bytes.indexOf(0xbc); // second byte of ü
    async function* split(): AsyncGenerator<Buffer> {
      yield bytes.subarray(0, cut);
      yield bytes.subarray(cut);
    }
    expect(await collect(ndjson(split()))).toEqual([{ s: 'ü' }]);
  });

  it('refuses half an event at the end and a line that is not JSON', async () => {
    await expect(collect(ndjson(chunks('{"n":1}\n{"n":')))).rejects.toBeInstanceOf(KubeTransportError);
    await expect(collect(ndjson(chunks('not json\n')))).rejects.toThrow(/not JSON/);
  });
});
