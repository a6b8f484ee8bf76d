/**
 * The config schema (zod 4) and the types users and consumers see.
 *
 * One builder makes three schemas that share every rule, so they cannot drift apart:
 * - `resolved`: the merged, env-resolved config of one environment. Required fields are required,
 *   defaults are filled in, shorthands are normalised (see below). Its output is `ResolvedConfig`.
 * - `file`: the config file as written. Everything is optional (a required field may come from an
 *   environment overlay), env() markers are accepted wherever a string is, nothing is transformed.
 *   It exists so that a typo inside an environment that is not active today is still reported, at
 *   its real path (`environments.production.transport.prot`).
 * - `overlay`: like `file`, for one environment, and `null` is accepted to remove a base value.
 *
 * Every object is strict: an unknown key is an error, because a misspelt option silently ignored is
 * the worst kind of config bug.
 *
 * Normalisations in `resolved` (so consumers do not each re-implement them):
 * - `transport.host: 'mx.example:2525'` → `host: 'mx.example', port: 2525` (`[::1]:25` too). A host
 *   starting with `/` is a unix socket path and kept whole.
 * - `transport.pool: true` → the pool object with its defaults; `false` stays `false`.
 * - `auth.mechanisms` upper-cased.
 * - `batch.source: 'rows.csv'` → `{ path: 'rows.csv', format: 'csv' }` (format from the extension:
 *   .csv, .tsv (tab-delimited csv), .json, .jsonl/.ndjson).
 * Left to consumers: `tls: 'implicit'` with no port means port 465 (and LMTP's default port comes from
 * its greeting stage), `transport.url` is validated but not spread into host/port/auth
 * (`parseTransportUrl` does that), and relative paths stay relative (to the config file's
 * directory: `dirname(filepath)`).
 */
import type * as Zod from 'zod';
import { lazyRequire } from '../lazy.js';
import { parseAddressList } from '../message/address.js';
import type { Plugin } from '../plugin.js';
import { isEnvRef, type EnvRef } from './env.js';
import type { TypeMismatchParams } from './errors.js';

type Mode = 'resolved' | 'file' | 'overlay';

export const BUILTIN_TLS_MODES = ['none', 'opportunistic', 'required', 'implicit'] as const;
export type BuiltinTlsMode = (typeof BUILTIN_TLS_MODES)[number];
/** A built-in mode or the name of a TLS policy a plugin provides. */
export type TlsMode = BuiltinTlsMode | (string & {});

export const DSN_NOTIFY = ['NEVER', 'SUCCESS', 'FAILURE', 'DELAY'] as const;
export const SOURCE_FORMATS = ['csv', 'json', 'jsonl'] as const;
export type SourceFormat = (typeof SOURCE_FORMATS)[number];

const mismatch = (expected: string): TypeMismatchParams => ({ typeMismatch: true, expected });

const envRefSchema = () => z.custom<EnvRef>(isEnvRef, { params: mismatch('env()') });
const pluginSchema = () => z.custom<Plugin>(
  (v) => typeof v === 'object' && v !== null && typeof (v as { name?: unknown }).name === 'string' && (v as { name: string }).name !== '',
  { error: 'expected a plugin (an object with a non-empty string `name`)', params: { showInput: true } },
);
const bufferSchema = () => z.custom<Buffer>((v) => Buffer.isBuffer(v), { params: mismatch('a Buffer') });

// ---- leaf validators (mode-independent) ----------------------------------------------------------

const NO_BREAKS = /^[^\r\n\0]*$/;
const line = () => z.string().regex(NO_BREAKS, { error: 'must not contain line breaks or NUL' });
const nonEmptyLine = () => line().min(1, { error: 'must not be empty' });
const token = () =>
  z.string().min(1, { error: 'must not be empty' }).regex(/^[^\s\0]+$/, { error: 'must not contain spaces or line breaks' });

