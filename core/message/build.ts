/**
 * The default message builder: a nodemailer-style object → an RFC 5322 message. mimetext lays out
 * the MIME tree (see skeleton.ts); the header block, part headers and body encodings are written
 * here because mimetext's are wrong (DESIGN.md lists its defects). Attachments given by `path` or
 * as a Readable are streamed into the body, so a 50 MB file never sits in memory.
 */
import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import type Libmime from 'libmime';
import { lazyRequire } from '../lazy.js';
import { SmtpInvalidInputError } from '../errors.js';
import type { BuildContext, MessageBuilder } from '../plugin.js';
import {
  addressListTokens, assertNoControl, needsSmtpUtf8, parseAddressList, type ParsedAddress,
} from './address.js';
import {
  base64Size, base64Stream, chooseTextEncoding, encodeBody, fileChunks, normaliseLineEnds, readContent,
  type PartBody, type TransferEncoding,
} from './body.js';
import { envelopeFromMessage } from './envelope.js';
import {
  assertHeaderName, assertPreparedValue, CRLF, foldHeader, formatDate, joinParams, legacyParamTokens,
  paramTokens, unstructuredTokens,
} from './headers.js';
import { mimeSkeleton, type PartRole } from './skeleton.js';
import type { Attachment, BuiltMessage, MailMessage, MessageBody } from './types.js';

const libmime = lazyRequire<typeof Libmime>('libmime');

/** One MIME leaf: its header lines (folded, without the blank line) and its encoded body. */
interface Part {
  readonly role: PartRole;
  readonly headers: readonly string[];
  readonly body: PartBody;
}

export function mimeBuilder(): MessageBuilder {
  return {
    name: 'mime',
    matches: (message) => message.raw === undefined || message.raw === null,
    build: buildMimeMessage,
  };
}

export async function buildMimeMessage(message: MailMessage, ctx: BuildContext): Promise<BuiltMessage> {
  const envelope = envelopeFromMessage(message);
  const header = topHeaders(message, ctx);
  const parts = [...(await textParts(message)), ...(await attachmentParts(message))];
  const skeleton = await mimeSkeleton(parts.map((p) => p.role));

  const head = skeleton.contentType === undefined
    ? [...header.lines, 'MIME-Version: 1.0', ...parts[0].headers]
    : [...header.lines, 'MIME-Version: 1.0', foldHeader('Content-Type', skeleton.contentType.split(' '))];
  const pieces: (Buffer | PartBody)[] = [Buffer.from(head.join(CRLF) + CRLF + CRLF, 'utf8')];
  for (const piece of skeleton.pieces) {
    if (typeof piece === 'string') {
      pieces.push(Buffer.from(piece, 'utf8'));
    } else if (skeleton.contentType === undefined) {
      pieces.push(parts[piece].body); // single part: its headers are already in the top block
    } else {
      pieces.push(Buffer.from(parts[piece].headers.join(CRLF) + CRLF + CRLF, 'utf8'), parts[piece].body);
    }
  }
  // A message ends with a line end (RFC 5321 §4.1.1.4); multipart ones already do.
  const only = parts[0].body;
  if (skeleton.contentType === undefined && !(only.kind === 'bytes' && only.data.subarray(-2).toString() === CRLF)) {
    pieces.push(Buffer.from(CRLF, 'ascii'));
  }

  const smtpUtf8 = header.smtpUtf8 || needsSmtpUtf8(envelope.from) || envelope.to.some(needsSmtpUtf8);
  return {
    envelope,
    messageId: header.messageId,
    ...assembleBody(pieces),
    needsSmtpUtf8: smtpUtf8,
    // Bodies are always 7-bit encoded; only UTF-8 addresses (RFC 6532) put 8-bit octets in headers.
    eightBit: smtpUtf8,
  };
}

// ---- the header block ---------------------------------------------------------------------------

