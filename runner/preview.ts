/**
 * Dry-run previews: the first N rows built exactly as they would be sent (the same MIME builder,
 * the same Message-ID) and written as `.eml` files a mail client can open.
 */
import { createWriteStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { buildMessage, defaultMessageBuilders } from '../core/message/index.js';
import type { MessageBuilder } from '../core/plugin.js';
import type { RenderedRow } from './render.js';

/** Empties the folder of earlier previews (only ours: `row-*.eml`), creating it if needed. */
export async function preparePreviewDir(dir: string): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  for (const name of await fsp.readdir(dir)) {
    if (/^row-\d+\.eml$/.test(name)) await fsp.rm(path.join(dir, name), { force: true });
  }
}

export async function writePreview(
  dir: string,
  rendered: RenderedRow,
  builders: readonly MessageBuilder[] = defaultMessageBuilders(),
): Promise<string> {
  const built = await buildMessage(rendered.message, builders, { hostname: 'localhost' });
  const file = path.join(dir, `row-${String(rendered.row.index).padStart(6, '0')}.eml`);
  const body = built.body;
  const source = typeof body === 'string' || body instanceof Uint8Array ? Readable.from([body]) : Readable.from(body as AsyncIterable<unknown>);
  await pipeline(source, createWriteStream(file));
  return file;
}
