/**
 * Delivery Status Notifications (RFC 3461): RET and ENVID on MAIL; NOTIFY and ORCPT on each RCPT,
 * per recipient. Reads mailstage's shape (`{ ret, envid }`, `{ notify, orcpt }`) and nodemailer's
 * (`{ id, return, notify, recipient }`). Without DSN on the server the parameters are left out,
 * or, with `strict`, the send fails.
 */
import {
  definePlugin, encodeXtext, SmtpInvalidInputError, SmtpNotSupportedError,
  type EnvelopeContext, type EnvelopeExtension, type Plugin,
} from '../../api.js';

export interface DsnPluginOptions {
  /** Fail when the server does not offer DSN instead of sending without it. */
  readonly strict?: boolean;
}

type Dsn = Readonly<Record<string, unknown>>;
const NOTIFY = new Set(['SUCCESS', 'FAILURE', 'DELAY']);
const MAIL_KEYS = new Set(['ret', 'envid', 'return', 'id']);
const RCPT_KEYS = new Set(['notify', 'orcpt', 'recipient']);

export default function dsn(options: DsnPluginOptions = {}): Plugin {
  const offered = (ctx: EnvelopeContext, dsnOption: Dsn, keys: Set<string>): boolean => {
    if (!Object.keys(dsnOption).some((k) => keys.has(k) && dsnOption[k] !== undefined)) return false;
    if (ctx.esmtp && ctx.hasExtension('dsn')) return true;
    if (options.strict) throw new SmtpNotSupportedError('DSN requested and the server does not offer DSN', { stage: 'mail' });
    return false;
  };
  const extension: EnvelopeExtension = {
    name: 'dsn',
    option: 'dsn',
    mailParams(ctx, value) {
      const o = check(value, MAIL_KEYS, RCPT_KEYS);
      if (!o || !offered(ctx, o, MAIL_KEYS)) return undefined;
      const out: string[] = [];
      const ret = o.ret ?? o.return;
      if (ret !== undefined) {
        const r = String(ret).toUpperCase();
        const mapped = r === 'HEADERS' ? 'HDRS' : r;
        if (mapped !== 'FULL' && mapped !== 'HDRS') throw new SmtpInvalidInputError('dsn.ret', `expected FULL or HDRS, got ${String(ret)}`);
        out.push(`RET=${mapped}`);
      }
      const envid = o.envid ?? o.id;
      if (envid !== undefined) {
        const id = String(envid);
        if (id.length === 0 || id.length > 100 || /[^\x20-\x7e]/.test(id)) throw new SmtpInvalidInputError('dsn.envid', 'expected 1-100 printable ASCII characters');
        out.push(`ENVID=${encodeXtext(id)}`);
      }
      return out;
    },
    rcptParams(ctx, value) {
      const o = check(value, RCPT_KEYS, MAIL_KEYS);
      if (!o || !offered(ctx, o, RCPT_KEYS)) return undefined;
      const out: string[] = [];
      if (o.notify !== undefined) {
        const list = (Array.isArray(o.notify) ? o.notify : String(o.notify).split(',')).map((n) => String(n).trim().toUpperCase());
        const never = list.includes('NEVER');
        if (list.length === 0 || (never && list.length > 1) || (!never && !list.every((n) => NOTIFY.has(n)))) {
          throw new SmtpInvalidInputError('dsn.notify', `expected NEVER alone or any of SUCCESS, FAILURE, DELAY; got ${list.join(',')}`);
        }
        out.push(`NOTIFY=${[...new Set(list)].join(',')}`);
      }
      const orcpt = o.orcpt ?? o.recipient;
      if (orcpt !== undefined) {
        const text = String(orcpt);
        if (/[\x00-\x1f\x7f]/.test(text) || text.trim() === '') throw new SmtpInvalidInputError('dsn.orcpt', 'expected an address without control characters');
        const m = /^([A-Za-z0-9-]+);(.+)$/.exec(text);
        out.push(`ORCPT=${m ? `${m[1]};${encodeXtext(m[2]!)}` : `rfc822;${encodeXtext(text)}`}`);
      }
      return out;
    },
  };
  return definePlugin({ name: 'dsn', envelopeExtensions: [extension] });
}

/** The option object, with every key known to one side or the other. */
function check(value: unknown, own: Set<string>, other: Set<string>): Dsn | undefined {
  if (value === undefined || value === null || value === false) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw new SmtpInvalidInputError('dsn', 'expected an object');
  for (const k of Object.keys(value)) {
    if (!own.has(k) && !other.has(k)) throw new SmtpInvalidInputError('dsn', `unknown key ${JSON.stringify(k)} (known: ${[...own, ...other].join(', ')})`);
  }
  return value as Dsn;
}