/** Fields the builder owns: a custom header may not replace them (it would break the MIME tree). */
const PROTECTED = new Set(['content-type', 'content-transfer-encoding', 'mime-version']);
/** Never written: blind copies exist only in the envelope. */
const BLIND = new Set(['bcc', 'resent-bcc']);
const ADDRESS_HEADERS = new Set(['from', 'sender', 'to', 'cc', 'bcc', 'reply-to', 'resent-from', 'resent-sender', 'resent-to', 'resent-cc', 'resent-bcc']);

interface HeaderBlock {
  readonly lines: readonly string[];
  readonly messageId: string;
  readonly smtpUtf8: boolean;
}

function topHeaders(message: MailMessage, ctx: BuildContext): HeaderBlock {
  const custom = customHeaders(message);
  const overridden = new Set(custom.map((h) => h.key));
  const lines: string[] = [];
  let smtpUtf8 = custom.some((h) => h.smtpUtf8);
  const add = (name: string, tokens: readonly string[] | undefined): void => {
    if (tokens !== undefined && !overridden.has(name.toLowerCase())) lines.push(foldHeader(name, tokens));
  };
  const addresses = (name: string, field: string, value: MailMessage['to']): void => {
    const list = parseAddressList(value, field);
    if (list.length === 0) return;
    smtpUtf8 ||= list.some((a) => needsSmtpUtf8(a.address));
    add(name, addressListTokens(list));
  };

  addresses('From', 'from', message.from);
  addresses('Sender', 'sender', message.sender);
  addresses('Reply-To', 'replyTo', message.replyTo);
  addresses('To', 'to', message.to);
  addresses('Cc', 'cc', message.cc);
  // Parse Bcc anyway: a malformed Bcc must fail here, not silently vanish.
  parseAddressList(message.bcc, 'bcc');
  if (message.subject !== undefined && message.subject !== null) {
    const subject = String(message.subject);
    assertNoControl('subject', subject);
    add('Subject', unstructuredTokens('Subject', subject));
  }
  const messageId = messageIdOf(message, ctx);
  add('Message-ID', [messageId]);
  add('Date', formatDate(dateOf(message)).split(' '));
  if (message.inReplyTo) add('In-Reply-To', [angleId('inReplyTo', String(message.inReplyTo))]);
  if (message.references) add('References', referenceIds(message.references));
  for (const [name, value] of priorityHeaders(message.priority)) add(name, value.split(' '));
  for (const [name, tokens] of listHeaders(message.list)) add(name, tokens);
  lines.push(...custom.filter((h) => !BLIND.has(h.key)).map((h) => h.line));
  return { lines, messageId: overriddenMessageId(custom) ?? messageId, smtpUtf8 };
}

function messageIdOf(message: MailMessage, ctx: BuildContext): string {
  if (message.messageId) return angleId('messageId', String(message.messageId));
  assertNoControl('hostname', ctx.hostname);
  if (!/^[^\s<>@]+$/.test(ctx.hostname)) throw new SmtpInvalidInputError('hostname', `not usable in a Message-ID: ${ctx.hostname}`);
  return `<${randomUUID()}@${ctx.hostname}>`;
}

function overriddenMessageId(custom: readonly CustomHeader[]): string | undefined {
  return custom.find((h) => h.key === 'message-id')?.value.trim();
}

/** `id@host` or `<id@host>` → `<id@host>`, refusing anything that could leave the brackets. */
function angleId(field: string, id: string): string {
  assertNoControl(field, id);
  const bare = id.trim().replace(/^<(.*)>$/, '$1');
  if (bare === '' || /[\s<>]/.test(bare)) throw new SmtpInvalidInputError(field, `not a message id: ${JSON.stringify(id)}`);
  return `<${bare}>`;
}

function referenceIds(references: string | readonly string[]): readonly string[] {
  const list = typeof references === 'string' ? [references] : references;
  return list.flatMap((r) => {
    assertNoControl('references', String(r));
    return String(r).split(/[\s,]+/).filter((x) => x !== '').map((x) => angleId('references', x));
  });
}

