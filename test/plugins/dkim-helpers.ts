/**
 * Driving message transforms before core runs them (issue 13's wiring comes later): a built message
 * (the builder's whole RFC 5322 stream) is split into `{ headers, body }` the way the contract hands
 * it to transforms, the transforms run in plugin order, and the result is joined back into the bytes
 * that would go to the data stage. Streaming, like the real thing: only the header section is held.
 */
import { Readable } from 'node:stream';
import type { BuiltForTransform, Plugin, TransformContext } from '../../api.js';
import { buildMimeMessage } from '../../core/message/build.js';
import type { MailMessage, MessageBody } from '../../core/message/types.js';

const MAX_HEADER_SECTION = 1024 * 1024;
const BLANK_LINE = Buffer.from('\r\n\r\n', 'latin1');

function chunksOf(body: MessageBody): AsyncIterable<Buffer> {
  if (typeof body === 'string' || body instanceof Uint8Array) {
    return Readable.from([Buffer.from(body as string)], { objectMode: false });
  }
  return (async function* () {
    for await (const chunk of body as AsyncIterable<Buffer | Uint8Array | string>) yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
  })();
}

/** The header fields of a section (`a: b\r\n c\r\nd: e`): one string per field, folds kept. */
export function headerFields(section: string): string[] {
  const fields: string[] = [];
  for (const line of section.split('\r\n')) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && fields.length > 0) fields[fields.length - 1] += `\r\n${line}`;
    else if (line !== '') fields.push(line);
  }
  return fields;
}

/** A whole message → the transform shape. The body stream continues the same source. */
export async function splitMessage(message: MessageBody): Promise<BuiltForTransform> {
  const iterator = chunksOf(message)[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  for (;;) {
    const next = await iterator.next();
    if (next.done) {
      // No blank line: all header, empty body.
      return { headers: headerFields(head.toString('utf8').replace(/\r\n$/, '')), body: Readable.from([], { objectMode: false }) };
    }
    const from = Math.max(0, head.length - 3);
    head = Buffer.concat([head, next.value]);
    const end = head.indexOf(BLANK_LINE, from);
    if (end >= 0) {
      const rest = head.subarray(end + 4);
      const headers = headerFields(head.subarray(0, end).toString('utf8'));
      const body = Readable.from((async function* () {
        if (rest.length > 0) yield rest;
        for (let n = await iterator.next(); !n.done; n = await iterator.next()) yield n.value;
      })(), { objectMode: false });
      return { headers, body };
    }
    if (head.length > MAX_HEADER_SECTION) throw new Error('test helper: header section over 1 MiB');
  }
}

/** The transform shape → the message bytes, as a stream. */
export function joinMessage(built: BuiltForTransform): Readable {
  return Readable.from((async function* () {
    yield Buffer.from(`${built.headers.join('\r\n')}\r\n\r\n`, 'utf8');
    for await (const chunk of built.body) yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
  })(), { objectMode: false });
}

/** Runs every plugin's `built` transforms in plugin order. */
export async function runBuiltTransforms(plugins: readonly Plugin[], built: BuiltForTransform, ctx: TransformContext): Promise<BuiltForTransform> {
  let current = built;
  for (const plugin of plugins) {
    for (const transform of plugin.transforms ?? []) {
      if (transform.built) current = await transform.built(current, ctx);
    }
  }
  return current;
}

/** Runs every plugin's `message` transforms in plugin order. */
export async function runMessageTransforms(plugins: readonly Plugin[], message: MailMessage, ctx: TransformContext): Promise<MailMessage> {
  let current = message;
  for (const plugin of plugins) {
    for (const transform of plugin.transforms ?? []) {
      if (transform.message) current = await transform.message(current, ctx);
    }
  }
  return current;
}

export async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks);
}

export interface Transformed {
  readonly envelope: { readonly from: string; readonly to: readonly string[] };
  /** The message as it would go to the data stage. */
  readonly stream: Readable;
}

/**
 * What core will do on a send path: message transforms, the default builder, built transforms.
 * `ctx` extras (recipient, row, runId) are merged into the context with the built envelope.
 */
export async function transformMessage(plugins: readonly Plugin[], message: MailMessage, extra: Omit<TransformContext, 'envelope'> = {}): Promise<Transformed> {
  const preliminary = { envelope: { from: '', to: [] as string[] }, ...extra };
  const final = await runMessageTransforms(plugins, message, preliminary);
  const built = await buildMimeMessage(final, { hostname: 'mailstage.test' });
  const ctx: TransformContext = { ...extra, envelope: built.envelope };
  const transformed = await runBuiltTransforms(plugins, await splitMessage(built.body), ctx);
  return { envelope: built.envelope, stream: joinMessage(transformed) };
}

/**
 * A message signed with a fixed Ed25519 key and clock (Ed25519 signatures are deterministic), for
 * byte-exact checks of the DKIM-Signature field; test/interop/dkim.test.ts has dkimpy verify it.
 * A test key: it signs nothing but this.
 */
export const GOLDEN = {
  key: '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEID4iBtMO240r2k6ahRdMMqMqdg8m5et1WRD6UuS94ICW\n-----END PRIVATE KEY-----\n',
  dns: { 'ed2026._domainkey.example.com.': 'v=DKIM1; k=ed25519; p=I1eZaVXvNFmyq66Vw8t6SvwQeS78d1qlJb2eZJIr6rQ=' },
  now: 1_790_000_000_000,
  headers: [
    'From: Stagecoach <news@example.com>',
    'To: Bob <bob@example.org>',
    'Subject: Your weekly digest',
    'Date: Tue, 15 Sep 2026 08:00:00 +0000',
    'Message-ID: <golden@example.com>',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
  ],
  body: 'Hello Bob,\r\n\r\nthis  week in brief.\r\n',
  signature: [
    'DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.com;',
    ' s=ed2026; t=1790000000; h=from:to:subject:date:message-id:mime-version:',
    ' content-type:from; bh=QHOpjwqv/TFjduZinUEdxTiBuBgBlod3aFaE+xmYRGE=; b=lddWDD',
    ' xP5yEtVWij6bos1ekfa9CIsL+7LTsPaB45/UFkGg1Xb3utVj584l+F549YeffnTYgzpHxMu3W0FHY',
    ' UDQ==',
  ].join('\r\n'),
} as const;
