/** The benchmark's messages: deterministic, built once, identical for both clients. */
import { mkdirSync, writeFileSync, existsSync, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';

const WORDS = ['lorem', 'ipsum', 'dolor', 'sit', 'amet', 'consectetur', 'adipiscing', 'elit', 'sed', 'do', 'eiusmod', 'tempor'];

function rng(seed = 0x9e3779b9): () => number {
  return () => {
    seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
    return (seed >>> 0) / 0x100000000;
  };
}

/** A raw RFC 5322 message of exactly `size` bytes, CRLF line ends, ~76-byte body lines. */
export function rawMessage(size: number): Buffer {
  const head = 'From: Bench <bench@example.org>\r\nTo: Sink <sink@example.net>\r\nSubject: mailstage benchmark message\r\n'
    + 'Message-ID: <bench@example.org>\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\nMIME-Version: 1.0\r\n'
    + 'Content-Type: text/plain; charset=us-ascii\r\n\r\n';
  const r = rng();
  let body = '';
  let line = '';
  while (head.length + body.length < size) {
    line += WORDS[Math.floor(r() * WORDS.length)] + ' ';
    if (line.length > 70) { body += `${line.trimEnd()}\r\n`; line = ''; }
  }
  const text = (head + body).slice(0, size - 2) + '\r\n';
  return Buffer.from(text, 'latin1');
}

/** 8 MiB of ~78-byte text lines, one in three starting with '.', cut in 64 KiB chunks. */
let dottedPool: Buffer[] | undefined;
function pool(): Buffer[] {
  if (dottedPool) return dottedPool;
  const r = rng(12345);
  const parts: string[] = [];
  let size = 0;
  for (let n = 0; size < 8 * 1024 * 1024; n++) {
    let line = n % 3 === 0 ? '.' : '';
    const target = 70 + Math.floor(r() * 12);
    while (line.length < target) line += WORDS[Math.floor(r() * WORDS.length)] + ' ';
    line = `${line.slice(0, target)}\r\n`;
    parts.push(line);
    size += line.length;
  }
  const all = Buffer.from(parts.join(''), 'latin1');
  dottedPool = [];
  for (let i = 0; i + 65536 <= all.length; i += 65536) dottedPool.push(all.subarray(i, i + 65536));
  return dottedPool;
}

const HEAD = Buffer.from('From: bench@example.org\r\nTo: sink@example.net\r\nSubject: big body\r\n\r\n', 'latin1');

/** A `total`-byte message body (headers then dotted text) as 64 KiB chunks from a fixed pool. */
export function* dottedChunks(total: number): Generator<Buffer> {
  const p = pool();
  if (total <= 0) return;
  yield HEAD;
  let left = total - HEAD.length;
  for (let i = 0; left > 0; i++) {
    const c = p[i % p.length]!;
    const out = left >= c.length ? c : c.subarray(0, left);
    left -= out.length;
    yield out;
  }
}

/** Writes a `total`-byte dotted file once (scenario 6). */
export async function ensureBigFile(file: string, total: number): Promise<void> {
  if (existsSync(file)) return;
  const tmp = `${file}.part`;
  const ws = createWriteStream(tmp);
  for (const c of dottedChunks(total)) if (!ws.write(c)) await once(ws, 'drain');
  ws.end();
  await once(ws, 'finish');
  (await import('node:fs')).renameSync(tmp, file);
}

/** A small binary attachment (2 KiB). */
export function attachment(): Buffer {
  const r = rng(777);
  return Buffer.from(Array.from({ length: 2048 }, () => Math.floor(r() * 256)));
}

const TEXT = 'Hello {{name}},\n\nThis is message number {{n}} of the benchmark. ' + WORDS.join(' ').repeat(4) + '\n\n-- \nmailstage bench\n';

/** Scenario 3's composed message: text + html + a small attachment. */
export function composed(i: number, att: Buffer): Record<string, unknown> {
  const text = TEXT.replace('{{name}}', `User ${i}`).replace('{{n}}', String(i));
  return {
    from: 'Bench <bench@example.org>',
    to: `User ${i} <user${i}@example.net>`,
    subject: `Composed message ${i}`,
    text,
    html: `<p>${text.replace(/\n/g, '<br>')}</p>`,
    attachments: [{ filename: 'data.bin', content: att, contentType: 'application/octet-stream' }],
  };
}

export interface TemplatedRun {
  readonly csv: string;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
  readonly journalDir: string;
}

/** Scenario 4's inputs: a CSV of `rows` rows (name, email, n, city) and three templates. */
export function templatedBatchSetup(dir: string, rows: number): TemplatedRun {
  mkdirSync(dir, { recursive: true });
  const csv = join(dir, `rows-${rows}.csv`);
  if (!existsSync(csv)) {
    const lines = ['name,email,n,city'];
    for (let i = 0; i < rows; i++) lines.push(`User ${i},user${i}@example.net,${i},City ${i % 97}`);
    writeFileSync(csv, `${lines.join('\n')}\n`);
  }
  const journalDir = join(dir, `journal-${process.pid}-${Date.now()}`);
  mkdirSync(journalDir, { recursive: true });
  return {
    csv,
    subject: 'Hello {{name}}, your update #{{n}}',
    text: 'Dear {{name}},\n\nThis is update number {{n}} for {{city}}. ' + WORDS.join(' ').repeat(4) + '\n\nRegards,\nmailstage bench\n',
    html: '<html><body><p>Dear <b>{{name}}</b>,</p><p>This is update number {{n}} for {{city}}.</p><p>' + WORDS.join(' ').repeat(4) + '</p></body></html>',
    journalDir,
  };
}