function dateOf(message: MailMessage): Date {
  if (message.date === undefined || message.date === null) return new Date();
  const date = message.date instanceof Date ? message.date : new Date(String(message.date));
  if (Number.isNaN(date.getTime())) throw new SmtpInvalidInputError('date', `not a date: ${String(message.date)}`);
  return date;
}

/** What nodemailer writes for `priority` (Outlook reads X-MSMail-Priority and Importance). */
function priorityHeaders(priority: MailMessage['priority']): readonly (readonly [string, string])[] {
  if (priority === 'high') return [['X-Priority', '1 (Highest)'], ['X-MSMail-Priority', 'High'], ['Importance', 'High']];
  if (priority === 'low') return [['X-Priority', '5 (Lowest)'], ['X-MSMail-Priority', 'Low'], ['Importance', 'Low']];
  if (priority === undefined || priority === 'normal') return [];
  throw new SmtpInvalidInputError('priority', `expected high, normal or low, got ${JSON.stringify(priority)}`);
}

/**
 * nodemailer's `list` option: `{ help: 'admin@x?subject=help', unsubscribe: [{ url, comment }, …],
 * id: { url: 'list.x', comment: 'My list' } }` → List-Help: <mailto:…>, List-ID: "My list" <list.x>.
 */
function listHeaders(list: MailMessage['list']): readonly (readonly [string, readonly string[]])[] {
  if (!list) return [];
  return Object.entries(list).map(([key, raw]) => {
    const field = `list.${key}`;
    const lower = key.replace(/([a-z])([A-Z])/g, '$1-$2').toLowerCase();
    const name = lower === 'id' ? 'List-ID' : `List-${lower.split('-').map((w) => w[0].toUpperCase() + w.slice(1)).join('-')}`;
    const items = (Array.isArray(raw) ? raw : [raw]).map((item: unknown) =>
      typeof item === 'object' && item !== null
        ? { url: String((item as { url?: unknown }).url ?? ''), comment: (item as { comment?: unknown }).comment }
        : { url: String(item), comment: undefined });
    for (const item of items) {
      assertNoControl(field, item.url);
      if (item.comment !== undefined) assertNoControl(field, String(item.comment));
    }
    if (name === 'List-Unsubscribe-Post') return [name, items.map((i) => i.url)] as const;
    const tokens = items.flatMap((item, i) => {
      const url = name === 'List-ID' || /^[a-z][a-z0-9+.-]*:/i.test(item.url) ? item.url : `mailto:${item.url}`;
      const comment = item.comment === undefined ? [] : unstructuredTokens(name, String(item.comment));
      const one = name === 'List-ID'
        ? [...(comment.length > 0 && /^[\x20-\x7e]*$/.test(String(item.comment)) ? [`"${String(item.comment).replace(/([\\"])/g, '\\$1')}"`] : comment), `<${url}>`]
        : [`<${url}>`, ...(comment.length > 0 ? [`(${comment.join(' ').replace(/([()\\])/g, '\\$1')})`] : [])];
      return i < items.length - 1 ? [...one.slice(0, -1), `${one[one.length - 1]},`] : one;
    });
    return [name, tokens] as const;
  });
}

interface CustomHeader {
  readonly key: string;
  readonly value: string;
  readonly line: string;
  readonly smtpUtf8: boolean;
}

/** `headers: { 'X-A': 'v', 'X-B': ['1', '2'], 'X-C': { prepared: true, value } }` → folded lines. */
function customHeaders(message: MailMessage): readonly CustomHeader[] {
  return Object.entries(message.headers ?? {}).flatMap(([name, raw]) => {
    const field = `headers.${name}`;
    assertHeaderName(field, name);
    const key = name.toLowerCase();
    if (PROTECTED.has(key)) throw new SmtpInvalidInputError(field, 'set by the builder; it cannot be given as a custom header');
    const values = Array.isArray(raw) ? (raw as readonly unknown[]) : [raw];
    return values.map((v): CustomHeader => {
      if (typeof v === 'object' && v !== null && 'value' in v) {
        const value = String((v as { value: unknown }).value);
        if ((v as { prepared?: boolean }).prepared) {
          assertPreparedValue(field, name, value);
          return { key, value, line: `${name}: ${value}`, smtpUtf8: /[^\x00-\x7f]/.test(value) };
        }
        return customHeader(field, name, key, value);
      }
      return customHeader(field, name, key, String(v));
    });
  });
}

