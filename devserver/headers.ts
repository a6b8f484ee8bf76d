/**
 * The header section of a stored message, read for the inbox's list and the sink's log line: where
 * it ends, its fields unfolded, encoded words decoded. Only the list needs this; the full view of
 * a message goes through mailparser (see detail.ts).
 *
 * Everything here reads bytes that came from a client: no assumption that the section ends, that a
 * line has a colon, or that an encoded word is well formed.
 */
import libmime from 'libmime';

/** A header section not ended within this many bytes is read up to here (the rest is body to us). */
export const HEAD_LIMIT = 256 * 1024;

export interface HeaderField {
  /** As written (case kept). */
  readonly name: string;
  /** Unfolded, not decoded. */
  readonly value: string;
}

/**
 * The offset just past the empty line that ends the header section (LF or CRLF line ends), or -1
 * when `data` holds no such line. A message that starts with an empty line has no headers: 0 past
 * that line.
 */
export function headerSectionEnd(data: Buffer): number {
  if (data[0] === 0x0a) return 1;
  if (data[0] === 0x0d && data[1] === 0x0a) return 2;
  for (let i = data.indexOf(0x0a); i >= 0 && i < data.length - 1; i = data.indexOf(0x0a, i + 1)) {
    if (data[i + 1] === 0x0a) return i + 2;
    if (data[i + 1] === 0x0d && data[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

/** The header fields of `head` (the header section, or a prefix of a message), in order. */
export function parseHeaderFields(head: Buffer): HeaderField[] {
  const end = headerSectionEnd(head);
  const text = (end < 0 ? head : head.subarray(0, end)).toString('utf8');
  const fields: { name: string; value: string }[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (line === '') continue;
    if (line[0] === ' ' || line[0] === '\t') {
      const last = fields.at(-1);
      if (last) last.value += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    // A line without a colon is not a field; mailparser shows it in the full view.
    if (colon <= 0) continue;
    fields.push({ name: line.slice(0, colon).trim(), value: line.slice(colon + 1).trim() });
  }
  return fields;
}

/** Every value of the field `name` (case-insensitive), in order. */
export function fieldValues(fields: readonly HeaderField[], name: string): string[] {
  const wanted = name.toLowerCase();
  return fields.filter((f) => f.name.toLowerCase() === wanted).map((f) => f.value);
}

/** RFC 2047 encoded words decoded; a malformed one is left as written. */
export function decodeWords(value: string): string {
  try {
    return libmime.decodeWords(value);
  } catch {
    return value;
  }
}
