/**
 * Reads back what Postfix (virtual(8)) or Dovecot (LMTP) delivered into a Maildir, so tests check
 * what the server stored, not only its 250.
 *
 * Both delivery agents store messages with LF line endings (Maildir is a Unix format: CRLF on the
 * wire becomes LF on disk) and prepend trace headers: Postfix `Return-Path`, `X-Original-To`,
 * `Delivered-To` plus the smtpd `Received`; Dovecot `Return-Path` plus its LMTP `Received`.
 * `content` strips exactly those (the leading envelope lines and the first Received header), which
 * leaves the message as the client sent it, modulo CRLF → LF.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

export interface DeliveredMessage {
  /** Absolute path of the Maildir file. */
  readonly file: string;
  /** The file exactly as stored (LF line endings, trace headers included). */
  readonly raw: Buffer;
  /** The message without the trace headers the server prepended. */
  readonly content: Buffer;
  /** Envelope sender from `Return-Path` ('' for the null sender `<>`). */
  readonly sender: string | undefined;
  /** Envelope recipient as rewritten for delivery (`Delivered-To`; Postfix only). */
  readonly recipient: string | undefined;
  /** Envelope recipient as the client sent it in RCPT TO (`X-Original-To`; Postfix only). */
  readonly originalRecipient: string | undefined;
}

const ENVELOPE_HEADERS = /^(Return-Path|X-Original-To|Delivered-To):[ \t]*(.*)$/i;

export function parseDelivered(file: string, raw: Buffer): DeliveredMessage {
  const text = raw.toString('latin1'); // byte-preserving: offsets below index `raw` directly
  let offset = 0;
  const fields: Record<string, string> = {};
  const nextLine = () => {
    const end = text.indexOf('\n', offset);
    return end < 0 ? undefined : { line: text.slice(offset, end), end: end + 1 };
  };
  for (;;) {
    const next = nextLine();
    const match = next && ENVELOPE_HEADERS.exec(next.line);
    if (!next || !match) break;
    fields[match[1]!.toLowerCase()] ??= match[2]!.trim();
    offset = next.end;
  }
  const first = nextLine();
  if (first && /^Received:/i.test(first.line)) {
    offset = first.end;
    for (let cont = nextLine(); cont && /^[ \t]/.test(cont.line); cont = nextLine()) offset = cont.end;
  }
  // Header values were read as latin1 to keep byte offsets; SMTPUTF8 addresses are UTF-8 bytes.
  const unbracket = (v: string | undefined) =>
    v === undefined ? undefined : Buffer.from(v, 'latin1').toString('utf8').replace(/^<(.*)>$/, '$1');
  return {
    file,
    raw,
    content: raw.subarray(offset),
    sender: unbracket(fields['return-path']),
    recipient: unbracket(fields['delivered-to']),
    originalRecipient: unbracket(fields['x-original-to']),
  };
}

/**
 * All messages in a Maildir (`new/` and `cur/`), oldest first. Maildir file names start with the
 * delivery time in seconds then a microsecond/sequence part, so we sort by mtime and then name.
 */
export async function readMaildir(dir: string): Promise<DeliveredMessage[]> {
  const files: { file: string; mtime: number }[] = [];
  for (const sub of ['new', 'cur']) {
    let names: string[];
    try {
      names = await readdir(path.join(dir, sub));
    } catch {
      continue; // not created until the first delivery
    }
    for (const name of names) files.push({ file: path.join(dir, sub, name), mtime: maildirTime(name) });
  }
  files.sort((a, b) => a.mtime - b.mtime || a.file.localeCompare(b.file));
  return Promise.all(files.map(async ({ file }) => parseDelivered(file, await readFile(file))));
}

/** Dovecot "1795465194.M547214P8213.host,S=…", Postfix "1795465194.V801I2b4M123456.host" → s.µs. */
function maildirTime(name: string): number {
  const m = /^(\d+)\.(?:[^.]*?M(\d+))?/.exec(name);
  return m ? Number(m[1]) + Number(m[2] ?? 0) / 1e6 : 0;
}
