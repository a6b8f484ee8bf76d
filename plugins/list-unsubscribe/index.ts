/**
 * One-click unsubscribe (RFC 2369, RFC 8058) as a message transform: every message gets
 * `List-Unsubscribe: <mailto:…>, <https://…/TOKEN>` and, with a URL, `List-Unsubscribe-Post:
 * List-Unsubscribe=One-Click`. TOKEN identifies the recipient (and an optional list) with an HMAC,
 * so the endpoint needs no database lookup to trust it: `verifyUnsubscribeToken(token, secret)`.
 * Listed before `dkim` in `plugins`, its fields are there when DKIM signs (RFC 8058 §4 wants both
 * covered by a signature).
 */
import {
  definePlugin, isEnvRef, type BuiltForTransform, type MessageTransform, type Plugin, type TransformContext,
} from '../../api.js';
import { ListUnsubscribeError } from './errors.js';
import { secretBytes, unsubscribeToken, type UnsubscribeSecret } from './token.js';

export { ListUnsubscribeError };
export { unsubscribeToken, verifyUnsubscribeToken, type UnsubscribeSecret, type UnsubscribeTokenData } from './token.js';

export interface ListUnsubscribeOptions {
  /** The one-click endpoint, `https://…{token}…`; the POST carries nothing else, so `{token}` is
   *  required. Adds List-Unsubscribe-Post. */
  readonly url?: string;
  /** An address (`unsubscribe@example.com`) or a `mailto:` URI; `{token}` may appear in it. */
  readonly mailto?: string;
  /** The HMAC key (at least 16 bytes): a string, a Buffer or `env('NAME')`. */
  readonly secret: UnsubscribeSecret;
  /** A list id carried in the token: fixed, or chosen per message (e.g. from `ctx.row`). */
  readonly list?: string | ((ctx: TransformContext) => string | undefined);
  /** Where env() secrets are read from (default `process.env`, when first needed). */
  readonly environ?: Readonly<Record<string, string | undefined>>;
}

