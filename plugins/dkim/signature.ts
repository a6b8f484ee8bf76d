/**
 * The DKIM-Signature field (RFC 6376 §3.5, §3.7): which header fields are signed, the tag list, the
 * header hash and the signature. `l=` is never written: a length limit lets anyone append content
 * that still verifies.
 */
import { createHash, sign } from 'node:crypto';
import type { SigningKey } from './keys.js';
import { canonicalHeader, type Canonicalization } from './canonicalize.js';

export interface SignatureParams {
  readonly key: SigningKey;
  /** `d=`, A-labels. */
  readonly domain: string;
  readonly header: Canonicalization;
  readonly body: Canonicalization;
  /** The h= list (lower case, with repeats for repeated and over-signed fields). */
  readonly signedNames: readonly string[];
  /** `bh=`, base64. */
  readonly bodyHash: string;
  /** `t=`, seconds since the epoch. */
  readonly timestamp?: number;
  /** `x=`, seconds since the epoch. */
  readonly expires?: number;
}

const LINE = 78;

/**
 * The h= list for a message: each name of `names` once per field of that name present (RFC 6376
 * §5.4.2: instances are taken bottom-up), then the over-signed names once more, so that a field of
 * that name added later breaks the signature.
 */
export function signedNames(fields: readonly string[], names: readonly string[], overSign: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const field of fields) {
    const name = field.slice(0, field.indexOf(':')).trimEnd().toLowerCase();
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  const list: string[] = [];
  for (const name of names) for (let i = counts.get(name) ?? 0; i > 0; i--) list.push(name);
  return [...list, ...overSign];
}

/** The header fields the h= list selects, in h= order: for each name, the last not yet used. */
function selectFields(fields: readonly string[], names: readonly string[]): string[] {
  const byName = new Map<string, string[]>();
  for (const field of fields) {
    const name = field.slice(0, field.indexOf(':')).trimEnd().toLowerCase();
    const list = byName.get(name);
    if (list) list.push(field);
    else byName.set(name, [field]);
  }
  const selected: string[] = [];
  for (const name of names) {
    const field = byName.get(name)?.pop();
    if (field !== undefined) selected.push(field); // an over-signed name with none left adds nothing
  }
  return selected;
}

/** `i=`'s local part in dkim-quoted-printable (RFC 6376 §2.11): `;`, `=`, spaces, 8-bit → `=XX`. */
function quotedPrintable(text: string): string {
  return [...Buffer.from(text, 'utf8')]
    .map((b) => (b >= 0x21 && b <= 0x7e && b !== 0x3b && b !== 0x3d ? String.fromCharCode(b) : `=${b.toString(16).toUpperCase().padStart(2, '0')}`))
    .join('');
}

/** `DKIM-Signature: tag; tag; …` folded at tag (and h= name) boundaries, ending in `b=`. */
function unsignedField(p: SignatureParams): string {
  const identity = p.key.identity;
  const tags = [
    'v=1',
    `a=${p.key.algorithm}`,
    `c=${p.header}/${p.body}`,
    `d=${p.domain}`,
    `s=${p.key.selector}`,
    ...(identity ? [`i=${quotedPrintable(identity.local)}@${identity.domain}`] : []),
    ...(p.timestamp === undefined ? [] : [`t=${p.timestamp}`]),
    ...(p.expires === undefined ? [] : [`x=${p.expires}`]),
  ];
  let out = 'DKIM-Signature:';
  let line = out.length;
  const put = (piece: string, separator: string): void => {
    if (line + separator.length + piece.length > LINE && line > 1) {
      out += `\r\n ${piece}`;
      line = 1 + piece.length;
    } else {
      out += separator + piece;
      line += separator.length + piece.length;
    }
  };
  for (const tag of tags) put(`${tag};`, ' ');
  // h= may be long: break it after a colon (FWS is allowed around them).
  p.signedNames.forEach((name, i) => {
    const last = i === p.signedNames.length - 1;
    put(`${i === 0 ? 'h=' : ''}${name}${last ? ';' : ':'}`, i === 0 ? ' ' : '');
  });
  put(`bh=${p.bodyHash};`, ' ');
  put('b=', ' ');
  return out;
}

/** Appends the base64 signature to the `b=` that ends `field`, folded (FWS inside b= is ignored). */
function withSignature(field: string, signature: string): string {
  const lastLine = field.length - field.lastIndexOf('\n');
  let out = field;
  let rest = signature;
  const first = Math.max(0, LINE - lastLine);
  out += rest.slice(0, first);
  rest = rest.slice(first);
  while (rest.length > 0) {
    out += `\r\n ${rest.slice(0, LINE - 1)}`;
    rest = rest.slice(LINE - 1);
  }
  return out;
}

/** Signs `fields` (the message's header fields, top to bottom) and returns the DKIM-Signature field. */
export function signatureField(fields: readonly string[], p: SignatureParams): string {
  const unsigned = unsignedField(p);
  const input = selectFields(fields, p.signedNames).map((f) => `${canonicalHeader(f, p.header)}\r\n`).join('') + canonicalHeader(unsigned, p.header);
  const data = Buffer.from(input, 'utf8');
  const signature = p.key.algorithm === 'rsa-sha256'
    ? sign('sha256', data, p.key.privateKey)
    // RFC 8463 §3: Ed25519 signs the SHA-256 hash of the canonicalized header data.
    : sign(null, createHash('sha256').update(data).digest(), p.key.privateKey);
  return withSignature(unsigned, signature.toString('base64'));
}
