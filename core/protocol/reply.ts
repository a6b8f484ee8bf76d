/**
 * Incremental SMTP reply parser (RFC 5321 §4.2): bytes in, whole replies out.
 * Accepts CRLF or bare LF line ends, empty texts (`250`, `250 `), multi-line replies, and extracts
 * RFC 3463 enhanced status codes. Guards memory: one line may not exceed `maxLineLength` (8 192 like
 * smtplib's _MAXLINE) and one reply may not exceed `maxReplyLength`/`maxReplyLines`; anything that is
 * not `ddd[ -]text` is a protocol error. Errors are thrown from `push` and leave the parser unusable:
 * the connection must close, since it is no longer known where the next reply starts.
 */
import { SmtpProtocolError } from '../errors.js';

export interface SmtpReply {
  readonly code: number;
  readonly enhancedCode?: string;
  /** Each line's text, without the code and separator. */
  readonly lines: readonly string[];
  /** `lines` joined with `\n`. */
  readonly message: string;
}

export interface ReplyLimits {
  readonly maxLineLength: number;
  readonly maxReplyLength: number;
  readonly maxReplyLines: number;
}

export const DEFAULT_REPLY_LIMITS: ReplyLimits = {
  maxLineLength: 8192,
  maxReplyLength: 64 * 1024,
  maxReplyLines: 512,
};

const LF = 0x0a;
const CR = 0x0d;
const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)/;

export interface ReplyParser {
  /** Feeds bytes; calls `onReply` for each reply completed by them. Throws on a protocol error. */
  push(chunk: Buffer): void;
  /** Bytes received that do not yet make a whole reply. */
  readonly pending: number;
  /** Forgets buffered bytes (after STARTTLS: nothing sent before the handshake may be trusted). */
  reset(): void;
}

export function createReplyParser(
  onReply: (reply: SmtpReply) => void,
  limits: ReplyLimits = DEFAULT_REPLY_LIMITS,
): ReplyParser {
  let partial: Buffer | undefined; // an incomplete line carried over from the previous chunk
  let lines: string[] = [];
  let code = 0;
  let replyLength = 0;

  const fail = (message: string, line: string): never => {
    partial = undefined;
    lines = [];
    throw new SmtpProtocolError({ code: 500, lines: [message], message: `${message}: ${JSON.stringify(line.slice(0, 80))}` });
  };

  const takeLine = (raw: string): void => {
    // raw is one line without its LF (and without a trailing CR).
    replyLength += raw.length + 2;
    if (raw.length < 3 || !isDigit(raw, 0) || !isDigit(raw, 1) || !isDigit(raw, 2)) {
      fail('malformed reply line', raw);
    }
    const sep = raw.length > 3 ? raw.charCodeAt(3) : 0x20;
    if (sep !== 0x20 && sep !== 0x2d /* - */) fail('malformed reply line', raw);
    const lineCode = (raw.charCodeAt(0) - 48) * 100 + (raw.charCodeAt(1) - 48) * 10 + (raw.charCodeAt(2) - 48);
    if (lineCode < 200 || lineCode > 599) fail('reply code out of range', raw);
    code = lineCode;
    lines.push(raw.length > 4 ? raw.slice(4) : '');
    if (lines.length > limits.maxReplyLines || replyLength > limits.maxReplyLength) {
      fail('reply too long', raw);
    }
    if (sep !== 0x2d) {
      const done = lines;
      lines = [];
      replyLength = 0;
      const first = done[0]!;
      const m = ENHANCED.exec(first);
      const message = done.length === 1 ? first : done.join('\n');
      onReply(m && Number(m[1]) === Math.floor(code / 100)
        ? { code, enhancedCode: m[0], lines: done, message }
        : { code, lines: done, message });
    }
  };

  return {
    get pending() {
      return (partial?.length ?? 0) + replyLength;
    },
    reset() {
      partial = undefined;
      lines = [];
      replyLength = 0;
    },
    push(chunk: Buffer) {
      let buf = chunk;
      if (partial) {
        buf = Buffer.concat([partial, chunk]);
        partial = undefined;
      }
      let start = 0;
      for (;;) {
        const lf = buf.indexOf(LF, start);
        if (lf === -1) break;
        let end = lf;
        if (end > start && buf[end - 1] === CR) end--;
        if (end - start > limits.maxLineLength) tooLong();
        takeLine(buf.toString('utf8', start, end));
        start = lf + 1;
      }
      if (start < buf.length) {
        // A trailing CR may be the first half of the CRLF: it does not count, as on a whole line.
        const partialLength = buf.length - start - (buf[buf.length - 1] === CR ? 1 : 0);
        if (partialLength > limits.maxLineLength) tooLong();
        partial = buf.subarray(start);
      }
    },
  };

  function tooLong(): never {
    partial = undefined;
    lines = [];
    // smtplib: SMTPResponseException(500, "Line too long.")
    throw new SmtpProtocolError({ code: 500, lines: ['Line too long.'], message: 'Line too long.' },
      `reply line longer than ${limits.maxLineLength} bytes`);
  }
}

function isDigit(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c >= 48 && c <= 57;
}
