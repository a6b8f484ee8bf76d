/**
 * Envelope addresses (RFC 5321 paths). Accepts what users hand to smtplib: `a@b`, `<a@b>`,
 * `Name <a@b>`, `"Name" <a@b>`; drops the display name; `''` and `<>` are the null sender. Returns
 * the bare address; `formatPath` adds the angle brackets for the wire.
 */
import { SmtpInvalidInputError } from '../errors.js';
import { checkArgument } from './command.js';

/** The bare envelope address in `input` ('' for the null sender). */
export function envelopeAddress(input: string, field: string): string {
  checkArgument(field, input);
  let s = input.trim();
  const open = s.lastIndexOf('<');
  if (open !== -1) {
    const close = s.indexOf('>', open);
    if (close === -1) throw new SmtpInvalidInputError(field, `unbalanced '<' in ${JSON.stringify(input)}`);
    s = s.slice(open + 1, close).trim();
  }
  // A source route (<@a,@b:user@c>, RFC 5321 §4.1.2) is obsolete: keep only the mailbox.
  if (s.startsWith('@') && s.includes(':')) s = s.slice(s.indexOf(':') + 1);
  if (s === '') return '';
  if (/[<>\s]/.test(unquoted(s))) {
    throw new SmtpInvalidInputError(field, `${JSON.stringify(input)} is not a valid address`);
  }
  return s;
}

/** `<addr>` for MAIL FROM / RCPT TO. */
export function formatPath(address: string): string {
  return `<${address}>`;
}

/** True when the address needs SMTPUTF8 (RFC 6531): any non-ASCII character. */
export function needsSmtpUtf8(address: string): boolean {
  for (let i = 0; i < address.length; i++) if (address.charCodeAt(i) > 0x7f) return true;
  return false;
}

// A quoted local part may hold spaces: ignore what is inside quotes when validating.
function unquoted(s: string): string {
  return s.replace(/"(?:[^"\\]|\\.)*"/g, '""');
}
