/**
 * Header text: RFC 2047 encoded words, folding, RFC 2231 parameters, dates. Everything here returns
 * CRLF-folded text whose lines stay within 78 octets where a fold point exists and never exceed 998
 * (RFC 5322 §2.1.1) — the two limits mimetext ignores.
 */
import type Libmime from 'libmime';
import { lazyRequire } from '../lazy.js';
import { SmtpInvalidInputError } from '../errors.js';

const libmime = lazyRequire<typeof Libmime>('libmime');

export const CRLF = '\r\n';
const PREFERRED_LINE = 78;
const MAX_LINE = 998;
const MAX_WORD = 75; // RFC 2047 §2: an encoded word is at most 75 characters
const WORD_OVERHEAD = '=?UTF-8?B??='.length;
/** Characters a Q-encoded word may carry literally in any header context (RFC 2047 §5 (3)). */
const Q_LITERAL = /^[A-Za-z0-9!*+\-/]$/;
/** RFC 5322 field name: printable ASCII except the colon. */
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

function qChar(ch: string): string {
  if (ch === ' ') return '_';
  if (Q_LITERAL.test(ch)) return ch;
  return [...Buffer.from(ch, 'utf8')].map((b) => `=${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
}

/**
 * Text → RFC 2047 encoded words, each ≤ 75 characters and never splitting a character. Q when the
 * text is mostly ASCII (still readable), B otherwise (shorter). `firstMax` lets the first word fit
 * on the line that already holds the field name.
 */
export function encodeWords(text: string, firstMax = MAX_WORD): readonly string[] {
  const chars = [...text];
  const nonAscii = chars.filter((c) => c.charCodeAt(0) > 0x7e || c.charCodeAt(0) < 0x20).length;
  const useQ = nonAscii * 3 < chars.length;
  const prefix = useQ ? '=?UTF-8?Q?' : '=?UTF-8?B?';
  const words: string[] = [];
  let current: string[] = [];
  let size = 0; // encoded length (Q) or byte count (B) of `current`
  const encodedLength = (n: number): number => (useQ ? n : Math.ceil(n / 3) * 4);
  const emit = (): void => {
    const payload = useQ ? current.join('') : Buffer.from(current.join(''), 'utf8').toString('base64');
    words.push(`${prefix}${payload}?=`);
  };
  for (const ch of chars) {
    const piece = useQ ? qChar(ch) : ch;
    const add = useQ ? piece.length : Buffer.byteLength(ch, 'utf8');
    const limit = (words.length === 0 ? Math.min(firstMax, MAX_WORD) : MAX_WORD) - WORD_OVERHEAD;
    if (current.length > 0 && encodedLength(size + add) > limit) {
      emit();
      current = [];
      size = 0;
    }
    current.push(piece);
    size += add;
  }
  if (current.length > 0 || words.length === 0) emit();
  return words;
}

/**
 * `Name: token token…` folded before a token whenever the line would pass 78 octets. Tokens are
 * atoms the caller has made safe (no CR/LF); the space between them is the folding white space.
 */
export function foldHeader(name: string, tokens: readonly string[]): string {
  let out = `${name}:`;
  let lineLength = out.length;
  let placed = false;
  for (const token of tokens) {
    if (placed && lineLength + 1 + token.length > PREFERRED_LINE) {
      out += `${CRLF} ${token}`;
      lineLength = 1 + token.length;
    } else {
      out += ` ${token}`;
      lineLength += 1 + token.length;
    }
    placed = true;
    if (lineLength > MAX_LINE) throw new SmtpInvalidInputError(name, `a word too long for one header line (${lineLength} octets)`);
  }
  return out;
}

/**
 * Tokens for unstructured text (Subject, custom headers): plain words when the text is printable
 * ASCII, otherwise the whole value as encoded words (the spaces travel inside them).
 */
export function unstructuredTokens(name: string, value: string): readonly string[] {
  const words = value.split(' ');
  const plain = /^[\x20-\x7e\t]*$/.test(value) && words.every((w) => w.length + name.length + 2 <= MAX_LINE);
  // A value that would decode as an encoded word must itself be encoded to survive unchanged.
  if (plain && !/=\?[^?]*\?[bBqQ]\?/.test(value)) return words;
  return encodeWords(value, PREFERRED_LINE - name.length - 2);
}

export function assertHeaderName(field: string, name: string): void {
  if (!FIELD_NAME.test(name)) {
    throw new SmtpInvalidInputError(field, `invalid header name ${JSON.stringify(name)}`);
  }
}

/** A `{ prepared: true }` value goes out as given: allow folds (CRLF + WSP) only, lines ≤ 998. */
export function assertPreparedValue(field: string, name: string, value: string): void {
  if (/\0/.test(value) || /\r(?!\n)|(?<!\r)\n|\r\n(?![ \t])/.test(value)) {
    throw new SmtpInvalidInputError(field, 'a prepared value may contain CRLF only as a fold (CRLF followed by a space or tab)');
  }
  if (`${name}: ${value}`.split(CRLF).some((line) => Buffer.byteLength(line) > MAX_LINE)) {
    throw new SmtpInvalidInputError(field, 'a prepared value has a line over the 998-octet limit');
  }
}

/** RFC 5322 date-time, in UTC. */
export function formatDate(date: Date): string {
  return date.toUTCString().replace(/GMT$/, '+0000');
}

const TOKEN = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;

function quoteParam(value: string): string {
  return TOKEN.test(value) ? value : `"${value.replace(/([\\"])/g, '\\$1')}"`;
}

/**
 * `key=value` parameter tokens: quoted ASCII when short, else RFC 2231 continuations
 * (`filename*0*=utf-8''…`). With `legacy`, an RFC 2047 form is added under that key for mail
 * clients that never learned 2231 (Outlook before 2007) — what nodemailer does for `name=`.
 */
export function paramTokens(key: string, value: string): readonly string[] {
  if (/^[\x20-\x7e]*$/.test(value) && value.length <= 60) return [`${key}=${quoteParam(value)}`];
  const params = libmime().buildHeaderParam(key, value, 50).map((p) => `${p.key}=${p.key.endsWith('*') ? p.value : quoteParam(p.value)}`);
  // Continuations are separate parameters: each but the last needs its `;`.
  return params.map((p, i) => (i < params.length - 1 ? `${p};` : p));
}

/** The RFC 2047 form of a parameter, inside one quoted string (what legacy readers expect). */
export function legacyParamTokens(key: string, value: string): readonly string[] {
  if (/^[\x20-\x7e]*$/.test(value) && value.length <= 60) return [`${key}=${quoteParam(value)}`];
  const words = encodeWords(value);
  if (words.length === 1) return [`${key}="${words[0]}"`];
  return [`${key}="${words[0]}`, ...words.slice(1, -1), `${words[words.length - 1]}"`];
}

/** Adds `;` after every parameter group but the last, so the folder can break between them. */
export function joinParams(value: string, params: readonly (readonly string[])[]): readonly string[] {
  const groups = [[value], ...params].filter((g) => g.length > 0);
  return groups.flatMap((group, i) => (i < groups.length - 1 ? [...group.slice(0, -1), `${group[group.length - 1]};`] : group));
}
