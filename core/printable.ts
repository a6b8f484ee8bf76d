/**
 * The one escaper for text on its way to a terminal. Anything a server, a batch row or a message
 * says (a greeting, an EHLO keyword, an error reply, a certificate subject, a subject line in the
 * progress display) may carry ESC/CSI/OSC sequences that a terminal would obey: move the cursor,
 * rewrite earlier lines, set the window title, write to the clipboard (OSC 52), hide text. Every
 * such string goes through `printable()` before it is written to stdout or stderr.
 *
 * Escaped: C0 controls (U+0000–U+001F), DEL (U+007F), C1 controls (U+0080–U+009F, which some
 * terminals read as 8-bit CSI/OSC), and the Unicode bidirectional overrides and isolates
 * (U+202A–U+202E, U+2066–U+2069) that can make a line display other than it reads. A tab may be
 * kept; a newline only where the caller prints several lines on purpose.
 */

export interface PrintableOptions {
  /** Keep `\n` as a line break (multi-line reports). Default false: it is shown as `\n`. */
  readonly newlines?: boolean;
  /** Keep `\t`. Default false. */
  readonly tabs?: boolean;
}

// One pass over the string; the regex is only the fast path that finds nothing in clean text.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const UNSAFE_ALL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeOne(ch: string): string {
  const named = NAMED[ch];
  if (named !== undefined) return named;
  const code = ch.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).toUpperCase().padStart(2, '0')}` : `\\u${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** `text` with every terminal-control character shown as an escape (`\x1B`, `\r`, `\u202E`). */
export function printable(text: unknown, options: PrintableOptions = {}): string {
  const s = typeof text === 'string' ? text : String(text);
  if (!UNSAFE.test(s)) return s;
  return s.replace(UNSAFE_ALL, (ch) => {
    if (ch === '\n' && options.newlines) return ch;
    if (ch === '\t' && options.tabs) return ch;
    return escapeOne(ch);
  });
}

const JSON_UNSAFE = /[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * JSON for a terminal: `JSON.stringify` escapes C0 controls but leaves DEL, C1 controls and bidi
 * overrides as they are; here they become `\uXXXX` escapes too, so the output is still valid JSON
 * and parses back to the same value.
 */
export function printableJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(JSON_UNSAFE, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
