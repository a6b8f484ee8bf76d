/**
 * The source stage: rows out of a CSV (header row; BOM; `,` `;` or tab), a JSON array or JSONL file,
 * one at a time. Everything is streamed — a million-row file is never held in memory — so rows are
 * numbered as they are read (1 = the first data row) and that number is the row's identity in the
 * journal, the report and its Message-ID.
 */
import { createReadStream, promises as fsp } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { parse } from 'csv-parse';
import type { SourceFormat } from '../core/config/index.js';
import { BatchInputError, oneLine } from './errors.js';

export interface SourceSpec {
  readonly path: string;
  readonly format: SourceFormat;
  readonly delimiter?: ',' | ';' | '\t';
  /** The largest row accepted (default `DEFAULT_MAX_ROW_BYTES`). */
  readonly maxRowBytes?: number;
}

/**
 * A row is data for one message, not a message: 1 MiB is far more than any real row, and small
 * enough that a hostile or broken source (one 60 MB cell, a JSONL file with no newlines) stops with
 * a clear error instead of growing the process by its size. `batch.source.maxRowBytes` raises it.
 */
export const DEFAULT_MAX_ROW_BYTES = 1024 * 1024;

function tooBig(path: string, line: number, max: number): BatchInputError {
  return new BatchInputError(
    `${path}: line ${line}: the row is larger than ${max} bytes (batch.source.maxRowBytes); nothing after it was read`,
  );
}

export interface Row {
  /** 1-based data row number (the CSV header is not a row). */
  readonly index: number;
  /** The source line the row starts on, for messages. */
  readonly line: number;
  readonly data: Readonly<Record<string, unknown>>;
}

/** Streams the rows of `spec.path` (already resolved against the config's folder). */
export async function* readRows(spec: SourceSpec): AsyncGenerator<Row> {
  await checkSource(spec);
  const max = spec.maxRowBytes ?? DEFAULT_MAX_ROW_BYTES;
  if (spec.format === 'csv') yield* csvRows(spec.path, spec.delimiter ?? (await sniffDelimiter(spec.path)), max);
  else if (spec.format === 'jsonl') yield* jsonlRows(spec.path, max);
  else yield* jsonArrayRows(spec.path, max);
}

/** Fails with a one-line `BatchInputError` when the source is missing or not a file. */
export async function checkSource(spec: SourceSpec): Promise<void> {
  const path = spec.path;
  try {
    const stat = await fsp.stat(path);
    if (!stat.isFile()) throw new BatchInputError(`source ${path} is not a file`);
  } catch (error) {
    if (error instanceof BatchInputError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new BatchInputError(code === 'ENOENT' ? `source file not found: ${path}` : `cannot read source ${path}: ${oneLine(error)}`);
  }
}

/** Picks the delimiter that occurs most often (outside quotes) in the header line. */
export async function sniffDelimiter(path: string): Promise<',' | ';' | '\t'> {
  const handle = await fsp.open(path, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(64 * 1024), 0, 64 * 1024, 0);
    const text = buffer.subarray(0, bytesRead).toString('utf8').replace(/^\uFEFF/, '');
    const counts = { ',': 0, ';': 0, '\t': 0 };
    let quoted = false;
    for (const c of text) {
      if (c === '"') quoted = !quoted;
      else if (!quoted && (c === '\n' || c === '\r')) break;
      else if (!quoted && (c === ',' || c === ';' || c === '\t')) counts[c]++;
    }
    const best = (Object.entries(counts) as [',' | ';' | '\t', number][]).sort((a, b) => b[1] - a[1])[0]!;
    return best[1] > 0 ? best[0] : ',';
  } finally {
    await handle.close();
  }
}

async function* csvRows(path: string, delimiter: string, maxRowBytes: number): AsyncGenerator<Row> {
  let index = 0;
  let lines = 1;
  const parser = createReadStream(path, { highWaterMark: 16 * 1024 }).pipe(
    parse({
      bom: true,
      columns: (header: string[]) => header.map((h) => h.trim()),
      delimiter,
      skip_empty_lines: true,
      // Counted in characters by csv-parse (a UTF-8 byte cap would be up to 4× tighter): the point is
      // a bound on memory, which this is.
      max_record_size: maxRowBytes,
      // Builds the Row from the parser's live context: cheaper than `info: true`, which copies the
      // whole info object for every record.
      on_record: (record: Record<string, string>, context: { lines: number }) => {
        lines = context.lines;
        return { index: ++index, line: context.lines, data: record };
      },
    }),
  );
  try {
    yield* parser as AsyncIterable<Row>;
  } catch (error) {
    if ((error as { code?: unknown }).code === 'CSV_MAX_RECORD_SIZE') throw tooBig(path, lines + 1, maxRowBytes);
    // csv-parse names the line (`… at line 7`); keep its text, prefix the file.
    throw new BatchInputError(`${path}: ${oneLine(error)}`, { cause: error });
  } finally {
    parser.destroy();
  }
}

/**
 * One object per line. Lines are split here rather than by readline, which would buffer a line of
 * any length: a line longer than `maxRowBytes` stops the run as soon as that many bytes are held.
 */
