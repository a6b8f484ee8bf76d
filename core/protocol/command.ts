/**
 * Command encoding and the injection guard (go-smtp's validateLine, applied per argument so the
 * error can name the field). Nothing reaches the wire that could end a command line early or smuggle
 * a second command: CR, LF, NUL, every other C0 control and DEL are refused in every argument.
 */
import { SmtpInvalidInputError } from '../errors.js';

// C0 controls (0x00-0x1f) and DEL. TAB is refused too: no SMTP argument needs it and some servers
// treat it as a separator.
const CONTROL = /[\x00-\x1f\x7f]/;
const VERB = /^[A-Za-z][A-Za-z0-9-]{0,31}$/;

/** Returns `value` unchanged when it is safe on a command line; throws naming `field` otherwise. */
export function checkArgument(field: string, value: string): string {
  if (typeof value !== 'string') {
    throw new SmtpInvalidInputError(field, `expected a string, got ${typeof value}`);
  }
  const m = CONTROL.exec(value);
  if (m) {
    throw new SmtpInvalidInputError(field, `contains a forbidden control character ${describeChar(m[0])}; refused before sending`);
  }
  return value;
}

export function checkVerb(verb: string): string {
  if (typeof verb !== 'string' || !VERB.test(verb)) {
    throw new SmtpInvalidInputError('command', `${JSON.stringify(verb)} is not an SMTP verb`);
  }
  return verb;
}

/** `VERB args\r\n`, with both checked. */
export function encodeCommand(verb: string, args?: string, field = 'argument'): string {
  checkVerb(verb);
  if (args === undefined || args === '') return `${verb}\r\n`;
  return `${verb} ${checkArgument(field, args)}\r\n`;
}

function describeChar(c: string): string {
  const code = c.charCodeAt(0);
  const names: Record<number, string> = { 0: 'NUL', 9: 'TAB', 10: 'LF', 13: 'CR', 127: 'DEL' };
  return `${names[code] ?? 'control'} (0x${code.toString(16).padStart(2, '0')})`;
}
