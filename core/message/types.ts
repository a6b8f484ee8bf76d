/**
 * Message shapes: what users hand to `sendMessage`/`sendMail` (nodemailer's message object) and what
 * a message builder hands back to the session (an envelope and a body to stream).
 */
import type { Readable } from 'node:stream';

/** An address as nodemailer accepts it: `'a@b'`, `'Name <a@b>'`, `{ name, address }`, or a list. */
export type AddressObject = { readonly name?: string; readonly address: string };
export type Address = string | AddressObject;
export type AddressList = Address | readonly Address[];

export interface Attachment {
  readonly filename?: string | false;
  readonly content?: string | Buffer | Readable;
  readonly path?: string;
  readonly href?: string;
  readonly contentType?: string;
  readonly contentDisposition?: 'attachment' | 'inline';
  readonly cid?: string;
  readonly encoding?: BufferEncoding | 'base64' | 'hex';
  readonly headers?: Readonly<Record<string, string | readonly string[]>>;
  readonly raw?: string | Buffer;
}

export interface MessageEnvelope {
  readonly from?: Address | false;
  readonly to?: AddressList;
  readonly cc?: AddressList;
  readonly bcc?: AddressList;
}

/** nodemailer's message object (the fields mailstage understands). */
export interface MailMessage {
  readonly from?: Address;
  readonly sender?: Address;
  readonly to?: AddressList;
  readonly cc?: AddressList;
  readonly bcc?: AddressList;
  readonly replyTo?: AddressList;
  readonly inReplyTo?: string;
  readonly references?: string | readonly string[];
  readonly subject?: string;
  readonly text?: string | Buffer | Readable | { readonly path: string };
  readonly html?: string | Buffer | Readable | { readonly path: string };
  readonly amp?: string;
  readonly attachments?: readonly Attachment[];
  readonly headers?: Readonly<Record<string, string | readonly string[] | { readonly prepared?: boolean; readonly value: string }>>;
  readonly messageId?: string;
  readonly date?: Date | string;
  readonly priority?: 'high' | 'normal' | 'low';
  readonly list?: Readonly<Record<string, unknown>>;
  readonly envelope?: MessageEnvelope;
  /** A ready RFC 5322 message (string, Buffer, stream or `{ path }`): sent as is. */
  readonly raw?: string | Buffer | Readable | { readonly path: string };
  readonly encoding?: string;
  readonly textEncoding?: 'quoted-printable' | 'base64';
  /** Per-message DSN options (nodemailer's shape; the dsn plugin also accepts per-recipient ones). */
  readonly dsn?: Readonly<Record<string, unknown>>;
  readonly [extra: string]: unknown;
}

/** A body the data phase can stream: text, bytes, a stream or any async iterable of chunks. */
export type MessageBody = string | Buffer | Uint8Array | Readable | AsyncIterable<Buffer | Uint8Array | string>;

export interface Envelope {
  readonly from: string;          // '' for the null sender <>
  readonly to: readonly string[];
}

/** What a message builder produces. */
export interface BuiltMessage {
  readonly envelope: Envelope;
  readonly messageId?: string;
  readonly body: MessageBody;
  /** Byte size when known in advance (for SIZE=). */
  readonly size?: number;
  /** True when a header or address needs SMTPUTF8. */
  readonly needsSmtpUtf8?: boolean;
  /** True when the body has 8-bit bytes; undefined when unknown (streams). */
  readonly eightBit?: boolean;
}
