/**
 * The MIME structure from mimetext. mimetext decides the multipart layout (alternative for
 * text+html, related for cid images, mixed for attachments, and their nesting) and writes the
 * boundary lines; it is given placeholder bodies, and its output is cut at the placeholders so the
 * real, encoded bodies (possibly streams) can be put in their place. Everything mimetext gets
 * wrong (headers, encodings, bare LF, boundary quoting) is replaced or corrected here, see DESIGN.md.
 */
import { randomFillSync } from 'node:crypto';
import type * as Mimetext from 'mimetext';

// Loaded on the first composed message, not when the package is imported. An import(), not
// lazyRequire: mimetext's CommonJS build is broken (a .js file in a "type": "module" package).
let mimetext: typeof Mimetext | undefined;
let loading: Promise<typeof Mimetext> | undefined;

export type PartRole = 'text' | 'html' | 'attachment' | 'inline';

/** The skeleton: the top-level Content-Type (undefined for a single-part message) and the body
 *  as literal text interleaved with part indexes. */
export interface Skeleton {
  readonly contentType?: string;
  readonly pieces: readonly (string | number)[];
}

const placeholder = (i: number): string => `\u0000${i}\u0000`;

/**
 * Boundaries with `=_`: that pair never occurs in quoted-printable or base64 output, and the random
 * part makes a collision with 7bit text practically impossible.
 */
function boundary(kind: string): string {
  return `=_ms_${kind}_${randomHex(12)}`;
}

// One randomFillSync per 4 KiB instead of one per boundary: the per-call cost showed as 6% of a
// templated batch's CPU.
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

function randomHex(bytes: number): string {
  if (poolOffset + bytes > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const hex = pool.toString('hex', poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return hex;
}

export async function mimeSkeleton(roles: readonly PartRole[]): Promise<Skeleton> {
  // mimetext's node entry bakes in os.EOL; a message of our own with '\r\n' avoids bare LF.
  const { createMimeMessage, MIMEMessage } = mimetext ??= await (loading ??= import('mimetext'));
  const msg = new MIMEMessage({ ...createMimeMessage().envctx, eol: '\r\n' });
  msg.boundaries = { mixed: boundary('mixed'), alt: boundary('alt'), related: boundary('rel') };
  // Required by mimetext's header dump; the whole top-level header block is replaced anyway.
  msg.setSender('skeleton@mailstage.invalid');
  msg.setSubject('');
  roles.forEach((role, i) => {
    const data = placeholder(i);
    if (role === 'text' || role === 'html') {
      msg.addMessage({ contentType: role === 'text' ? 'text/plain' : 'text/html', data });
    } else {
      msg.addAttachment({ filename: 'part', contentType: 'application/octet-stream', data, inline: role === 'inline' });
    }
  });
  return cutSkeleton(msg.asRaw());
}

function cutSkeleton(raw: string): Skeleton {
  const headEnd = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, headEnd);
  let rest = raw.slice(headEnd + 4);
  const single = /^\u0000(\d+)\u0000$/.exec(rest);
  if (single) return { pieces: [Number(single[1])] };
  const top = /^Content-Type: (multipart\/[a-z]+); boundary=(\S+)$/m.exec(head);
  if (!top) throw new Error('mimetext produced an unexpected top-level header block');
  rest = rest
    // Each part's header block (mimetext's, with the wrong encodings) goes: the builder writes its own.
    .replace(/(?<=\r\n)(?:(?!--)[^\r\n]+\r\n)+\r\n(\u0000\d+\u0000)/g, '$1')
    // mimetext leaves an extra empty line after some bodies; it would become part of the content.
    .replace(/(\u0000\d+\u0000)\r\n\r\n--/g, '$1\r\n--')
    // `=` is a tspecial: the boundary parameter must be quoted (RFC 2045 §5.1).
    .replace(/; boundary=(\S+)\r\n/g, '; boundary="$1"\r\n');
  const pieces = rest
    .split(/\u0000(\d+)\u0000/)
    .map((piece, k) => (k % 2 === 1 ? Number(piece) : piece))
    .filter((piece) => piece !== '');
  return { contentType: `${top[1]}; boundary="${top[2]}"`, pieces: [...pieces, '\r\n'] };
}
