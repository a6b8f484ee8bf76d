/**
 * Signing keys: where they come from (a PEM string or Buffer, an env() secret, a `{ path }` file),
 * what they are (RSA ≥ 1024 bits → rsa-sha256, Ed25519 → ed25519-sha256; RFC 8301, RFC 8463), and
 * the DNS TXT record that publishes each. Errors name the key (`dkim.keys[1]`, domain, selector) and
 * never show key material.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ENV_BRAND, isEnvRef, type EnvRef } from '../../api.js';
import { isSelector, toALabels } from './domain.js';
import { DkimKeyError } from './errors.js';

/** A PEM private key (PKCS#1 or PKCS#8) as text or bytes, an env() secret holding one, or a file. */
export type PrivateKeySource = string | Buffer | EnvRef | { readonly path: string };

export interface DkimKeyOptions {
  /** The signing domain (`d=`): messages whose From domain is this or a subdomain of it are signed.
   *  `'*'` signs every message, with the From domain as `d=`. U-labels are accepted. */
  readonly domain: string;
  /** The selector (`s=`): the key is published at `<selector>._domainkey.<domain>`. */
  readonly selector: string;
  readonly privateKey: PrivateKeySource;
  /** The agent or user identifier (`i=`), e.g. `'@news.example.com'` or `'bulk@example.com'`; its
   *  domain must be `d=` or a subdomain of it. */
  readonly identity?: string;
}

export type DkimAlgorithm = 'rsa-sha256' | 'ed25519-sha256';

/** A key checked and ready to sign. */
export interface SigningKey {
  /** Its position in `keys`, for messages. */
  readonly index: number;
  /** `'*'` or the A-label domain. */
  readonly domain: string;
  readonly selector: string;
  readonly algorithm: DkimAlgorithm;
  readonly privateKey: KeyObject;
  /** RSA modulus length. */
  readonly bits?: number;
  /** The `p=` value to publish: base64 SubjectPublicKeyInfo (RSA) or the raw 32-octet key (Ed25519). */
  readonly publicKey: string;
  /** The identity's local part (undefined: none, '' : `@domain` form) and its A-label domain. */
  readonly identity?: { readonly local: string; readonly domain: string };
}

/** What `dkim record` prints: the record to publish for one key. */
export interface DkimKeyRecord {
  readonly domain: string;
  readonly selector: string;
  readonly algorithm: DkimAlgorithm;
  readonly bits?: number;
  /** `selector._domainkey.domain.`; for a `'*'` key the domain part is `<from-domain>`. */
  readonly name: string;
  /** `v=DKIM1; k=rsa; p=…` */
  readonly txt: string;
  /** The zone-file line: `name IN TXT "…" "…"`, split into strings of at most 255 characters. */
  readonly zoneLine: string;
}

export interface KeyContext {
  /** Where relative `{ path }` keys are read from. */
  readonly baseDir: string;
  readonly environ: Readonly<Record<string, string | undefined>>;
}

const MIN_RSA_BITS = 1024;
/** A PEM key is a few KB; anything much larger is the wrong file. */
const MAX_KEY_FILE = 64 * 1024;

/** How messages name a key besides its option path: where it is published. */
export function keyLabel(key: Pick<DkimKeyOptions, 'domain' | 'selector'>): string {
  return `${String(key.selector)}._domainkey.${String(key.domain)}`;
}

/** The shape checks that need no I/O, run when the plugin is created. */
export function checkKeyOptions(key: DkimKeyOptions, index: number): void {
  const field = `dkim.keys[${index}]`;
  if (key === null || typeof key !== 'object') throw new DkimKeyError(field, 'expected { domain, selector, privateKey }');
  if (typeof key.domain !== 'string' || (key.domain !== '*' && toALabels(key.domain) === undefined)) {
    throw new DkimKeyError(`${field}.domain`, `expected a domain name or '*', got ${JSON.stringify(key.domain)}`);
  }
  if (typeof key.selector !== 'string' || !isSelector(key.selector)) {
    throw new DkimKeyError(`${field}.selector`, `expected a selector (letters, digits, hyphens, dot-separated labels), got ${JSON.stringify(key.selector)}`);
  }
  const source = key.privateKey as unknown;
  const isPath = source !== null && typeof source === 'object' && !Buffer.isBuffer(source) && !isEnvRef(source);
  if (isPath && typeof (source as { path?: unknown }).path !== 'string') {
    throw new DkimKeyError(`${field}.privateKey`, 'expected a PEM string or Buffer, env(\'NAME\') or { path: \'key.pem\' }');
  }
  if (!isPath && typeof source !== 'string' && !Buffer.isBuffer(source) && !isEnvRef(source)) {
    throw new DkimKeyError(`${field}.privateKey`, 'expected a PEM string or Buffer, env(\'NAME\') or { path: \'key.pem\' }');
  }
  if (key.identity !== undefined) parseIdentity(key.identity, `${field}.identity`);
}

