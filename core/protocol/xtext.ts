/**
 * xtext (RFC 3461 §4): octets 33–126 except `+` and `=` go as they are, every other octet as `+XX`
 * with upper-case hex. Used for DSN ENVID and ORCPT values.
 */
export function encodeXtext(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    if (byte >= 33 && byte <= 126 && byte !== 0x2b && byte !== 0x3d) out += String.fromCharCode(byte);
    else out += `+${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function decodeXtext(value: string): string {
  return Buffer.from(
    value.replace(/\+([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))),
    'latin1',
  ).toString('utf8');
}