function intRange(min: number, max?: number) {
  const message = max === undefined ? `expected an integer >= ${min}` : `expected an integer between ${min} and ${max}`;
  const s = z.int({ error: message }).min(min, { error: message });
  return max === undefined ? s : s.max(max, { error: message });
}
const ms = () => intRange(1).meta({ description: 'milliseconds' });

/** `host`, `host:port`, `[v6]:port`, a bare IPv6 address, or a unix socket path. */
export function splitHostPort(value: string): { readonly host: string; readonly port?: number } | undefined {
  if (value.startsWith('/')) return { host: value };
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(value);
  if (bracketed) return withPort(bracketed[1]!, bracketed[2]);
  const parts = value.split(':');
  if (parts.length === 2) return /^\d{1,5}$/.test(parts[1]!) && parts[0] !== '' ? withPort(parts[0]!, parts[1]) : undefined;
  return { host: value };
}

function withPort(host: string, port: string | undefined): { host: string; port?: number } | undefined {
  if (port === undefined) return { host };
  const n = Number(port);
  return n >= 1 && n <= 65535 ? { host, port: n } : undefined;
}

const hostString = () =>
  token().superRefine((v, ctx) => {
    if (v.includes('://')) ctx.addIssue({ code: 'custom', message: 'looks like a URL; put it in transport.url instead' });
    // `user:pw@host:25` would otherwise be taken for a host name and printed wherever the host is.
    else if (v.includes('@')) ctx.addIssue({ code: 'custom', message: 'must not carry user info (user:password@); put credentials in auth: { user, pass: env(…) }' });
    else if (!splitHostPort(v)) ctx.addIssue({ code: 'custom', message: 'expected a host name or address, optionally with :port (1-65535)' });
  });

export interface TransportUrl {
  readonly protocol: 'smtp' | 'smtps' | 'lmtp';
  readonly host: string;
  readonly port?: number;
  readonly user?: string;
  readonly pass?: string;
  /** smtps: TLS from the first byte. */
  readonly implicitTls: boolean;
}

/** `smtp://user:pass@host:port`, `smtps://…`, `lmtp://…` → its parts; undefined when malformed. */
export function parseTransportUrl(value: string): TransportUrl | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  const protocol = url.protocol.slice(0, -1);
  if (protocol !== 'smtp' && protocol !== 'smtps' && protocol !== 'lmtp') return undefined;
  if (url.hostname === '') return undefined;
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return {
    protocol,
    host,
    ...(url.port ? { port: Number(url.port) } : {}),
    ...(url.username ? { user: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { pass: decodeURIComponent(url.password) } : {}),
    implicitTls: protocol === 'smtps',
  };
}

// Never echoes the value: a URL may carry a password.
const urlString = () =>
  z.string().superRefine((v, ctx) => {
    if (!parseTransportUrl(v)) ctx.addIssue({ code: 'custom', message: 'expected smtp://[user:pass@]host[:port], smtps://… or lmtp://…' });
  });

const EXTENSIONS: Readonly<Record<string, { readonly format: SourceFormat; readonly delimiter?: '\t' }>> = {
  '.csv': { format: 'csv' },
  '.tsv': { format: 'csv', delimiter: '\t' },
  '.json': { format: 'json' },
  '.jsonl': { format: 'jsonl' },
  '.ndjson': { format: 'jsonl' },
};

function formatOfPath(path: string): { readonly format: SourceFormat; readonly delimiter?: '\t' } | undefined {
  const dot = path.lastIndexOf('.');
  return dot < 0 ? undefined : EXTENSIONS[path.slice(dot).toLowerCase()];
}

// ---- the builder ---------------------------------------------------------------------------------

