/**
 * Headers for handing a part of a hostile message to the browser: a Content-Type that is a plain
 * `type/subtype` token or else `application/octet-stream`, and a Content-Disposition whose file
 * name cannot escape the header (quotes, CR/LF), name a folder (`../`, `\`), hide its extension
 * (bidi overrides) or be empty. RFC 6266: an ASCII `filename` for old clients and `filename*`
 * (RFC 8187, UTF-8) with the real name.
 */

const TOKEN_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;

/** The part's type when it is a well-formed `type/subtype`, else `application/octet-stream`. */
export function safeContentType(contentType: string | undefined): string {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  return TOKEN_TYPE.test(type) ? type : 'application/octet-stream';
}

/** Image types a browser shows in an `<img>`; anything else is never served inline. */
export function isInlineImage(contentType: string): boolean {
  return /^image\/(png|jpeg|gif|webp|avif|bmp|x-icon|vnd\.microsoft\.icon|svg\+xml)$/.test(contentType);
}

const MAX_NAME = 200;

/**
 * The file name a download is saved as: the last path segment of what the message says, with
 * controls, bidi overrides and characters that file systems or headers choke on replaced, never
 * empty, never a dot file, at most 200 characters (the extension kept).
 */
export function safeFilename(name: string | null | undefined, fallback: string): string {
  const last = (name ?? '').split(/[/\\]/).pop() ?? '';
  let clean = last
    .normalize('NFC')
    .replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069<>:"|?*]/g, '_')
    .trim()
    .replace(/^[.\s]+/, '');
  if (clean === '') clean = fallback;
  if (clean.length > MAX_NAME) {
    const dot = clean.lastIndexOf('.');
    const ext = dot > 0 && clean.length - dot <= 16 ? clean.slice(dot) : '';
    clean = clean.slice(0, MAX_NAME - ext.length) + ext;
  }
  return clean;
}

/** `attachment; filename="ascii"; filename*=UTF-8''percent-encoded` for a safe name. */
export function attachmentDisposition(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]/g, '_').replace(/["\\%]/g, '_');
  const encoded = encodeURIComponent(filename).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
