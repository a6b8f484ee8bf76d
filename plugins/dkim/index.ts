/**
 * DKIM signing (RFC 6376) with RSA-SHA256 and Ed25519-SHA256 (RFC 8463), keys per RFC 8301, as a
 * message transform: after a message is built, every key whose domain is the From domain (or a
 * parent of it, or `'*'`) adds a DKIM-Signature field on top. Several keys → several signatures
 * (RSA + Ed25519 dual signing). The body is read once, hashed as it streams and held (in memory, or
 * in an unlinked temporary file past `spoolThreshold`) until the signed header can go out first.
 *
 * Canonicalization, header selection and signing are this plugin's own (canonicalize.ts,
 * signature.ts) over node:crypto; README.md says why not a library.
 */
import { createHash } from 'node:crypto';
import os from 'node:os';
import {
  definePlugin, isEnvRef, type BuiltForTransform, type MessageTransform, type Plugin, type TransformContext,
} from '../../api.js';
import { bodyCanonicalizer, type Canonicalization } from './canonicalize.js';
import { fromDomain, isWithin, toALabels } from './domain.js';
import { DkimKeyError, DkimSigningError, DkimSpoolError } from './errors.js';
import {
  checkKeyOptions, dnsRecord, loadKey, parseIdentity, type DkimKeyOptions, type DkimKeyRecord, type KeyContext, type SigningKey,
} from './keys.js';
import { signatureField, signedNames } from './signature.js';
import { spoolBody } from './spool.js';

export { DkimKeyError, DkimSigningError, DkimSpoolError };
export type { DkimKeyOptions, DkimKeyRecord, DkimAlgorithm, PrivateKeySource } from './keys.js';

export type DkimCanonicalization = `${Canonicalization}/${Canonicalization}`;

export interface DkimOptions {
  /** The signing keys; every key that matches a message's From domain signs it. */
  readonly keys: readonly DkimKeyOptions[];
  /** Header/body canonicalization (RFC 6376 §3.4). Default `'relaxed/relaxed'`. */
  readonly canonicalization?: DkimCanonicalization;
  /** The header fields to sign, when present (default: DEFAULT_SIGNED_HEADERS). From is required
   *  and is always over-signed. */
  readonly headers?: readonly string[];
  /** Adds `x=` this many seconds after `t=`. */
  readonly expiresIn?: number;
  /** Adds `t=` (default true; `x=` needs it). */
  readonly timestamp?: boolean;
  /** A message whose From domain no key matches: refused (default) or sent without a signature. */
  readonly onNoKey?: 'refuse' | 'send-unsigned';
  /** Where relative `privateKey: { path }` files are read from (default: the folder the config
   *  loader reports through `configure()`, else the current directory). */
  readonly baseDir?: string;
  /** Where env() keys are read from (default `process.env`, when the key is first needed). */
  readonly environ?: Readonly<Record<string, string | undefined>>;
  /** Bodies larger than this many bytes are spooled to a temporary file (default 1 MiB). */
  readonly spoolThreshold?: number;
  /** The spool folder (default `os.tmpdir()`). */
  readonly tmpDir?: string;
  /** The clock for `t=`/`x=` (ms since the epoch); for tests and replays. */
  readonly now?: () => number;
}

export interface PluginConfigureContext {
  readonly baseDir?: string;
  readonly environ?: Readonly<Record<string, string | undefined>>;
}

export interface DkimPlugin extends Plugin {
  readonly name: 'dkim';
  readonly transforms: readonly MessageTransform[];
  /** Loads and checks every key (readable, RSA ≥ 1024 bits or Ed25519) and returns the DNS TXT
   *  record to publish for each; throws the first `DkimKeyError`. For `mailstage dkim record` and
   *  `config check`. */
  records(): Promise<readonly DkimKeyRecord[]>;
  /** Checks every key and reports each one's record or error, without stopping at the first. */
  checkKeys(): Promise<readonly ({ readonly record: DkimKeyRecord } | { readonly error: DkimKeyError })[]>;
  /** What the config loader knows: the config file's folder (for relative key paths when the
   *  `baseDir` option is not set) and the environment env() markers are read from (when the
   *  `environ` option is not set). Forgets keys loaded so far. */
  configure(context: PluginConfigureContext): void;
}