const TOKEN = '{token}';
const MAX_LINE = 998;
const UNSAFE_IN_URI = /[\s<>"\u0000-\u001f\u007f]/;

export interface ListUnsubscribePlugin extends Plugin {
  readonly transforms: readonly MessageTransform[];
  /** What the config loader knows: the environment env() secrets are read from (when the
   *  `environ` option is not set). */
  configure(context: { readonly environ?: Readonly<Record<string, string | undefined>> }): void;
}

export default function listUnsubscribe(options: ListUnsubscribeOptions): ListUnsubscribePlugin {
  const { url, mailto } = checkOptions(options);
  let secret: Buffer | undefined;
  let environ = options.environ;

  const transform: MessageTransform = {
    name: 'list-unsubscribe',
    built(built: BuiltForTransform, ctx: TransformContext): BuiltForTransform {
      try {
        const existing = built.headers.find((f) => /^list-unsubscribe(-post)?[ \t]*:/i.test(f));
        if (existing !== undefined) {
          const name = existing.slice(0, existing.indexOf(':')).trim();
          throw new ListUnsubscribeError(name, 'the message already has one; drop it (or nodemailer\'s list.unsubscribe) or the list-unsubscribe plugin');
        }
        secret ??= secretBytes(options.secret, environ ?? process.env, 'listUnsubscribe.secret');
        const list = typeof options.list === 'function' ? options.list(ctx) : options.list;
        const token = unsubscribeToken(recipientOf(ctx), secret, list);
        const uris = [mailto, url].filter((u): u is string => u !== undefined).map((u) => `<${u.split(TOKEN).join(token)}>`);
        const fields = [fold('List-Unsubscribe', uris), ...(url === undefined ? [] : ['List-Unsubscribe-Post: List-Unsubscribe=One-Click'])];
        return { headers: [...built.headers, ...fields], body: built.body };
      } catch (error) {
        built.body.destroy();
        throw error;
      }
    },
  };
  return definePlugin({
    name: 'list-unsubscribe',
    transforms: [transform],
    configure(context: { readonly environ?: Readonly<Record<string, string | undefined>> }) {
      environ = options.environ ?? context.environ;
      secret = undefined;
    },
  });
}

/** The batch row's recipient; else the envelope's only one. Several without a row: whose token? */
function recipientOf(ctx: TransformContext): string {
  if (ctx.recipient !== undefined) return ctx.recipient;
  const to = ctx.envelope.to;
  if (to.length === 1) return to[0]!;
  throw new ListUnsubscribeError(
    'recipient',
    to.length === 0
      ? 'the message has no recipient to make an unsubscribe token for'
      : `the message has ${to.length} recipients and no batch row recipient; one-click unsubscribe needs one message per recipient`,
  );
}

/** `Name: <a>, <b>` with a fold between URIs when the line would pass 78 octets. */
function fold(name: string, uris: readonly string[]): string {
  let out = `${name}:`;
  let line = out.length;
  uris.forEach((uri, i) => {
    const piece = i < uris.length - 1 ? `${uri},` : uri;
    if (i > 0 && line + 1 + piece.length > 78) {
      out += `\r\n ${piece}`;
      line = 1 + piece.length;
    } else {
      out += ` ${piece}`;
      line += 1 + piece.length;
    }
    if (line > MAX_LINE) throw new ListUnsubscribeError(name, `a URI makes a header line of ${line} octets (limit ${MAX_LINE}); shorten the URL or the list id`);
  });
  return out;
}

function checkOptions(options: ListUnsubscribeOptions): { url?: string; mailto?: string } {
  if (options === null || typeof options !== 'object') throw new ListUnsubscribeError('listUnsubscribe', 'expected options { url, mailto, secret }');
  const known = new Set(['url', 'mailto', 'secret', 'list', 'environ']);
  for (const key of Object.keys(options)) if (!known.has(key)) throw new ListUnsubscribeError(`listUnsubscribe.${key}`, 'unknown option');
  if (options.url === undefined && options.mailto === undefined) throw new ListUnsubscribeError('listUnsubscribe', 'needs url (one-click, RFC 8058) or mailto, or both');
  if (options.secret === undefined) throw new ListUnsubscribeError('listUnsubscribe.secret', 'required: the key that signs unsubscribe tokens');
  if (!isEnvRef(options.secret)) secretBytes(options.secret, {}, 'listUnsubscribe.secret');
  if (options.list !== undefined && typeof options.list !== 'function' && (typeof options.list !== 'string' || options.list === '' || /[\u0000-\u001f]/.test(options.list))) {
    throw new ListUnsubscribeError('listUnsubscribe.list', `expected a list id or a function of the message context, got ${JSON.stringify(options.list)}`);
  }
  let url: string | undefined;
  if (options.url !== undefined) {
    const u = options.url;
    if (typeof u !== 'string' || UNSAFE_IN_URI.test(u)) throw new ListUnsubscribeError('listUnsubscribe.url', `not a URL that can stand in a header: ${JSON.stringify(u)}`);
    if (!u.includes(TOKEN)) throw new ListUnsubscribeError('listUnsubscribe.url', `must contain ${TOKEN}: the one-click POST carries nothing else that says who unsubscribes`);
    let parsed: URL;
    try {
      parsed = new URL(u.split(TOKEN).join('x'));
    } catch {
      throw new ListUnsubscribeError('listUnsubscribe.url', `not a URL: ${JSON.stringify(u)}`);
    }
    if (parsed.protocol !== 'https:') throw new ListUnsubscribeError('listUnsubscribe.url', `must be https (RFC 8058 §3), got ${parsed.protocol.slice(0, -1)}`);
    url = u;
  }
  let mailto: string | undefined;
  if (options.mailto !== undefined) {
    const m = options.mailto;
    if (typeof m !== 'string' || UNSAFE_IN_URI.test(m)) throw new ListUnsubscribeError('listUnsubscribe.mailto', `not an address or mailto: URI that can stand in a header: ${JSON.stringify(m)}`);
    mailto = /^mailto:/i.test(m) ? m : `mailto:${m}`;
    if (!/^mailto:[^@?]+@[^@?]+(\?.*)?$/i.test(mailto)) throw new ListUnsubscribeError('listUnsubscribe.mailto', `expected an address like unsubscribe@example.com, got ${JSON.stringify(m)}`);
  }
  return { url, mailto };
}
