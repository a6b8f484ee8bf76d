/**
 * Unbounded rows (issue 12, attack 9): a 60 MB CSV cell, a 60 MB JSONL line and a 60 MB JSON array
 * element. Each stops reading with an error naming the line and `batch.source.maxRowBytes`, having
 * held no more than about the cap in memory; rows before it are read normally.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BatchInputError } from '../../runner/errors.js';
import { readRows, type SourceSpec } from '../../runner/source.js';
import { tempDir } from './helpers.js';

const HUGE = 60 * 1024 * 1024;

/** Writes `head`, then `size` bytes of 'x' in 1 MiB pieces, then `tail`: never 60 MB in memory. */
function writeHuge(file: string, head: string, size: number, tail: string): string {
  const fd = openSync(file, 'w');
  writeSync(fd, head);
  const block = Buffer.alloc(1024 * 1024, 'x');
  for (let left = size; left > 0; left -= block.length) writeSync(fd, block, 0, Math.min(left, block.length));
  writeSync(fd, tail);
  closeSync(fd);
  return file;
}

async function readAll(spec: SourceSpec): Promise<{ rows: number; error?: unknown; rssGrowthMb: number }> {
  global.gc?.();
  const before = process.memoryUsage().rss;
  let peak = before;
  let rows = 0;
  try {
    for await (const _ of readRows(spec)) {
      rows++;
      peak = Math.max(peak, process.memoryUsage().rss);
    }
  } catch (error) {
    peak = Math.max(peak, process.memoryUsage().rss);
    return { rows, error, rssGrowthMb: (peak - before) / 1048576 };
  }
  return { rows, rssGrowthMb: (peak - before) / 1048576 };
}

describe('row caps', () => {
  const cases: readonly (readonly [string, SourceSpec['format'], string, string, number])[] = [
    ['a 60 MB CSV cell', 'csv', 'email,note\na@example.test,ok\nb@example.test,', '\n', 3],
    ['a 60 MB JSONL line', 'jsonl', '{"email":"a@example.test"}\n{"email":"b@example.test","note":"', '"}\n', 2],
    ['a 60 MB JSON array element', 'json', '[{"email":"a@example.test"},\n{"email":"b@example.test","note":"', '"}]', 2],
  ];
  it.each(cases)('%s stops the run with an error naming the cap, memory bounded', async (_label, format, head, tail, line) => {
    const file = writeHuge(path.join(tempDir(), `rows.${format}`), head, HUGE, tail);
    const r = await readAll({ path: file, format });
    expect(r.rows).toBe(1); // the row before it was read
    expect(r.error).toBeInstanceOf(BatchInputError);
    expect((r.error as Error).message).toBe(
      `${file}: line ${line}: the row is larger than 1048576 bytes (batch.source.maxRowBytes); nothing after it was read`,
    );
    // The cap is 1 MiB; allow for the read buffers, the parser and the test's own noise.
    expect(r.rssGrowthMb).toBeLessThan(40);
  });

  it('a row under the cap is read; the cap is configurable', async () => {
    const file = writeHuge(path.join(tempDir(), 'rows.jsonl'), '{"email":"a@example.test","note":"', 2 * 1024 * 1024, '"}\n');
    await expect(readAll({ path: file, format: 'jsonl' })).resolves.toMatchObject({ rows: 0, error: expect.any(BatchInputError) });
    const r = await readAll({ path: file, format: 'jsonl', maxRowBytes: 3 * 1024 * 1024 });
    expect(r).toMatchObject({ rows: 1 });
    expect(r.error).toBeUndefined();
  });

  it('JSONL lines split across read chunks, CRLF and a last line without newline', async () => {
    const file = writeHuge(path.join(tempDir(), 'rows.jsonl'), '{"email":"a@example.test","pad":"', 100_000, '"}\r\n\r\n{"email":"b@example.test"}');
    const rows = [];
    for await (const row of readRows({ path: file, format: 'jsonl' })) rows.push({ index: row.index, line: row.line, email: row.data['email'] });
    expect(rows).toEqual([{ index: 1, line: 1, email: 'a@example.test' }, { index: 2, line: 3, email: 'b@example.test' }]);
  });
});