function buildSchema(mode: Mode) {
  const resolved = mode === 'resolved';

  // The casts below keep every schema typed as its `resolved` form; the `file`/`overlay` schemas are
  // only ever used for their issues, never for their output type.
  const optional = <T extends Zod.ZodType>(s: T) => (mode === 'overlay' ? s.nullish() : s.optional()) as unknown as Zod.ZodOptional<T>;
  const required = <T extends Zod.ZodType>(s: T): T => (resolved ? s : optional(s)) as unknown as T;
  const withDefault = <T extends Zod.ZodType>(s: T, value: Zod.output<T>) =>
    (resolved ? (s as Zod.ZodType).default(value as never) : optional(s)) as unknown as Zod.ZodDefault<T>;
  /** A string field: env() is allowed here until resolution. */
  const str = <T extends Zod.ZodType<string>>(s: T): T =>
    (resolved ? s : z.union([s, envRefSchema()])) as unknown as T;
  const transform = <T extends Zod.ZodType, O>(s: T, fn: (v: Zod.output<T>) => O) =>
    (resolved ? s.transform(fn) : s) as unknown as Zod.ZodType<O, Zod.input<T>>;
  const recordValue = <T extends Zod.ZodType>(s: T): T => (mode === 'overlay' ? s.nullable() : s) as unknown as T;
  const object = <S extends Zod.core.$ZodLooseShape>(shape: S) => z.strictObject(shape);

  const rateLimit = object({
    messages: required(intRange(1)),
    interval: withDefault(ms(), 1000),
  });

  const retry = object({
    attempts: withDefault(intRange(0), 3),
    minDelay: withDefault(ms(), 1000),
    maxDelay: withDefault(ms(), 60_000),
    factor: withDefault(z.number({ error: 'expected a number >= 1' }).min(1, { error: 'expected a number >= 1' }), 2),
    jitter: optional(z.number({ error: 'expected a number between 0 and 1' }).min(0, { error: 'expected a number between 0 and 1' }).max(1, { error: 'expected a number between 0 and 1' })),
  }).superRefine((v, ctx) => {
    if (typeof v.minDelay === 'number' && typeof v.maxDelay === 'number' && v.minDelay > v.maxDelay) {
      ctx.addIssue({ code: 'custom', path: ['minDelay'], message: `must not exceed maxDelay (${v.maxDelay})` });
    }
  });

  const pool = object({
    maxConnections: withDefault(intRange(1), 5),
    maxMessages: withDefault(intRange(1), 100),
    idleTimeout: optional(ms()),
  });
  const poolDefaults = { maxConnections: 5, maxMessages: 100 } as const;

  const pem = () => z.union([str(z.string().min(1, { error: 'must not be empty' })), bufferSchema()]);

  const tlsOptions = object({
    ca: optional(z.union([pem(), z.array(pem())])),
    cert: optional(pem()),
    key: optional(pem()),
    servername: optional(str(token())),
    rejectUnauthorized: optional(z.boolean()),
    minVersion: optional(z.enum(['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'])),
  });

  const timeouts = object({
    connect: optional(ms()),
    greeting: optional(ms()),
    command: optional(ms()),
    data: optional(ms()),
    total: optional(ms()),
  });

  const transportShape = object({
    host: optional(str(hostString())),
    port: optional(intRange(1, 65535)),
    tls: optional(str(token() as unknown as Zod.ZodType<TlsMode, TlsMode>)),
    tlsOptions: optional(tlsOptions),
    localHostname: optional(str(token())),
    allowInsecureAuth: optional(z.boolean()),
    timeouts: optional(timeouts),
    chunking: optional(z.enum(['auto', 'never'])),
    pipelining: optional(z.enum(['auto', 'never'])),
    pool: optional(transform(z.union([z.boolean(), pool]), (v) => (v === true ? { ...poolDefaults } : v))),
    rateLimit: optional(rateLimit),
    retry: optional(retry),
    url: optional(str(urlString())),
  }).superRefine((v, ctx) => {
    const split = typeof v.host === 'string' ? splitHostPort(v.host) : undefined;
    if (split?.port !== undefined && typeof v.port === 'number' && v.port !== split.port) {
      ctx.addIssue({ code: 'custom', path: ['port'], message: 'conflicts with the port given in transport.host' });
    }
    // Only on the merged config: the base may use url and an environment host (unsetting url with null).
    if (resolved && v.url !== undefined && v.host !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'set either transport.url or transport.host, not both' });
    }
  });
  const transport = transform(transportShape, (v) => {
    const split = typeof v.host === 'string' ? splitHostPort(v.host) : undefined;
    return split?.port === undefined ? v : { ...v, host: split.host, port: split.port };
  });

  const mechanism = z.string().regex(/^[A-Za-z0-9_-]{1,20}$/, { error: 'expected a SASL mechanism name (e.g. PLAIN, CRAM-MD5)' });
  const auth = object({
    user: optional(str(line())),
    pass: optional(str(z.string())),
    mechanisms: optional(
      transform(
        z.array(str(mechanism)).superRefine((list, ctx) => {
          // Entries may still be env() markers in the file-as-written pass.
          const upper = list.map((m) => (typeof m === 'string' ? m.toUpperCase() : m));
          upper.forEach((m, i) => {
            if (typeof m === 'string' && upper.indexOf(m) !== i) ctx.addIssue({ code: 'custom', path: [i], message: `${m} is listed twice` });
          });
        }),
        (list) => list.map((m) => m.toUpperCase()),
      ),
    ),
    credentials: optional(z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/, { error: 'expected a credential name (letters, digits, _ . -)' }), recordValue(str(z.string())))),
  }).superRefine((v, ctx) => {
    if (resolved && v.pass !== undefined && v.user === undefined) {
      ctx.addIssue({ code: 'custom', path: ['user'], message: 'required when auth.pass is set' });
    }
  });

  const dsn = object({
    ret: optional(z.enum(['FULL', 'HDRS'])),
    notify: optional(
      z.array(z.enum(DSN_NOTIFY)).min(1, { error: 'must not be an empty list (omit it to let the server decide)' }).superRefine((list, ctx) => {
        if (list.includes('NEVER') && list.length > 1) ctx.addIssue({ code: 'custom', message: 'NEVER cannot be combined with SUCCESS, FAILURE or DELAY' });
        list.forEach((n, i) => {
          if (list.indexOf(n) !== i) ctx.addIssue({ code: 'custom', path: [i], message: `${n} is listed twice` });
        });
      }),
    ),
    strict: optional(z.boolean()),
  });

  const envelope = object({
    dsn: optional(dsn),
    smtputf8: optional(z.boolean()),
    size: optional(z.boolean()),
  });

  const headerName = z.string().regex(/^[!-9;-~]+$/, { error: 'expected a header field name (printable ASCII, no spaces or colons)' });
  const message = object({
    from: optional(str(nonEmptyLine())),
    replyTo: optional(str(nonEmptyLine())),
    headers: optional(z.record(headerName, recordValue(str(line())))),
  });

  const path = () => str(nonEmptyLine());
  const template = () => z.union([str(z.string()), object({ path: required(path()) })]);

  const sourceObject = object({
    path: required(path()),
    format: optional(z.enum(SOURCE_FORMATS)),
    delimiter: optional(z.enum([',', ';', '\t'])),
    /** A row larger than this stops the run with an error naming it (default 1 MiB). */
    maxRowBytes: optional(intRange(1)),
  });
  type SourceInput = string | Zod.output<typeof sourceObject>;
  const source = transform(
    z.union([path(), sourceObject]).superRefine((v: SourceInput, ctx) => {
      const p = typeof v === 'string' ? v : v.path;
      const format = typeof v === 'object' && v.format ? v.format : typeof p === 'string' ? formatOfPath(p)?.format : undefined;
      if (format === undefined && typeof p === 'string') {
        ctx.addIssue({ code: 'custom', path: typeof v === 'string' ? [] : ['format'], message: 'cannot tell the format from the file name; use .csv, .json or .jsonl, or set format' });
      }
      if (typeof v === 'object' && v.delimiter !== undefined && format !== undefined && format !== 'csv') {
        ctx.addIssue({ code: 'custom', path: ['delimiter'], message: `only applies to csv, not ${format}` });
      }
    }),
    (v: SourceInput): { readonly path: string; readonly format: SourceFormat; readonly delimiter?: ',' | ';' | '\t'; readonly maxRowBytes?: number } => {
      const p = typeof v === 'string' ? v : v.path;
      const inferred = formatOfPath(p);
      const format = (typeof v === 'object' ? v.format : undefined) ?? inferred?.format ?? 'csv';
      const delimiter = (typeof v === 'object' ? v.delimiter : undefined) ?? (format === 'csv' ? inferred?.delimiter : undefined);
      const maxRowBytes = typeof v === 'object' ? v.maxRowBytes : undefined;
      return { path: p, format, ...(delimiter === undefined ? {} : { delimiter }), ...(maxRowBytes === undefined ? {} : { maxRowBytes }) };
    },
  );

  const batch = object({
    source: required(source),
    templates: required(
      object({
        subject: required(template()),
        text: optional(template()),
        html: optional(template()),
      }),
    ),
    attachments: optional(z.array(z.union([path(), object({ path: required(path()), filename: optional(str(nonEmptyLine())) })]))),
    from: optional(str(nonEmptyLine())),
    to: withDefault(str(nonEmptyLine()), 'email'),
    cc: optional(str(nonEmptyLine())),
    bcc: optional(str(nonEmptyLine())),
    concurrency: withDefault(intRange(1), 4),
    rateLimit: optional(rateLimit),
    retry: optional(retry),
    previewDir: withDefault(path(), '.mailstage/preview'),
    previewCount: withDefault(intRange(0), 10),
    journalDir: withDefault(path(), '.mailstage/runs'),
    messageIdDomain: optional(str(z.string().regex(/^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/, { error: 'expected a domain name (e.g. example.com)' }))),
  });

  return object({
    plugins: optional(z.array(pluginSchema())),
    transport: optional(transport),
    auth: optional(auth),
    envelope: optional(envelope),
    message: optional(message),
    debug: optional(z.literal([0, 1, 2])),
    batch: optional(batch),
  });
}