/** The h= list of the contract (API.md), signed when present. */
export const DEFAULT_SIGNED_HEADERS: readonly string[] = [
  'From', 'To', 'Cc', 'Subject', 'Date', 'Message-ID', 'Reply-To', 'MIME-Version', 'Content-Type',
  'List-Unsubscribe', 'List-Unsubscribe-Post',
];

const CANONICALIZATIONS = new Set(['relaxed/relaxed', 'simple/simple', 'relaxed/simple', 'simple/relaxed']);
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;
/** One header field as the transform gets it: a name, a colon, and lines joined only by folds. */
const FIELD = /^[\x21-\x39\x3b-\x7e]+[ \t]*:[^\r\n\0]*(?:\r\n[ \t][^\r\n\0]*)*$/;
const DEFAULT_SPOOL_THRESHOLD = 1024 * 1024;

export default function dkim(options: DkimOptions): DkimPlugin {
  const settings = checkOptions(options);
  let configured: PluginConfigureContext = {};
  /** Keys by index, each loaded when a message first needs it (or by records()). A failure is not
   *  kept, so a fixed file or variable is picked up; and one tenant's broken key does not stop
   *  another tenant's mail. */
  let loaded = new Map<number, Promise<SigningKey>>();

  const keyContext = (): KeyContext => ({
    baseDir: options.baseDir ?? configured.baseDir ?? process.cwd(),
    environ: options.environ ?? configured.environ ?? process.env,
  });
  const key = (index: number): Promise<SigningKey> => {
    let promise = loaded.get(index);
    if (promise === undefined) {
      const cache = loaded;
      promise = loadKey(options.keys[index]!, index, keyContext()).catch((error: unknown) => {
        cache.delete(index);
        throw error;
      });
      cache.set(index, promise);
    }
    return promise;
  };

  const transform: MessageTransform = {
    name: 'dkim',
    async built(built: BuiltForTransform, _ctx: TransformContext): Promise<BuiltForTransform> {
      let chosen: { readonly domain: string; readonly keys: readonly SigningKey[] };
      try {
        const { domain, indices } = chooseKeys(built.headers, settings.keys);
        chosen = { domain, keys: await Promise.all(indices.map(key)) };
      } catch (error) {
        built.body.destroy();
        throw error;
      }
      if (chosen.keys.length === 0) {
        if (settings.onNoKey === 'send-unsigned') return built;
        built.body.destroy();
        throw new DkimSigningError('From', `no DKIM key for ${chosen.domain} (keys: ${settings.keys.map((k) => k.domain).join(', ')}); add one or set onNoKey: 'send-unsigned'`);
      }
      return sign(built, chosen.domain, chosen.keys, settings);
    },
  };

  const checkKeys = async () => {
    const ctx = keyContext();
    return Promise.all(options.keys.map(async (k, i) => {
      try {
        return { record: dnsRecord(await loadKey(k, i, ctx)) };
      } catch (error) {
        if (error instanceof DkimKeyError) return { error };
        throw error;
      }
    }));
  };

  return definePlugin({
    name: 'dkim' as const,
    transforms: [transform],
    records: async () => (await Promise.all(options.keys.map((_, i) => key(i)))).map(dnsRecord),
    checkKeys,
    configure(context: PluginConfigureContext) {
      configured = { ...context };
      loaded = new Map();
    },
  });
}

