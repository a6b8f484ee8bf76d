/**
 * Domains and the From field. DKIM puts domains in `d=` and `i=` as A-labels (RFC 6376 §3.5 with
 * RFC 5890); keys are chosen by the domain of the one mailbox in From (RFC 5322 §3.6.2: exactly one
 * From field; DMARC aligns with its domain).
 */
import { domainToASCII } from 'node:url';

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** A domain (U-label or A-label, any case, an optional final dot) → lower-case A-labels, or
 *  undefined when it is not a host name (a domain literal, an empty label, a bad character). */
export function toALabels(domain: string): string | undefined {
  const bare = domain.endsWith('.') ? domain.slice(0, -1) : domain;
  if (bare === '' || /[\s\0]/.test(bare)) return undefined;
  const ascii = domainToASCII(bare);
  if (ascii === '' || ascii.length > 253) return undefined;
  return ascii.split('.').every((label) => LABEL.test(label)) ? ascii : undefined;
}

/** A DKIM selector: dot-separated labels of letters, digits and hyphens (RFC 6376 §3.1). */
export function isSelector(selector: string): boolean {
  return selector.length <= 253 && selector.split('.').every((label) => /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/.test(label));
}

/** `d` is `domain` itself or one of its parents (both in A-label form). */
export function isWithin(domain: string, d: string): boolean {
  return domain === d || domain.endsWith(`.${d}`);
}

export type FromDomain = { readonly domain: string } | { readonly error: string };

/**
 * The domain of the single mailbox in a From field value (folds allowed; display names, quoted
 * strings, comments and RFC 6532 UTF-8 understood). Several mailboxes, a group, or no `@` is an
 * error: which domain would sign is then not well defined, and DMARC rejects such mail anyway.
 */
export function fromDomain(value: string): FromDomain {
  const scanned = mailboxes(value.replace(/\r\n/g, ''));
  if ('error' in scanned) return scanned;
  if (scanned.list.length !== 1) {
    return { error: scanned.list.length === 0 ? 'From has no address' : `From has ${scanned.list.length} mailboxes; DKIM needs exactly one to choose the signing domain` };
  }
  const address = scanned.list[0]!;
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return { error: `From address ${JSON.stringify(address)} has no domain` };
  return { domain: address.slice(at + 1) };
}

/** The addr-specs of a mailbox-list: comments dropped, quoted strings kept whole, `<…>` preferred. */
function mailboxes(value: string): { readonly list: readonly string[] } | { readonly error: string } {
  const list: string[] = [];
  let plain = ''; // the current mailbox's text outside comments (quoted strings included)
  let angle: string | undefined; // the text inside <…>, once seen
  let inAngle = false;
  const close = (): void => {
    const address = (angle ?? plain).replace(/\s+/g, '');
    if (address !== '') list.push(address);
    plain = '';
    angle = undefined;
  };
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (ch === '(') {
      let depth = 1;
      for (i++; i < value.length && depth > 0; i++) {
        if (value[i] === '\\') i++;
        else if (value[i] === '(') depth++;
        else if (value[i] === ')') depth--;
      }
      if (depth > 0) return { error: 'From has an unclosed comment' };
      i--;
      plain += ' ';
    } else if (ch === '"') {
      let j = i + 1;
      for (; j < value.length && value[j] !== '"'; j++) if (value[j] === '\\') j++;
      if (j >= value.length) return { error: 'From has an unclosed quoted string' };
      const quoted = value.slice(i, j + 1);
      if (inAngle) angle += quoted;
      else plain += quoted;
      i = j;
    } else if (inAngle) {
      if (ch === '>') inAngle = false;
      else if (ch === '<') return { error: 'From has a "<" inside an angle address' };
      else angle += ch;
    } else if (ch === '<') {
      if (angle !== undefined) return { error: 'From has two angle addresses in one mailbox' };
      inAngle = true;
      angle = '';
    } else if (ch === ',') {
      close();
    } else if (ch === ':' || ch === ';') {
      return { error: 'From uses group syntax; it must name one mailbox' };
    } else if (angle === undefined) {
      plain += ch;
    } else if (!/\s/.test(ch)) {
      return { error: 'From has text after its angle address' };
    }
  }
  if (inAngle) return { error: 'From has an unclosed "<"' };
  close();
  return { list };
}