// ---- the schemas ---------------------------------------------------------------------------------

// zod is loaded, and the schemas built, on the first validation: not when the package is imported.
const zod = lazyRequire<typeof Zod>('zod');
let z: typeof Zod.z;

function buildSchemas() {
  /** The resolved config of one environment (defaults applied, shorthands normalised). */
  const configSchema = buildSchema('resolved');

  const environmentName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, { error: 'expected an environment name (letters, digits, _ . -)' });

  /** The config file as written: all optional, env() allowed, overlays checked at their own paths. */
  const fileSchema = buildSchema('file').extend({
    environments: z.record(environmentName, buildSchema('overlay')).optional(),
  });
  return { configSchema, fileSchema };
}

type Schemas = ReturnType<typeof buildSchemas>;
let built: Schemas | undefined;

/** The resolved-config schema and the file schema, built on first use. */
export function schemas(): Schemas {
  if (built === undefined) {
    z = zod().z;
    built = buildSchemas();
  }
  return built;
}

// ---- checks beyond the shape -------------------------------------------------------------------

export interface SemanticIssue {
  readonly path: readonly (string | number)[];
  readonly message: string;
  /** The offending value, quoted after the message unless the path holds a secret. */
  readonly got?: unknown;
}

/** Addresses the config states outright (templated ones, with `{{`, are checked per row). */
const ADDRESS_FIELDS: readonly (readonly [string, string, boolean])[] = [
  ['message', 'from', false], ['message', 'replyTo', true], ['batch', 'from', false],
];