async function* jsonlRows(path: string, maxRowBytes: number): AsyncGenerator<Row> {
  const input = createReadStream(path);
  let held: Buffer[] = [];
  let heldBytes = 0;
  let line = 0;
  let index = 0;
  const take = (text: string): Row | undefined => {
    line++;
    const clean = (line === 1 ? text.replace(/^\uFEFF/, '') : text).replace(/\r$/, '');
    if (clean.trim() === '') return undefined;
    index++;
    return { index, line, data: parseObject(clean, path, line) };
  };
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      let start = 0;
      for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
        const piece = chunk.subarray(start, nl);
        if (heldBytes + piece.length > maxRowBytes) throw tooBig(path, line + 1, maxRowBytes);
        const text = heldBytes === 0 ? piece.toString('utf8') : Buffer.concat([...held, piece]).toString('utf8');
        held = [];
        heldBytes = 0;
        start = nl + 1;
        const row = take(text);
        if (row) yield row;
      }
      if (start < chunk.length) {
        const rest = chunk.subarray(start);
        heldBytes += rest.length;
        if (heldBytes > maxRowBytes) throw tooBig(path, line + 1, maxRowBytes);
        held.push(rest);
      }
    }
    if (heldBytes > 0) {
      const row = take(Buffer.concat(held).toString('utf8'));
      if (row) yield row;
    }
  } finally {
    input.destroy();
  }
}

function parseObject(text: string, path: string, line: number): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new BatchInputError(`${path}: line ${line}: invalid JSON: ${oneLine(error)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BatchInputError(`${path}: line ${line}: expected an object, got ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`);
  }
  return value as Record<string, unknown>;
}

/**
 * A JSON array streamed element by element: a small scanner finds where each top-level element
 * ends (tracking strings, escapes and nesting) and hands that slice to JSON.parse. Memory is one
 * element plus one read chunk.
 */
async function* jsonArrayRows(path: string, maxRowBytes: number): AsyncGenerator<Row> {
  const input = createReadStream(path);
  const decoder = new StringDecoder('utf8');
  let state: 'start' | 'between' | 'element' | 'end' = 'start';
  let depth = 0;
  let inString = false;
  let escaped = false;
  let element = '';
  let elementLine = 1;
  let line = 1;
  let index = 0;
  let first = true;
  const fail = (message: string): never => {
    throw new BatchInputError(`${path}: line ${line}: ${message}`);
  };
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      let text = decoder.write(chunk);
      if (first) {
        text = text.replace(/^\uFEFF/, '');
        first = false;
      }
      let start = 0; // where the element's text begins within `text`, while in 'element'
      for (let i = 0; i < text.length; i++) {
        const c = text[i]!;
        if (c === '\n') line++;
        if (state === 'element') {
          if (inString) {
            if (escaped) escaped = false;
            else if (c === '\\') escaped = true;
            else if (c === '"') inString = false;
            continue;
          }
          if (c === '"') inString = true;
          else if (c === '{' || c === '[') depth++;
          else if (c === '}' || c === ']') {
            depth--;
            if (depth === 0) {
              element += text.slice(start, i + 1);
              index++;
              yield { index, line: elementLine, data: parseObject(element, path, elementLine) };
              element = '';
              state = 'between';
            }
          } else if (depth === 0) fail('expected an object as array element');
          continue;
        }
        if (c === ' ' || c === '\t' || c === '\r' || c === '\n') continue;
        if (state === 'start') {
          if (c !== '[') fail('expected a JSON array of objects (use .jsonl for one object per line)');
          state = 'between';
        } else if (state === 'between') {
          if (c === ',') continue;
          if (c === ']') state = 'end';
          else if (c === '{') {
            state = 'element';
            depth = 1;
            start = i;
            elementLine = line;
          } else fail(`expected an object as array element, found ${JSON.stringify(c)}`);
        } else if (state === 'end') fail('unexpected content after the closing ]');
      }
      if (state === 'element') {
        element += text.slice(start);
        // Characters, not bytes (as for CSV): a bound on what one element may hold in memory.
        if (element.length > maxRowBytes) throw tooBig(path, elementLine, maxRowBytes);
      }
    }
    const ended: string = state; // (TS narrows `state` wrongly across the generator's loop)
    if (ended !== 'end') fail(ended === 'start' ? 'empty file, expected a JSON array' : 'unexpected end of file inside the array');
  } finally {
    input.destroy();
  }
}

/**
 * A cheap estimate of the row count for the progress bar's ETA: newlines for CSV (minus the header)
 * and JSONL; undefined for a JSON array (no line structure to count). Quoted line breaks in CSV
 * make it an over-estimate, which only shows as a bar that finishes early.
 */
export async function estimateRows(spec: SourceSpec): Promise<number | undefined> {
  if (spec.format === 'json') return undefined;
  let lines = 0;
  let last = 10;
  try {
    for await (const chunk of createReadStream(spec.path) as AsyncIterable<Buffer>) {
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
      last = chunk[chunk.length - 1] ?? last;
    }
  } catch {
    return undefined;
  }
  if (last !== 10) lines++;
  return Math.max(0, spec.format === 'csv' ? lines - 1 : lines);
}
