/**
 * One message opened in the inbox: its text, HTML, every header and its attachments, parsed from
 * the `.eml` file by mailparser's streaming parser. Attachments are never buffered: their bytes
 * are counted on the way past for the list, and a download streams just the one asked for.
 */
import { createReadStream } from 'node:fs';
import { finished } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { AttachmentStream, HeaderLines, MailParser as MailParserType, MessageText } from 'mailparser';
import { decodeWords } from './headers.js';
import type { MessageSummary } from './summary.js';

/** `GET /api/messages/:id` (API.md, "The dev inbox"). */
export interface MessageDetail {
  readonly id: string;
  readonly from: string;
  readonly to: readonly string[];
  readonly subject: string;
  readonly date: string;
  /** The plain-text body (mailparser derives one from the HTML when there is none); null if none. */
  readonly text: string | null;
  /** The HTML body as the message has it (unsanitised: the inbox only shows it sandboxed); null if none. */
  readonly html: string | null;
  /** Every header field in message order: name as written, value unfolded and decoded. */
  readonly headers: readonly { readonly name: string; readonly value: string }[];
  readonly attachments: readonly AttachmentInfo[];
}

export interface AttachmentInfo {
  /** As the message names it; null when it names none. */
  readonly filename: string | null;
  readonly contentType: string;
  /** Decoded bytes. */
  readonly size: number;
}

/** What the server needs besides the public shape: which part a `cid:` link means. */
export interface ParsedMessage {
  readonly detail: MessageDetail;
  /** Content-ID (without brackets) → index into `detail.attachments`. */
  readonly cids: ReadonlyMap<string, number>;
}

/** An HTML part longer than this is not turned into text (mailparser's converter is slow on it). */
const MAX_HTML_TO_TEXT = 2_000_000;

let MailParserClass: Promise<typeof MailParserType> | undefined;

async function newParser(): Promise<MailParserType> {
  const MailParser = await (MailParserClass ??= import('mailparser').then((m) => m.MailParser));
  return new MailParser({ skipImageLinks: true, checksumAlgo: false, maxHtmlLengthToParse: MAX_HTML_TO_TEXT });
}

export async function parseMessage(file: string, summary: MessageSummary): Promise<ParsedMessage> {
  const parser = await newParser();
  const attachments: AttachmentInfo[] = [];
  const cids = new Map<string, number>();
  let headerLines: HeaderLines = [];
  let body: MessageText | undefined;
  parser.on('headerLines', (lines: HeaderLines) => (headerLines = lines));
  parser.on('data', (data: AttachmentStream | MessageText) => {
    if (data.type === 'text') {
      body = data;
      return;
    }
    const index = attachments.length;
    attachments.push({ filename: data.filename ?? null, contentType: data.contentType, size: 0 });
    if (data.cid && !cids.has(data.cid)) cids.set(data.cid, index);
    let size = 0;
    data.content.on('data', (chunk: Buffer) => (size += chunk.length));
    data.content.on('end', () => {
      attachments[index] = { ...attachments[index]!, size };
      data.release?.();
    });
  });
  await feed(file, parser);
  return {
    detail: {
      id: summary.id,
      from: summary.from,
      to: summary.to,
      subject: summary.subject,
      date: summary.date,
      text: body?.text ?? null,
      html: body?.html ?? null,
      headers: headerLines.map(headerOf),
      attachments,
    },
    cids,
  };
}

export interface OpenedPart {
  readonly info: AttachmentInfo;
  readonly content: Readable;
}

/**
 * The decoded content of attachment `index`, as a stream, or undefined when the message has no
 * such part. Parsing stops once that part is read (or the caller destroys the stream).
 */
export async function openAttachment(file: string, index: number): Promise<OpenedPart | undefined> {
  const parser = await newParser();
  const source = createReadStream(file);
  return new Promise<OpenedPart | undefined>((resolve, reject) => {
    let seen = 0;
    let found = false;
    const stop = (): void => {
      source.destroy();
      parser.destroy();
    };
    parser.on('data', (data: AttachmentStream | MessageText) => {
      if (data.type === 'text') return;
      const mine = seen++ === index;
      if (!mine) {
        data.content.on('end', () => data.release?.());
        data.content.resume();
        return;
      }
      found = true;
      data.content.once('close', stop);
      data.content.once('end', stop);
      resolve({ info: { filename: data.filename ?? null, contentType: data.contentType, size: data.size ?? -1 }, content: data.content });
    });
    parser.once('end', () => {
      if (!found) resolve(undefined);
    });
    const fail = (err: Error): void => {
      if (!found) reject(err);
    };
    parser.once('error', fail);
    source.once('error', fail);
    source.pipe(parser);
  });
}

/** Streams the file through the parser and waits for the parser to be done with it. */
async function feed(file: string, parser: MailParserType): Promise<void> {
  const source = createReadStream(file);
  const failed = new Promise<never>((_, reject) => source.once('error', reject));
  source.pipe(parser);
  await Promise.race([finished(parser, { writable: true, readable: true }), failed]);
}

function headerOf({ line }: { readonly line: string }): { name: string; value: string } {
  const colon = line.indexOf(':');
  const name = colon < 0 ? line : line.slice(0, colon);
  const value = colon < 0 ? '' : line.slice(colon + 1).replace(/\r?\n[ \t]+/g, ' ').trim();
  return { name: name.trim(), value: decodeWords(value) };
}