/**
 * The checks zod cannot make field by field: a TLS mode must be built in or come from an installed
 * plugin (catches `tls: 'requried'`), and the addresses the config states must parse. They read the
 * merged, env-resolved value defensively, so they run even when other fields are malformed: every
 * problem is reported in one pass.
 */
export function semanticIssues(value: unknown): SemanticIssue[] {
  const issues: SemanticIssue[] = [];
  const config = isRecord(value) ? value : {};
  const transport = isRecord(config['transport']) ? config['transport'] : {};
  const tls = transport['tls'];
  if (typeof tls === 'string' && !(BUILTIN_TLS_MODES as readonly string[]).includes(tls)) {
    const plugins = Array.isArray(config['plugins']) ? (config['plugins'] as unknown[]) : [];
    const provided = plugins.flatMap((p) => (isRecord(p) && Array.isArray(p['tlsPolicies']) ? p['tlsPolicies'] : []))
      .map((t: unknown) => (isRecord(t) ? t['name'] : undefined)).filter((n): n is string => typeof n === 'string');
    if (!provided.includes(tls)) {
      const from = provided.length > 0 ? `; plugins provide ${provided.join(', ')}` : '';
      issues.push({ path: ['transport', 'tls'], message: `expected ${BUILTIN_TLS_MODES.join(', ')} or a TLS policy from an installed plugin${from}`, got: tls });
    }
  }
  for (const [section, key, many] of ADDRESS_FIELDS) {
    const part = config[section];
    const address = isRecord(part) ? part[key] : undefined;
    if (typeof address !== 'string' || address.includes('{{')) continue;
    const problem = addressProblem(address, `${section}.${key}`, many);
    if (problem !== undefined) issues.push({ path: [section, key], message: problem });
  }
  return issues;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Why `value` is not a usable address (list), or undefined when it is. */
function addressProblem(value: string, field: string, many: boolean): string | undefined {
  let parsed: readonly unknown[];
  try {
    parsed = parseAddressList(value, field);
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    return text.startsWith(`${field}: `) ? text.slice(field.length + 2) : text;
  }
  if (parsed.length === 0) return 'must not be empty';
  if (!many && parsed.length > 1) return `expected one address, got ${parsed.length}`;
  return undefined;
}

// ---- types ---------------------------------------------------------------------------------------

type Opaque = Plugin | Buffer | EnvRef;
type Primitive = string | number | boolean | bigint | symbol | null | undefined;

/** Every string-accepting position also accepts env(). */
export type WithEnv<T> = T extends Opaque
  ? T
  : T extends string
    ? string extends T
      ? T | EnvRef
      : T
    : T extends readonly (infer U)[]
      ? readonly WithEnv<U>[]
      : T extends object
        ? { readonly [K in keyof T]: WithEnv<T[K]> }
        : T;

/** An environment overlay: any part of the config; `null` removes a base value. */
export type DeepPartial<T> = T extends Primitive | Opaque | readonly unknown[]
  ? T
  : T extends object
    ? { readonly [K in keyof T]?: DeepPartial<T[K]> | null }
    : T;

export type DeepReadonly<T> = T extends Primitive | Opaque
  ? T
  : T extends readonly (infer U)[]
    ? readonly DeepReadonly<U>[]
    : T extends object
      ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
      : T;

/** The config without `environments`, as a user writes it. */
export type BaseConfig = WithEnv<Zod.input<Schemas['configSchema']>>;
export type EnvironmentConfig = DeepPartial<BaseConfig>;

/** What `defineConfig` takes and a config file exports. */
export type MailstageConfig = BaseConfig & {
  readonly environments?: { readonly [name: string]: EnvironmentConfig };
};

/** What `loadConfig` returns in `config`: one environment, env() resolved, defaults applied. */
export type ResolvedConfig = DeepReadonly<Zod.output<Schemas['configSchema']>>;
export type TransportConfig = NonNullable<ResolvedConfig['transport']>;
export type AuthConfig = NonNullable<ResolvedConfig['auth']>;
export type EnvelopeConfig = NonNullable<ResolvedConfig['envelope']>;
export type MessageDefaults = NonNullable<ResolvedConfig['message']>;
export type BatchConfig = NonNullable<ResolvedConfig['batch']>;
export type PoolConfig = Exclude<NonNullable<TransportConfig['pool']>, false>;
export type RetryConfig = NonNullable<TransportConfig['retry']>;
export type RateLimitConfig = NonNullable<TransportConfig['rateLimit']>;