/** Reads the body to its end (hashing and spooling it), then puts one signature per key on top. */
async function sign(built: BuiltForTransform, fromDomain: string, keys: readonly SigningKey[], settings: Settings): Promise<BuiltForTransform> {
  const names = signedNames(built.headers, settings.headers, ['from']);
  const canonical = bodyCanonicalizer(settings.body, createHash('sha256'));
  const body = await spoolBody(built.body, (chunk) => canonical.update(chunk), settings.spool);
  try {
    const bodyHash = canonical.end().digest('base64');
    const seconds = Math.floor(settings.now() / 1000);
    const timestamp = settings.timestamp ? seconds : undefined;
    const expires = settings.expiresIn === undefined ? undefined : seconds + settings.expiresIn;
    const signatures = keys.map((k) =>
      signatureField(built.headers, {
        key: k, domain: k.domain === '*' ? fromDomain : k.domain, header: settings.header, body: settings.body,
        signedNames: names, bodyHash, timestamp, expires,
      }));
    return { headers: [...signatures, ...built.headers], body: body.stream() };
  } catch (error) {
    await body.discard();
    throw error;
  }
}

/** A key as far as choosing it goes: known from the options, before its file is read. */
interface KeyChoice {
  readonly index: number;
  /** `'*'` or A-labels. */
  readonly domain: string;
  readonly selector: string;
  readonly identityDomain?: string;
}

/** The From domain (A-labels) and the indices of the keys that sign for it, in `keys` order. */
function chooseKeys(fields: readonly string[], keys: readonly KeyChoice[]): { domain: string; indices: number[] } {
  fields.forEach((field, i) => {
    if (typeof field !== 'string' || !FIELD.test(field)) {
      throw new DkimSigningError(`headers[${i}]`, `not a header field (name, colon, value; CRLF only before a space or tab): ${JSON.stringify(String(field).slice(0, 60))}`);
    }
  });
  const froms = fields.filter((f) => /^from[ \t]*:/i.test(f));
  if (froms.length !== 1) throw new DkimSigningError('From', `the message has ${froms.length} From fields; DKIM signs messages with exactly one`);
  const found = fromDomain(froms[0]!.slice(froms[0]!.indexOf(':') + 1));
  if ('error' in found) throw new DkimSigningError('From', found.error);
  const domain = toALabels(found.domain);
  if (domain === undefined) throw new DkimSigningError('From', `${JSON.stringify(found.domain)} is not a domain name DKIM can sign for`);
  const matching = keys.filter((k) => k.domain === '*' || isWithin(domain, k.domain));
  for (const k of matching) {
    // i= must lie within d=; for a '*' key, d= is only known now.
    if (k.domain === '*' && k.identityDomain !== undefined && !isWithin(k.identityDomain, domain)) {
      throw new DkimSigningError('From', `key ${k.selector} (domain '*'): identity domain ${k.identityDomain} is outside the From domain ${domain}`);
    }
  }
  return { domain, indices: matching.map((k) => k.index) };
}

interface Settings {
  readonly keys: readonly KeyChoice[];
  readonly header: Canonicalization;
  readonly body: Canonicalization;
  readonly headers: readonly string[];
  readonly expiresIn?: number;
  readonly timestamp: boolean;
  readonly onNoKey: 'refuse' | 'send-unsigned';
  readonly spool: { readonly threshold: number; readonly tmpDir: string };
  readonly now: () => number;
}

