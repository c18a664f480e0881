// Reachability matrices: what was measured ({from, to, proto, ok} per ordered pair), expected
// tables written as text in the tests, and a printer for the test output.
//
// An expected table reads like the seed documents: rows are the side that starts the connection,
// columns the side it is aimed at; "ok" = the connection succeeds (a ping gets its reply, a TCP
// connection is established), "no" = it does not, "-" = not measured (a pod and itself).
//
//          VM1 VM2 GW
//     VM1   -  ok  no
//     VM2  no   -  no

export type Proto = 'icmp' | 'tcp';

export interface Reach {
  from: string;
  to: string;
  proto: Proto;
  ok: boolean;
  /** Why it failed (exit status, stderr), when it did. */
  detail?: string;
}

export interface ExpectedMatrix {
  rows: string[];
  cols: string[];
  /** `from>to` -> expected outcome; pairs marked "-" are absent. */
  cells: Map<string, boolean>;
}

const key = (from: string, to: string): string => `${from}>${to}`;

/** Parses a table as described at the top of this file. Throws on a malformed table. */
export function matrix(text: string): ExpectedMatrix {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const [header, ...body] = lines;
  if (!header) throw new Error('empty matrix');
  const cols = header.split(/\s+/);
  const rows: string[] = [];
  const cells = new Map<string, boolean>();
  for (const line of body) {
    const [row, ...values] = line.split(/\s+/);
    if (!row || values.length !== cols.length) throw new Error(`matrix row "${line}" has ${values.length} cells for ${cols.length} columns`);
    rows.push(row);
    values.forEach((v, i) => {
      const col = cols[i] as string;
      if (v === 'ok') cells.set(key(row, col), true);
      else if (v === 'no') cells.set(key(row, col), false);
      else if (v !== '-') throw new Error(`matrix cell "${v}" (row ${row}, column ${col}): use ok, no or -`);
    });
  }
  return { rows, cols, cells };
}

/** A table where every measured pair (from != to) has the same outcome. */
export function uniform(rows: string[], cols: string[], ok: boolean): ExpectedMatrix {
  const cells = new Map<string, boolean>();
  for (const r of rows) for (const c of cols) if (r !== c) cells.set(key(r, c), ok);
  return { rows, cols, cells };
}

/** The same table, but only the given columns (e.g. without the gateway for TCP). */
export function onlyColumns(m: ExpectedMatrix, cols: string[]): ExpectedMatrix {
  const keep = new Set(cols);
  const cells = new Map([...m.cells].filter(([k]) => keep.has(k.split('>')[1] as string)));
  return { rows: m.rows, cols: m.cols.filter((c) => keep.has(c)), cells };
}

/** A copy with some cells changed: `[[from, to, ok], ...]`. */
export function withCells(m: ExpectedMatrix, changes: Array<[string, string, boolean]>): ExpectedMatrix {
  const cells = new Map(m.cells);
  for (const [f, t, ok] of changes) cells.set(key(f, t), ok);
  return { rows: m.rows, cols: m.cols, cells };
}

function cellText(v: boolean | undefined): string {
  return v === undefined ? '-' : v ? 'ok' : 'no';
}

function grid(rows: string[], cols: string[], cell: (r: string, c: string) => string, title: string): string {
  const w = Math.max(4, ...rows.map((r) => r.length), ...cols.map((c) => c.length), title.length) + 2;
  const pad = (s: string): string => s.padEnd(w);
  const out = [pad(title) + cols.map(pad).join('')];
  for (const r of rows) out.push(pad(r) + cols.map((c) => pad(cell(r, c))).join(''));
  return out.map((l) => l.trimEnd()).join('\n');
}

export interface MatrixCheck {
  /** Measured outcomes as a table (only the cells the expectation covers, "-" elsewhere). */
  actual: string;
  /** The expectation in the same layout: `expect(c.actual).toBe(c.expected)` diffs cell by cell. */
  expected: string;
  /** Measured table with "!" on every cell that differs from the expectation, plus failure details. */
  pretty: string;
  mismatches: Reach[];
}

/**
 * Lines the measured entries of one protocol up against an expected table. Every expected cell
 * must have been measured (a missing measurement counts as a mismatch).
 */
export function checkMatrix(entries: Reach[], expected: ExpectedMatrix, proto: Proto, title = proto.toUpperCase()): MatrixCheck {
  const measured = new Map(entries.filter((e) => e.proto === proto).map((e) => [key(e.from, e.to), e]));
  const { rows, cols } = expected;
  const mismatches: Reach[] = [];
  const actualCell = (r: string, c: string): boolean | undefined => {
    if (!expected.cells.has(key(r, c))) return undefined;
    return measured.get(key(r, c))?.ok;
  };
  for (const [k, want] of expected.cells) {
    const got = measured.get(k);
    if (!got) {
      const [from, to] = k.split('>') as [string, string];
      mismatches.push({ from, to, proto, ok: !want, detail: 'not measured' });
    } else if (got.ok !== want) mismatches.push(got);
  }
  const actual = grid(rows, cols, (r, c) => {
    if (!expected.cells.has(key(r, c))) return '-';
    const e = measured.get(key(r, c));
    return e ? cellText(e.ok) : '??';
  }, title);
  const expectedText = grid(rows, cols, (r, c) => cellText(expected.cells.get(key(r, c))), title);
  const pretty = [
    grid(rows, cols, (r, c) => {
      const want = expected.cells.get(key(r, c));
      const got = actualCell(r, c);
      if (want === undefined) return '-';
      if (got === undefined) return '??';
      return cellText(got) + (got !== want ? '!' : '');
    }, title),
    mismatches.length === 0 ? `(${expected.cells.size} pairs as expected)` : `("!" = differs from expected; ${mismatches.length} of ${expected.cells.size} pairs)`,
    ...mismatches.filter((m) => m.detail).map((m) => `  ${m.from} -> ${m.to}: ${m.detail}`),
  ].join('\n');
  return { actual, expected: expectedText, pretty, mismatches };
}

/** All measured entries of one protocol as a table, for printing without an expectation. */
export function renderMatrix(entries: Reach[], proto: Proto, title = proto.toUpperCase()): string {
  const sel = entries.filter((e) => e.proto === proto);
  const rows = [...new Set(sel.map((e) => e.from))];
  const cols = [...new Set([...rows, ...sel.map((e) => e.to)])].filter((c) => sel.some((e) => e.to === c));
  const m = new Map(sel.map((e) => [key(e.from, e.to), e.ok]));
  return grid(rows, cols, (r, c) => cellText(m.get(key(r, c))), title);
}
