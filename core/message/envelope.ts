/**
 * The SMTP envelope from a message, with smtplib's `send_message` rules: an explicit envelope wins;
 * else the sender is Sender, else From; recipients are To + Cc + Bcc, deduplicated in order; when
 * the message carries one Resent-* block (it was resent), that block's fields are used instead;
 * more than one block is ambiguous and refused (smtplib raises ValueError too).
 */
import { SmtpInvalidInputError } from '../errors.js';
import { parseAddressList, type ParsedAddress } from './address.js';
import type { AddressList, Envelope, MailMessage, MessageEnvelope } from './types.js';

/** Occurrences of a header, by lower-case name, each still as an address input. */
type HeaderLookup = (name: string) => readonly AddressList[];

/** A header read from raw text: name as written, value unfolded. */
export interface HeaderField {
  readonly name: string;
  readonly value: string;
}

const MESSAGE_FIELDS: Readonly<Record<string, keyof MailMessage>> = {
  from: 'from', sender: 'sender', to: 'to', cc: 'cc', bcc: 'bcc',
};

/** Custom header values by lower-case name (arrays are repeated header lines). */
export function customHeaderValues(message: MailMessage, lowerName: string): readonly string[] {
  const headers = message.headers ?? {};
  return Object.keys(headers)
    .filter((key) => key.toLowerCase() === lowerName)
    .flatMap((key) => {
      const v = headers[key];
      if (typeof v === 'string') return [v];
      if (Array.isArray(v)) return v as readonly string[];
      return v && typeof v === 'object' && 'value' in v ? [String(v.value)] : [];
    });
}

/** `headers` override the message's own fields, as they do in the built message. */
function messageLookup(message: MailMessage): HeaderLookup {
  return (name) => {
    const custom = customHeaderValues(message, name);
    if (custom.length > 0) return custom;
    const key = MESSAGE_FIELDS[name];
    const value = key === undefined ? undefined : (message[key] as AddressList | undefined);
    return value === undefined || value === null ? [] : [value];
  };
}

function headerLookup(fields: readonly HeaderField[]): HeaderLookup {
  return (name) => fields.filter((f) => f.name.toLowerCase() === name).map((f) => f.value);
}

export function envelopeFromMessage(message: MailMessage): Envelope {
  return resolveEnvelope(messageLookup(message), message.envelope);
}

/** For raw messages: the envelope from the parsed header section, an explicit one winning. */
export function envelopeFromHeaders(fields: readonly HeaderField[], explicit?: MessageEnvelope): Envelope {
  return resolveEnvelope(headerLookup(fields), explicit);
}

function uniqueAddresses(list: readonly ParsedAddress[]): readonly string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const { address } of list) {
    // Local parts are case-sensitive in principle; domains never are.
    const at = address.lastIndexOf('@');
    const key = at < 0 ? address : address.slice(0, at) + address.slice(at).toLowerCase();
    if (!seen.has(key)) {
      seen.add(key);
      out.push(address);
    }
  }
  return out;
}

const RESENT = ['resent-date', 'resent-from', 'resent-sender', 'resent-to', 'resent-cc', 'resent-bcc', 'resent-message-id'];

function resolveEnvelope(lookup: HeaderLookup, explicit: MessageEnvelope | undefined): Envelope {
  const explicitFrom = explicit?.from !== undefined;
  const explicitTo = explicit !== undefined && (explicit.to !== undefined || explicit.cc !== undefined || explicit.bcc !== undefined);
  // A complete explicit envelope makes the headers irrelevant, ambiguous Resent-* blocks included.
  const blocks = explicitFrom && explicitTo ? 0 : Math.max(...RESENT.map((name) => lookup(name).length));
  if (blocks > 1) {
    throw new SmtpInvalidInputError('headers', 'more than one Resent-* block: give the envelope explicitly');
  }
  const prefix = blocks === 1 ? 'resent-' : '';
  const label = (name: string): string => (prefix === '' ? name : `headers.Resent-${name[0].toUpperCase()}${name.slice(1)}`);
  const addresses = (name: string): readonly ParsedAddress[] =>
    lookup(prefix + name).flatMap((v) => parseAddressList(v, label(name)));

  let from: string;
  if (explicit?.from === false || explicit?.from === '') {
    from = ''; // the null reverse-path <>
  } else if (explicitFrom) {
    from = parseAddressList(explicit.from, 'envelope.from')[0]?.address ?? '';
  } else {
    const sender = addresses('sender')[0] ?? addresses('from')[0];
    if (sender === undefined) {
      throw new SmtpInvalidInputError(prefix === '' ? 'from' : 'headers.Resent-From', 'no sender: set from, sender or envelope.from');
    }
    from = sender.address;
  }

  const recipients = explicitTo
    ? (['to', 'cc', 'bcc'] as const).flatMap((k) => parseAddressList(explicit?.[k], `envelope.${k}`))
    : [...addresses('to'), ...addresses('cc'), ...addresses('bcc')];
  const to = uniqueAddresses(recipients);
  if (to.length === 0) {
    throw new SmtpInvalidInputError(explicitTo ? 'envelope.to' : label('to'), 'no recipients');
  }
  return { from, to };
}

/**
 * The header section of a raw message (up to the first empty line), unfolded. Accepts LF or CRLF
 * line ends: the raw builder passes input untouched and the wire normalises later.
 */
export function parseHeaderSection(raw: string | Buffer): readonly HeaderField[] {
  const text = typeof raw === 'string' ? raw : raw.toString('utf8');
  const end = text.search(/\r?\n\r?\n/);
  const head = end < 0 ? text : text.slice(0, end);
  const fields: { name: string; value: string }[] = [];
  for (const line of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && fields.length > 0) {
      fields[fields.length - 1].value += line;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue; // not a header line (an mbox "From " line, garbage): ignore
    fields.push({ name: line.slice(0, colon).trim(), value: line.slice(colon + 1).trim() });
  }
  return fields;
}