/** Every option checked when the plugin is created, so a bad config fails at load, not at send. */
function checkOptions(options: DkimOptions): Settings {
  if (options === null || typeof options !== 'object') throw new DkimKeyError('dkim', 'expected options { keys: [...] }');
  const known = new Set(['keys', 'canonicalization', 'headers', 'expiresIn', 'timestamp', 'onNoKey', 'baseDir', 'environ', 'spoolThreshold', 'tmpDir', 'now']);
  for (const key of Object.keys(options)) if (!known.has(key)) throw new DkimKeyError(`dkim.${key}`, 'unknown option');
  if (!Array.isArray(options.keys) || options.keys.length === 0) throw new DkimKeyError('dkim.keys', 'expected at least one key');
  options.keys.forEach(checkKeyOptions);
  options.keys.forEach((k, i) => {
    const twin = options.keys.findIndex((o) => o.selector.toLowerCase() === k.selector.toLowerCase() && (toALabels(o.domain) ?? o.domain) === (toALabels(k.domain) ?? k.domain));
    if (twin !== i) throw new DkimKeyError(`dkim.keys[${i}]`, `the same selector and domain as keys[${twin}] (${k.selector}, ${k.domain})`);
  });

  const canonicalization = options.canonicalization ?? 'relaxed/relaxed';
  if (!CANONICALIZATIONS.has(canonicalization)) {
    throw new DkimKeyError('dkim.canonicalization', `expected one of ${[...CANONICALIZATIONS].join(', ')}, got ${JSON.stringify(canonicalization)}`);
  }
  const [header, body] = canonicalization.split('/') as [Canonicalization, Canonicalization];

  const headers = (options.headers ?? DEFAULT_SIGNED_HEADERS).map((name, i) => {
    if (typeof name !== 'string' || !FIELD_NAME.test(name)) throw new DkimKeyError(`dkim.headers[${i}]`, `not a header field name: ${JSON.stringify(name)}`);
    if (/^dkim-signature$/i.test(name)) throw new DkimKeyError(`dkim.headers[${i}]`, 'a DKIM signature cannot sign DKIM-Signature fields');
    return name.toLowerCase();
  });
  if (!headers.includes('from')) throw new DkimKeyError('dkim.headers', 'must include From (RFC 6376 §5.4: From is always signed)');
  const unique = [...new Set(headers)];

  if (options.expiresIn !== undefined && !(Number.isInteger(options.expiresIn) && options.expiresIn > 0)) {
    throw new DkimKeyError('dkim.expiresIn', `expected a positive whole number of seconds, got ${JSON.stringify(options.expiresIn)}`);
  }
  const timestamp = options.timestamp ?? true;
  if (typeof timestamp !== 'boolean') throw new DkimKeyError('dkim.timestamp', 'expected true or false');
  if (options.expiresIn !== undefined && !timestamp) throw new DkimKeyError('dkim.expiresIn', 'needs timestamp: true (x= is checked against t=)');
  const onNoKey = options.onNoKey ?? 'refuse';
  if (onNoKey !== 'refuse' && onNoKey !== 'send-unsigned') throw new DkimKeyError('dkim.onNoKey', `expected 'refuse' or 'send-unsigned', got ${JSON.stringify(onNoKey)}`);
  const threshold = options.spoolThreshold ?? DEFAULT_SPOOL_THRESHOLD;
  if (!(Number.isInteger(threshold) && threshold >= 0)) throw new DkimKeyError('dkim.spoolThreshold', `expected a whole number of bytes, got ${JSON.stringify(threshold)}`);
  for (const name of ['baseDir', 'tmpDir'] as const) {
    const value = options[name];
    if (value !== undefined && (typeof value !== 'string' || value === '' || isEnvRef(value))) throw new DkimKeyError(`dkim.${name}`, 'expected a folder path');
  }
  const keys = options.keys.map((k, index): KeyChoice => ({
    index,
    domain: k.domain === '*' ? '*' : toALabels(k.domain)!,
    selector: k.selector,
    ...(k.identity === undefined ? {} : { identityDomain: parseIdentity(k.identity, `dkim.keys[${index}].identity`).domain }),
  }));
  return {
    keys,
    header,
    body,
    headers: unique,
    ...(options.expiresIn === undefined ? {} : { expiresIn: options.expiresIn }),
    timestamp,
    onNoKey,
    spool: { threshold, tmpDir: options.tmpDir ?? os.tmpdir() },
    now: options.now ?? Date.now,
  };
}
