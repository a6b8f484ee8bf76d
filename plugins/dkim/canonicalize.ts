/**
 * RFC 6376 §3.4 canonicalization, header and body, `simple` and `relaxed`.
 *
 * Bodies are canonicalized as a stream straight into the hash, with a few bytes of state between
 * chunks, so a body of any size costs the same memory. Input is expected with CRLF line ends (run it
 * through `LineEndNormaliser` first, which is what the signer does); a CR or LF standing alone is
 * never produced by the normaliser, so the canonicalizers only look at LF to find line ends.
 */
import type { Hash } from 'node:crypto';

export type Canonicalization = 'simple' | 'relaxed';

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const TAB = 0x09;
const CRLF = Buffer.from('\r\n', 'latin1');
const SPACE = Buffer.from(' ', 'latin1');

// ---- headers ------------------------------------------------------------------------------------

/**
 * One header field (`Name: value`, folds kept, no final CRLF) in canonical form, without the CRLF
 * that ends it in the hash input. simple: unchanged. relaxed: name lower-cased, unfolded, every run
 * of SP/HTAB one SP, none around the colon or at the end.
 */
export function canonicalHeader(field: string, mode: Canonicalization): string {
  if (mode === 'simple') return field;
  const colon = field.indexOf(':');
  const name = field.slice(0, colon).replace(/[ \t]+$/, '').toLowerCase();
  const value = field
    .slice(colon + 1)
    .replace(/\r\n/g, '')
    .replace(/[ \t]+/g, ' ')
    .replace(/^ | $/g, '');
  return `${name}:${value}`;
}

// ---- bodies -------------------------------------------------------------------------------------

/** Feeds a hash with the canonical form of a body given in chunks. */
export interface BodyCanonicalizer {
  update(chunk: Buffer): void;
  /** Ends the body (adds what the canonical form needs at its end) and returns the hash. */
  end(): Hash;
}

export function bodyCanonicalizer(mode: Canonicalization, hash: Hash): BodyCanonicalizer {
  return mode === 'simple' ? simpleBody(hash) : relaxedBody(hash);
}

/**
 * simple (§3.4.3): the body as is, except that empty lines at its end are dropped and an empty
 * body becomes one CRLF. Streaming: the trailing run of CR/LF octets of what has been seen so far
 * is held back; it is hashed only when more content follows it. At the end exactly one CRLF is
 * hashed in its place (a last line without CRLF gets one too).
 */
function simpleBody(hash: Hash): BodyCanonicalizer {
  let held: Buffer[] = [];
  return {
    update(chunk) {
      let end = chunk.length;
      while (end > 0 && (chunk[end - 1] === LF || chunk[end - 1] === CR)) end--;
      if (end === 0) {
        if (chunk.length > 0) held.push(chunk);
        return;
      }
      for (const h of held) hash.update(h);
      held = [];
      hash.update(end === chunk.length ? chunk : chunk.subarray(0, end));
      if (end < chunk.length) held.push(chunk.subarray(end));
    },
    end() {
      hash.update(CRLF);
      return hash;
    },
  };
}

/**
 * relaxed (§3.4.4): SP/HTAB at the end of a line dropped, every other run of them one SP, empty lines
 * at the end dropped, a missing final CRLF added; an empty body stays empty. Streaming state: a
 * pending space (whitespace seen since the last content octet of the line) and a count of pending
 * line ends (written only when content follows, so trailing empty lines vanish).
 *
 * A chunk without SP or HTAB (base64 attachments: most of a large body) changes only at its edges,
 * so it is found with two native searches and hashed as one slice; other chunks go octet by octet.
 */