/** `'user@dom'` or `'@dom'` → its parts; the domain in A-labels. */
export function parseIdentity(identity: string, field: string): { readonly local: string; readonly domain: string } {
  const at = typeof identity === 'string' ? identity.lastIndexOf('@') : -1;
  const domain = at < 0 ? undefined : toALabels(identity.slice(at + 1));
  if (domain === undefined || /[\u0000-\u001f\u007f]/.test(identity.slice(0, at))) {
    throw new DkimKeyError(field, `expected 'local@domain' or '@domain', got ${JSON.stringify(identity)}`);
  }
  return { local: identity.slice(0, at), domain };
}

/** Reads, parses and checks one key. */
export async function loadKey(key: DkimKeyOptions, index: number, ctx: KeyContext): Promise<SigningKey> {
  const label = keyLabel(key);
  const pem = await readSource(key.privateKey, `dkim.keys[${index}].privateKey`, label, ctx);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch (error) {
    // OpenSSL's reason never quotes the input.
    throw new DkimKeyError(`dkim.keys[${index}].privateKey`, `${label}: not a PEM private key (PKCS#1 or PKCS#8): ${(error as Error).message}`, { cause: error });
  }
  const domain = key.domain === '*' ? '*' : toALabels(key.domain)!;
  const identity = key.identity === undefined ? undefined : parseIdentity(key.identity, `dkim.keys[${index}].identity`);
  if (identity && domain !== '*' && identity.domain !== domain && !identity.domain.endsWith(`.${domain}`)) {
    throw new DkimKeyError(`dkim.keys[${index}].identity`, `${label}: the identity's domain ${identity.domain} is not ${domain} or a subdomain of it (RFC 6376 §3.5 i=)`);
  }
  const common = { index, domain, selector: key.selector, privateKey, ...(identity ? { identity } : {}) };
  const type = privateKey.asymmetricKeyType;
  if (type === 'rsa') {
    const bits = privateKey.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) {
      throw new DkimKeyError(`dkim.keys[${index}].privateKey`, `${label}: an RSA key of ${bits} bits is too small; RFC 8301 requires at least ${MIN_RSA_BITS} (use 2048)`);
    }
    const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
    return { ...common, algorithm: 'rsa-sha256', bits, publicKey: spki.toString('base64') };
  }
  if (type === 'ed25519') {
    const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
    return { ...common, algorithm: 'ed25519-sha256', publicKey: Buffer.from(String(jwk.x), 'base64url').toString('base64') };
  }
  throw new DkimKeyError(
    `dkim.keys[${index}].privateKey`,
    `${label}: a${type === 'ec' || type === 'ed448' ? 'n' : ''} ${type ?? 'unknown'} key cannot sign DKIM; use RSA (rsa-sha256, at least ${MIN_RSA_BITS} bits) or Ed25519 (ed25519-sha256)`,
  );
}

async function readSource(source: PrivateKeySource, field: string, label: string, ctx: KeyContext): Promise<string | Buffer> {
  if (Buffer.isBuffer(source)) return source;
  if (typeof source === 'string') return unescapeNewlines(source);
  if (isEnvRef(source)) {
    const spec = source[ENV_BRAND];
    const raw = ctx.environ[spec.name];
    const value = raw !== undefined && raw !== '' ? raw : spec.default;
    if (value === undefined) throw new DkimKeyError(field, `${label}: environment variable ${spec.name} is not set`);
    return unescapeNewlines(value);
  }
  const file = path.resolve(ctx.baseDir, source.path);
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new Error('not a regular file');
    if (info.size > MAX_KEY_FILE) throw new Error(`${info.size} bytes is too large for a PEM key`);
    return await readFile(file);
  } catch (error) {
    throw new DkimKeyError(field, `${label}: cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
}

/** A PEM squeezed into one line of an environment variable (`-----BEGIN…\n…`) → real line ends. */
function unescapeNewlines(pem: string): string {
  return !pem.includes('\n') && pem.includes('\\n') ? pem.replace(/\\n/g, '\n') : pem;
}

/** The TXT record for a loaded key (RFC 6376 §3.6.1; `k=ed25519` from RFC 8463). */
export function dnsRecord(key: SigningKey): DkimKeyRecord {
  const k = key.algorithm === 'rsa-sha256' ? 'rsa' : 'ed25519';
  const txt = `v=DKIM1; k=${k}; p=${key.publicKey}`;
  const name = `${key.selector}._domainkey.${key.domain === '*' ? '<from-domain>' : key.domain}.`;
  const strings: string[] = [];
  for (let i = 0; i < txt.length; i += 255) strings.push(txt.slice(i, i + 255));
  return {
    domain: key.domain,
    selector: key.selector,
    algorithm: key.algorithm,
    ...(key.bits === undefined ? {} : { bits: key.bits }),
    name,
    txt,
    zoneLine: `${name} IN TXT ${strings.map((s) => `"${s}"`).join(' ')}`,
  };
}
