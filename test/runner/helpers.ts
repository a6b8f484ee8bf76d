/** Shared bits of the runner tests: temp folders, generated sources, a config for a batch. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveConfig, type ResolvedConfig } from '../../core/config/index.js';

export function tempDir(prefix = 'mailstage-runner-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface CsvOptions {
  readonly rows: number;
  readonly delimiter?: string;
  readonly bom?: boolean;
}

/** rows: email=user<n>@example.test, name=User <n>, n=<n>. */
export function writeCsv(file: string, options: CsvOptions): string {
  const d = options.delimiter ?? ',';
  const lines = [['email', 'name', 'n'].join(d)];
  for (let n = 1; n <= options.rows; n++) lines.push([`user${n}@example.test`, `User ${n}`, String(n)].join(d));
  writeFileSync(file, `${options.bom ? '\uFEFF' : ''}${lines.join('\r\n')}\r\n`);
  return file;
}

export function batchConfig(dir: string, overrides: { readonly transport?: Record<string, unknown>; readonly batch?: Record<string, unknown> } = {}): ResolvedConfig {
  return resolveConfig({
    transport: { host: '127.0.0.1', port: 1, tls: 'none', ...overrides.transport },
    message: { from: 'Sender <sender@example.test>' },
    batch: {
      source: path.join(dir, 'rows.csv'),
      templates: { subject: 'Hello {{name}}', text: 'Row {{n}} for {{name}} <{{email}}>' },
      to: 'email',
      journalDir: path.join(dir, 'runs'),
      previewDir: path.join(dir, 'preview'),
      previewCount: 3,
      ...overrides.batch,
    },
  }).config;
}

/** Header value of a raw message (unfolded), for quick checks without a full parse. */
export function header(raw: string, name: string): string | undefined {
  const head = raw.slice(0, raw.indexOf('\r\n\r\n'));
  return new RegExp(`^${name}:[ \\t]*(.*(?:\\r\\n[ \\t].*)*)`, 'im').exec(head)?.[1]?.replace(/\r\n[ \t]+/g, ' ');
}
