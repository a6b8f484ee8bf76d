import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BatchInputError } from '../../runner/errors.js';
import { estimateRows, readRows, type SourceSpec } from '../../runner/source.js';
import { tempDir, writeCsv } from './helpers.js';

async function all(spec: SourceSpec): Promise<{ index: number; data: Record<string, unknown> }[]> {
  const out = [];
  for await (const r of readRows(spec)) out.push({ index: r.index, data: { ...r.data } });
  return out;
}

const expected = [
  { index: 1, data: { email: 'user1@example.test', name: 'User 1', n: '1' } },
  { index: 2, data: { email: 'user2@example.test', name: 'User 2', n: '2' } },
];

describe('sources', () => {
  for (const [label, delimiter, bom] of [['comma', ',', false], ['semicolon + BOM', ';', true], ['tab', '\t', false]] as const) {
    it(`CSV with ${label}: the delimiter is detected, the BOM dropped`, async () => {
      const file = writeCsv(path.join(tempDir(), 'rows.csv'), { rows: 2, delimiter, bom });
      expect(await all({ path: file, format: 'csv' })).toEqual(expected);
    });
  }

  it('CSV: quoted fields with delimiters, quotes and line breaks', async () => {
    const file = path.join(tempDir(), 'q.csv');
    writeFileSync(file, 'email,note\r\na@example.test,"one, two ""three""\nfour"\r\n');
    expect(await all({ path: file, format: 'csv' })).toEqual([{ index: 1, data: { email: 'a@example.test', note: 'one, two "three"\nfour' } }]);
  });

  it('CSV: a row with the wrong number of fields names the file and line', async () => {
    const file = path.join(tempDir(), 'bad.csv');
    writeFileSync(file, 'email,name\na@example.test,A\nb@example.test,B,extra\n');
    const err = await all({ path: file, format: 'csv' }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(BatchInputError);
    expect((err as Error).message).toMatch(/bad\.csv: .*line 3/);
  });

  it('JSON array, streamed element by element (nested values, strings with brackets)', async () => {
    const file = path.join(tempDir(), 'rows.json');
    writeFileSync(file, '\uFEFF[\n {"email":"user1@example.test","name":"User 1","n":"1"},\n {"email":"user2@example.test","name":"User 2","n":"2","x":{"a":["]}",{"b":"\\"{"}]}}\n]\n');
    const rows = await all({ path: file, format: 'json' });
    expect(rows[0]).toEqual(expected[0]);
    expect(rows[1]!.data['x']).toEqual({ a: [']}', { b: '"{' }] });
  });

  it('JSON: a non-object element and a truncated file are reported with a line', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'a.json'), '[{"email":"a@b.c"},\n 42]');
    await expect(all({ path: path.join(dir, 'a.json'), format: 'json' })).rejects.toThrow(/line 2: expected an object/);
    writeFileSync(path.join(dir, 'b.json'), '[{"email":"a@b.c"},\n {"email":');
    await expect(all({ path: path.join(dir, 'b.json'), format: 'json' })).rejects.toThrow(/unexpected end of file/);
  });

  it('JSONL, blank lines skipped; bad JSON names the line', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'rows.jsonl'), '{"email":"user1@example.test","name":"User 1","n":"1"}\n\n{"email":"user2@example.test","name":"User 2","n":"2"}\n');
    expect(await all({ path: path.join(dir, 'rows.jsonl'), format: 'jsonl' })).toEqual(expected);
    writeFileSync(path.join(dir, 'bad.jsonl'), '{"email":"a@b.c"}\n{"email":\n');
    await expect(all({ path: path.join(dir, 'bad.jsonl'), format: 'jsonl' })).rejects.toThrow(/bad\.jsonl: line 2: invalid JSON/);
  });

  it('estimates the row count for the progress bar', async () => {
    const file = writeCsv(path.join(tempDir(), 'rows.csv'), { rows: 1234 });
    expect(await estimateRows({ path: file, format: 'csv' })).toBe(1234);
  });
});