function customHeader(field: string, name: string, key: string, value: string): CustomHeader {
  assertNoControl(field, value);
  if (ADDRESS_HEADERS.has(key)) {
    const list: readonly ParsedAddress[] = parseAddressList(value, field);
    return { key, value, line: foldHeader(name, addressListTokens(list)), smtpUtf8: list.some((a) => needsSmtpUtf8(a.address)) };
  }
  return { key, value, line: foldHeader(name, unstructuredTokens(name, value)), smtpUtf8: false };
}

// ---- parts --------------------------------------------------------------------------------------

async function textParts(message: MailMessage): Promise<readonly Part[]> {
  const parts: Part[] = [];
  for (const [key, subtype] of [['text', 'plain'], ['html', 'html']] as const) {
    const content = message[key];
    if (content === undefined || content === null) continue;
    const data = normaliseLineEnds(await readContent(key, content));
    const encoding: TransferEncoding = message.textEncoding ?? chooseTextEncoding(data);
    if (encoding !== '7bit' && encoding !== 'quoted-printable' && encoding !== 'base64') {
      throw new SmtpInvalidInputError('textEncoding', `expected quoted-printable or base64, got ${JSON.stringify(encoding)}`);
    }
    parts.push({
      role: key,
      headers: [`Content-Type: text/${subtype}; charset=utf-8`, `Content-Transfer-Encoding: ${encoding}`],
      body: { kind: 'bytes', data: encodeBody(data, encoding) },
    });
  }
  // mimetext needs a text body, and a message of attachments alone still reads better with one.
  if (parts.length === 0) {
    parts.push({ role: 'text', headers: ['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 7bit'], body: { kind: 'bytes', data: Buffer.alloc(0) } });
  }
  return parts;
}

async function attachmentParts(message: MailMessage): Promise<readonly Part[]> {
  const hasHtml = message.html !== undefined && message.html !== null;
  const parts: Part[] = [];
  for (const [i, attachment] of (message.attachments ?? []).entries()) {
    parts.push(await attachmentPart(attachment, `attachments[${i}]`, hasHtml));
  }
  return parts;
}