function relaxedBody(hash: Hash): BodyCanonicalizer {
  let pendingSpace = false;
  let pendingLineEnds = 0;
  let hadContent = false;
  let out = Buffer.allocUnsafe(0);

  const writeLineEnds = (): void => {
    if (pendingLineEnds === 0) return;
    const ends = Buffer.allocUnsafe(2 * pendingLineEnds);
    for (let i = 0; i < ends.length; i += 2) {
      ends[i] = CR;
      ends[i + 1] = LF;
    }
    hash.update(ends);
    pendingLineEnds = 0;
  };

  /** No SP/HTAB in `chunk`: line ends around its content are deferred, the content goes as is. */
  const plainChunk = (chunk: Buffer): void => {
    let first = 0;
    for (; first < chunk.length && (chunk[first] === CR || chunk[first] === LF); first++) {
      if (chunk[first] === LF) {
        pendingLineEnds++;
        pendingSpace = false; // whitespace before a line end is dropped
      }
    }
    if (first === chunk.length) return;
    let last = chunk.length;
    while (chunk[last - 1] === CR || chunk[last - 1] === LF) last--;
    writeLineEnds();
    if (pendingSpace) hash.update(SPACE);
    pendingSpace = false;
    hash.update(first === 0 && last === chunk.length ? chunk : chunk.subarray(first, last));
    hadContent = true;
    for (let i = last; i < chunk.length; i++) if (chunk[i] === LF) pendingLineEnds++;
  };

  return {
    update(chunk) {
      if (chunk.indexOf(SP) === -1 && chunk.indexOf(TAB) === -1) {
        plainChunk(chunk);
        return;
      }
      // Worst case: every pending line end plus every input octet (a lone space grows nothing).
      const need = chunk.length + 2 * pendingLineEnds + 1;
      if (out.length < need) out = Buffer.allocUnsafe(Math.max(need, 16 * 1024));
      let o = 0;
      let runStart = -1; // start of a run of plain content octets copied in one go
      const flushRun = (until: number): void => {
        if (runStart >= 0) {
          o += chunk.copy(out, o, runStart, until);
          runStart = -1;
        }
      };
      for (let i = 0; i < chunk.length; i++) {
        const b = chunk[i];
        if (b === SP || b === TAB) {
          flushRun(i);
          pendingSpace = true;
        } else if (b === LF) {
          flushRun(i);
          pendingSpace = false;
          pendingLineEnds++;
        } else if (b === CR) {
          flushRun(i); // part of a CRLF: its LF counts the line end
        } else if (runStart < 0) {
          if (pendingLineEnds > 0) {
            if (out.length < o + 2 * pendingLineEnds + (chunk.length - i) + 1) {
              const bigger = Buffer.allocUnsafe(o + 2 * pendingLineEnds + (chunk.length - i) + 1);
              out.copy(bigger, 0, 0, o);
              out = bigger;
            }
            for (; pendingLineEnds > 0; pendingLineEnds--) {
              out[o++] = CR;
              out[o++] = LF;
            }
          }
          if (pendingSpace) {
            out[o++] = SP;
            pendingSpace = false;
          }
          hadContent = true;
          runStart = i;
        }
      }
      flushRun(chunk.length);
      if (o > 0) hash.update(out.subarray(0, o));
    },
    end() {
      if (hadContent) hash.update(CRLF);
      return hash;
    },
  };
}

// ---- line ends ----------------------------------------------------------------------------------

/**
 * Bare CR and bare LF → CRLF, and a CRLF after an unterminated last line: what the data stage does to
 * a text body before it goes on the wire (DATA and BDAT alike). The signer hashes and sends these
 * bytes, so a receiver gets exactly what was signed. A chunk that needs no change is returned as is
 * (the common case: builders write CRLF).
 */
export class LineEndNormaliser {
  /** The last octet seen was a CR whose LF has not been seen yet. */
  private crPending = false;
  /** The last octet passed on was an LF (or nothing has been: an empty body stays empty). */
  private atLineStart = true;

  push(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk;
    const out = this.isClean(chunk) ? chunk : this.rewrite(chunk);
    this.crPending = chunk[chunk.length - 1] === CR;
    this.atLineStart = out[out.length - 1] === LF;
    return out;
  }

  /** What the body still needs: the LF of a CR that ended it, or a whole CRLF. */
  end(): Buffer {
    const tail = this.crPending ? '\n' : this.atLineStart ? '' : '\r\n';
    this.crPending = false;
    this.atLineStart = true;
    return Buffer.from(tail, 'latin1');
  }

  private rewrite(chunk: Buffer): Buffer {
    const out = Buffer.allocUnsafe(chunk.length * 2 + 1);
    let o = 0;
    if (this.crPending && chunk[0] !== LF) out[o++] = LF; // the CR before was bare
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (b === LF) {
        const previous = i > 0 ? chunk[i - 1] : this.crPending ? CR : undefined;
        if (previous !== CR) out[o++] = CR;
        out[o++] = LF;
      } else if (b === CR) {
        out[o++] = CR;
        if (i + 1 < chunk.length && chunk[i + 1] !== LF) out[o++] = LF;
      } else {
        out[o++] = b;
      }
    }
    return out.subarray(0, o);
  }

  /** Every LF preceded by CR and every CR followed by LF (native searches, no octet loop). */
  private isClean(chunk: Buffer): boolean {
    for (let i = chunk.indexOf(LF); i !== -1; i = chunk.indexOf(LF, i + 1)) {
      if (i === 0 ? !this.crPending : chunk[i - 1] !== CR) return false;
    }
    if (this.crPending && chunk[0] !== LF) return false;
    for (let i = chunk.indexOf(CR); i !== -1; i = chunk.indexOf(CR, i + 1)) {
      if (i + 1 < chunk.length && chunk[i + 1] !== LF) return false;
    }
    return true;
  }
}
