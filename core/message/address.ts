/**
 * Addresses as nodemailer accepts them → a flat list of `{ name?, address }`, and back to header
 * text. Groups (`Team: a@b, c@d;`) are flattened to their members: the envelope needs mailboxes,
 * and re-emitting group syntax is not worth its edge cases. Control characters are refused here, at
 * the first place user text is touched, so no later stage can be tricked into header injection.
 */
import type Libmime from 'libmime';
import { lazyRequire } from '../lazy.js';
import { SmtpInvalidInputError } from '../errors.js';
import { encodeWords } from './headers.js';
import type { Address, AddressList, AddressObject } from './types.js';

const libmime = lazyRequire<typeof Libmime>('libmime');

export interface ParsedAddress {
  readonly name?: string;
  readonly address: string;
}

const CONTROL = /[\r\n\0]/;
/** Words that may stand unquoted in a display name (RFC 5322 atext plus the spaces between). */
const PLAIN_PHRASE = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?: [A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/;
/** Deliberately loose: a local part and a domain, no spaces or delimiters. UTF-8 is allowed (RFC 6531). */
const MAILBOX = /^[^\s<>()[\]\\,;:"@]+@[^\s<>()[\]\\,;:"@]+$/;

/** True when the address cannot go out without SMTPUTF8 (RFC 6531). */
export function needsSmtpUtf8(address: string): boolean {
  return /[^\x00-\x7f]/.test(address);
}

export function assertNoControl(field: string, value: string): void {
  if (CONTROL.test(value)) {
    throw new SmtpInvalidInputError(field, 'CR, LF and NUL are not allowed');
  }
}

/** Parses any nodemailer address input; `field` names the input in errors (`to`, `from`, …). */
export function parseAddressList(input: AddressList | undefined | null | false, field: string): readonly ParsedAddress[] {
  if (input === undefined || input === null || input === false) return [];
  if (Array.isArray(input)) {
    return (input as readonly Address[]).flatMap((item) => parseAddressList(item, field));
  }
  if (typeof input === 'string') return parseAddressString(input, field);
  if (typeof input === 'object') return [parseAddressObject(input as AddressObject, field)];
  throw new SmtpInvalidInputError(field, `not an address: ${typeof input}`);
}

function parseAddressObject(input: AddressObject, field: string): ParsedAddress {
  if (typeof input.address !== 'string') {
    throw new SmtpInvalidInputError(field, 'an address object needs a string `address`');
  }
  assertNoControl(field, input.address);
  if (input.name !== undefined) assertNoControl(field, String(input.name));
  const address = input.address.trim();
  // nodemailer tolerates `{ address: 'Name <a@b>' }`; take the mailbox out of it.
  const inner = address.includes('<') ? parseAddressString(address, field)[0] : undefined;
  const mailbox = inner?.address ?? address;
  checkMailbox(field, mailbox);
  const name = input.name !== undefined && String(input.name).trim() !== '' ? String(input.name).trim() : inner?.name;
  return name === undefined ? { address: mailbox } : { name, address: mailbox };
}

interface Draft {
  phrase: string;
  angle?: string;
  comment: string;
}

/** Splits a header-style address list, honouring quotes, comments, angle brackets and groups. */
function parseAddressString(input: string, field: string): readonly ParsedAddress[] {
  assertNoControl(field, input);
  const drafts: Draft[] = [];
  let draft: Draft = { phrase: '', comment: '' };
  const flush = (): void => {
    if (draft.phrase.trim() !== '' || draft.angle !== undefined) drafts.push(draft);
    draft = { phrase: '', comment: '' };
  };
  let i = 0;
  while (i < input.length) {
    const c = input[i];
    if (c === '"') {
      let j = i + 1;
      let text = '';
      while (j < input.length && input[j] !== '"') {
        if (input[j] === '\\' && j + 1 < input.length) j++;
        text += input[j];
        j++;
      }
      // A quoted string keeps its inner spaces; mark it so `mailboxFromDraft` does not split it.
      draft.phrase += `\u0001${text}\u0001`;
      i = j + 1;
    } else if (c === '(') {
      let depth = 1;
      let j = i + 1;
      let text = '';
      while (j < input.length && depth > 0) {
        if (input[j] === '\\' && j + 1 < input.length) j++;
        else if (input[j] === '(') depth++;
        else if (input[j] === ')') depth--;
        if (depth > 0) text += input[j];
        j++;
      }
      draft.comment += text;
      i = j;
    } else if (c === '<') {
      const end = input.indexOf('>', i);
      draft.angle = input.slice(i + 1, end < 0 ? input.length : end).trim();
      i = end < 0 ? input.length : end + 1;
    } else if (c === ',' || c === ';') {
      flush();
      i++;
    } else if (c === ':' && draft.angle === undefined) {
      // `Team: a@b, c@d;` — the group's name is dropped, its members kept.
      draft = { phrase: '', comment: '' };
      i++;
    } else {
      draft.phrase += c;
      i++;
    }
  }
  flush();
  return drafts.map((d) => mailboxFromDraft(d, field));
}

function mailboxFromDraft(draft: Draft, field: string): ParsedAddress {
  let address: string;
  let nameText: string;
  if (draft.angle !== undefined) {
    address = draft.angle;
    nameText = draft.phrase;
  } else {
    // `a@b`, `a@b (Name)` or the lax `Name a@b`: the word with an @ is the address.
    const words = draft.phrase.replace(/\u0001/g, '').trim().split(/\s+/);
    const at = words.findLastIndex((w) => w.includes('@'));
    address = at >= 0 ? words[at] : draft.phrase.replace(/\u0001/g, '').trim();
    nameText = at >= 0 ? words.filter((_, k) => k !== at).join(' ') : '';
  }
  checkMailbox(field, address);
  let name = nameText.replace(/\u0001/g, '').replace(/\s+/g, ' ').trim() || draft.comment.trim();
  // Headers read back from raw messages may carry RFC 2047 words in names.
  if (/=\?[^?]+\?[bBqQ]\?/.test(name)) name = libmime().decodeWords(name);
  return name === '' ? { address } : { name, address };
}

function checkMailbox(field: string, address: string): void {
  if (address === '') throw new SmtpInvalidInputError(field, 'empty address');
  if (!MAILBOX.test(address)) {
    throw new SmtpInvalidInputError(field, `not a valid address: ${JSON.stringify(address)}`);
  }
}

/**
 * One address as header tokens (the folder may break between tokens). Non-ASCII names become
 * RFC 2047 words; ASCII names are quoted when they hold specials; a non-ASCII address stays UTF-8
 * (RFC 6532), which the caller must flag as needing SMTPUTF8.
 */
export function addressTokens(a: ParsedAddress): readonly string[] {
  const angle = `<${a.address}>`;
  if (a.name === undefined || a.name === '') return [a.address];
  if (/[^\x20-\x7e]/.test(a.name) || a.name.length > 900) return [...encodeWords(a.name), angle];
  if (PLAIN_PHRASE.test(a.name)) return [...a.name.split(' '), angle];
  return [`"${a.name.replace(/([\\"])/g, '\\$1')}"`, angle];
}

/** A header value for a list of addresses: tokens, with a comma closing each address but the last. */
export function addressListTokens(list: readonly ParsedAddress[]): readonly string[] {
  return list.flatMap((a, i) => {
    const tokens = addressTokens(a);
    return i < list.length - 1 ? [...tokens.slice(0, -1), `${tokens[tokens.length - 1]},`] : tokens;
  });
}

/** The unfolded header text for an address list (`"Doe, Jane" <j@x>, b@y`). */
export function formatAddressList(list: readonly ParsedAddress[]): string {
  return addressListTokens(list).join(' ');
}