const MIME_TYPE = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+\/[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

async function attachmentPart(a: Attachment, field: string, hasHtml: boolean): Promise<Part> {
  if (a.raw !== undefined || a.href !== undefined) {
    throw new SmtpInvalidInputError(`${field}.${a.raw !== undefined ? 'raw' : 'href'}`, 'not supported: give content or path');
  }
  const filename = a.filename === false ? undefined : a.filename ?? (a.path ? basename(a.path) : undefined);
  if (filename !== undefined) assertNoControl(`${field}.filename`, filename);
  const contentType = a.contentType ?? (filename ? libmime().detectMimeType(filename) : 'application/octet-stream');
  assertNoControl(`${field}.contentType`, contentType);
  const [mimeType, ...typeParams] = contentType.split(';').map((s) => s.trim());
  if (!MIME_TYPE.test(mimeType)) throw new SmtpInvalidInputError(`${field}.contentType`, `not a MIME type: ${JSON.stringify(contentType)}`);
  if (a.cid !== undefined) {
    assertNoControl(`${field}.cid`, a.cid);
    if (/[\s<>]/.test(a.cid.replace(/^<(.*)>$/, '$1'))) throw new SmtpInvalidInputError(`${field}.cid`, `not a content id: ${JSON.stringify(a.cid)}`);
  }
  // nodemailer's rule: cid images sit next to the html (multipart/related) and display inline.
  const inline = a.cid !== undefined && hasHtml;
  const disposition = a.contentDisposition ?? (a.cid !== undefined ? 'inline' : 'attachment');
  if (disposition !== 'inline' && disposition !== 'attachment') {
    throw new SmtpInvalidInputError(`${field}.contentDisposition`, `expected inline or attachment, got ${JSON.stringify(disposition)}`);
  }

  const headers = [
    foldHeader('Content-Type', joinParams(mimeType, [...typeParams.map((p) => [p]), ...(filename ? [legacyParamTokens('name', filename)] : [])])),
    'Content-Transfer-Encoding: base64',
    foldHeader('Content-Disposition', joinParams(disposition, filename ? [paramTokens('filename', filename)] : [])),
    ...(a.cid !== undefined ? [`Content-ID: <${a.cid.replace(/^<(.*)>$/, '$1')}>`] : []),
    ...attachmentHeaders(a, field),
  ];
  return { role: inline ? 'inline' : 'attachment', headers, body: await attachmentBody(a, field) };
}

function attachmentHeaders(a: Attachment, field: string): readonly string[] {
  return Object.entries(a.headers ?? {}).flatMap(([name, raw]) => {
    const f = `${field}.headers.${name}`;
    assertHeaderName(f, name);
    if (PROTECTED.has(name.toLowerCase()) || /^content-(disposition|id)$/i.test(name)) {
      throw new SmtpInvalidInputError(f, 'set by the builder; use the attachment fields instead');
    }
    return (Array.isArray(raw) ? raw : [raw]).map((v: unknown) => {
      assertNoControl(f, String(v));
      return foldHeader(name, unstructuredTokens(name, String(v)));
    });
  });
}

async function attachmentBody(a: Attachment, field: string): Promise<PartBody> {
  const content = a.content;
  if (typeof content === 'string') {
    return { kind: 'bytes', data: encodeBody(Buffer.from(content, (a.encoding ?? 'utf8') as BufferEncoding), 'base64') };
  }
  if (Buffer.isBuffer(content) || content instanceof Uint8Array) {
    return { kind: 'bytes', data: encodeBody(Buffer.from(content), 'base64') };
  }
  if (content instanceof Readable) {
    // One-shot: a stream cannot be read twice, so this body cannot be replayed on retry.
    return { kind: 'stream', open: () => base64Stream(content) };
  }
  if (content !== undefined) throw new SmtpInvalidInputError(`${field}.content`, 'expected a string, Buffer or Readable');
  if (typeof a.path !== 'string') throw new SmtpInvalidInputError(field, 'needs content or path');
  const path = a.path;
  if (/^[a-z][a-z0-9+.-]+:\/\//i.test(path)) throw new SmtpInvalidInputError(`${field}.path`, 'URLs are not fetched; give a file path');
  let size: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new Error('not a regular file');
    size = info.size;
  } catch (error) {
    throw new SmtpInvalidInputError(`${field}.path`, `cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  return { kind: 'stream', open: () => base64Stream(fileChunks(path, size)), size: base64Size(size) };
}

// ---- assembly -----------------------------------------------------------------------------------

/**
 * All in memory → one Buffer with its size. Otherwise a re-iterable AsyncIterable that opens each
 * streamed part when reached (files are reopened on every iteration, so a retry can resend).
 */
function assembleBody(pieces: readonly (Buffer | PartBody)[]): { body: MessageBody; size?: number } {
  const buffers = pieces.map((p) => (Buffer.isBuffer(p) ? p : p.kind === 'bytes' ? p.data : undefined));
  if (buffers.every((b) => b !== undefined)) {
    const body = Buffer.concat(buffers as Buffer[]);
    return { body, size: body.length };
  }
  const sizes = pieces.map((p) => (Buffer.isBuffer(p) ? p.length : p.kind === 'bytes' ? p.data.length : p.size));
  const size = sizes.every((s) => s !== undefined) ? (sizes as number[]).reduce((a, b) => a + b, 0) : undefined;
  const body: AsyncIterable<Buffer> = {
    async *[Symbol.asyncIterator]() {
      for (const piece of pieces) {
        if (Buffer.isBuffer(piece)) yield piece;
        else if (piece.kind === 'bytes') yield piece.data;
        else yield* piece.open();
      }
    },
  };
  return size === undefined ? { body } : { body, size };
}
