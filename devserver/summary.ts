/**
 * One line of the inbox: who, to whom, what, when, how big — from the header section alone, so a
 * message of any size is summed up from its first bytes. Address headers are parsed by mailparser
 * (loaded on first use: only the dev sink needs it).
 */
import type { AddressObject, EmailAddress } from 'mailparser';
import { decodeWords, fieldValues, parseHeaderFields } from './headers.js';

/** The list entry of `GET /api/messages` (API.md, "The dev inbox"). */
export interface MessageSummary {
  readonly id: string;
  /** The From header for display: `Name <address>` or `address`; the envelope sender without one. */
  readonly from: string;
  /** The To header's mailboxes (groups flattened), each `Name <address>` or `address`; the envelope
   *  recipients when there is no To header. */
  readonly to: readonly string[];
  /** Decoded; '' when there is none. */
  readonly subject: string;
  /** ISO 8601: the Date header, or the time of arrival when it is missing or not a date. */
  readonly date: string;
  /** Bytes of the stored message (what `/raw` returns). */
  readonly size: number;
}

/** What the sink knows besides the message: the envelope and when it came. */
export interface Arrival {
  readonly id: string;
  readonly size: number;
  readonly receivedAt: Date;
}

type ParseAddressHeader = (value: string | string[]) => AddressObject;
let parseAddressHeader: Promise<ParseAddressHeader> | undefined;

export async function summarize(head: Buffer, arrival: Arrival): Promise<MessageSummary> {
  const parse = await (parseAddressHeader ??= import('mailparser').then((m) => m.parseAddressHeader as ParseAddressHeader));
  const fields = parseHeaderFields(head);
  const from = mailboxes(parse, fieldValues(fields, 'from'));
  const to = mailboxes(parse, fieldValues(fields, 'to'));
  const envelopeFrom = fieldValues(fields, 'return-path')[0]?.replace(/^<|>$/g, '') ?? '';
  const envelopeTo = fieldValues(fields, 'delivered-to');
  const subject = fieldValues(fields, 'subject')[0];
  return {
    id: arrival.id,
    from: from[0] ?? envelopeFrom,
    to: to.length > 0 ? to : envelopeTo,
    subject: subject === undefined ? '' : decodeWords(subject),
    date: dateOf(fieldValues(fields, 'date')[0], arrival.receivedAt),
    size: arrival.size,
  };
}

function mailboxes(parse: ParseAddressHeader, values: string[]): string[] {
  if (values.length === 0) return [];
  let parsed: AddressObject;
  try {
    parsed = parse(values);
  } catch {
    // Not parseable as addresses: shown as written rather than dropped.
    return values.map(decodeWords);
  }
  return flatten(parsed.value)
    .map((m) => (m.name ? `${m.name} <${m.address ?? ''}>` : (m.address ?? '')))
    .filter((m) => m !== '');
}

function flatten(list: readonly EmailAddress[]): EmailAddress[] {
  return list.flatMap((m) => (m.group ? flatten(m.group) : [m]));
}

function dateOf(value: string | undefined, fallback: Date): string {
  const parsed = value === undefined ? undefined : new Date(value);
  return parsed !== undefined && !Number.isNaN(parsed.getTime()) ? parsed.toISOString() : fallback.toISOString();
}
