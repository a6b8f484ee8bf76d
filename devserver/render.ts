/**
 * A message's HTML made into the document the inbox shows in its frame. Mail HTML is hostile: it
 * may carry scripts, event handlers, forms, tracking pixels and remote style sheets. Three layers
 * keep it in its place, each enough on its own for scripts:
 *
 * 1. The frame's `sandbox` attribute (in the page) has no `allow-scripts` and no
 *    `allow-same-origin`: nothing in it runs, and it cannot reach the inbox's API as the inbox.
 * 2. This document is served with a Content-Security-Policy that sandboxes it too (so opening its
 *    URL directly in a tab is no way around 1) and allows no load but images from the inbox itself
 *    (`cid:` parts) and `data:` URLs: remote images, style sheets, fonts, frames, media and form
 *    targets are blocked by the browser before any request leaves it.
 * 3. `cid:` links are rewritten to the inbox's own URLs for those parts, so embedded images show
 *    while every other URL stays blocked by 2.
 *
 * Links open in a new tab (`<base target="_blank">`, `allow-popups-to-escape-sandbox`), without a
 * referrer, only when clicked.
 */

/** The policy of the rendered message (see 2 above). */
export const MESSAGE_CSP = [
  "default-src 'none'",
  "img-src 'self' data:",
  "style-src 'unsafe-inline'",
  'font-src data:',
  "form-action 'none'",
  "base-uri 'none'",
  "frame-ancestors 'self'",
  'sandbox allow-popups allow-popups-to-escape-sandbox',
].join('; ');

/** `cid:` references in attribute values and CSS `url()`, with what precedes them. */
const CID_LINK = /(=\s*["']?|url\(\s*["']?)cid:([^"'\s)>]+)/gi;

/**
 * The document for the frame: a head that fixes the charset, the link target and the referrer
 * policy, then the message's HTML as it is (the browser's parser puts its own `<html>`, `<head>`
 * and `<body>` in place), with `cid:` links pointing at `inlineUrl(index)`.
 */
export function renderMessageHtml(html: string, cids: ReadonlyMap<string, number>, inlineUrl: (index: number) => string): string {
  const body = html.replace(CID_LINK, (whole, lead: string, cid: string) => {
    const index = cids.get(safeDecode(cid)) ?? cids.get(cid);
    return index === undefined ? whole : `${lead}${inlineUrl(index)}`;
  });
  return `<!DOCTYPE html><meta charset="utf-8"><meta name="referrer" content="no-referrer"><base target="_blank">\n${body}`;
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
