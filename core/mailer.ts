/**
 * The Mailer: a config turned into pooled, rate-limited, retrying sessions behind nodemailer's
 * `sendMail`. One sendMail is one or more routes (one without a router; one per domain with the mx
 * plugin); each route is sent on a pooled session to its first reachable host, retried as a whole
 * on transient failures, and the routes' results are merged into one nodemailer-shaped info.
 *
 * Core knows no plugin: the default plugin set comes from the package entry
 * (`registerDefaultPlugins`) or `MailerOptions.defaultPlugins`.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { SmtpClient, type SmtpClientOptions, type SendMessageResult, type TlsOptions } from './client.js';
import { loadConfig, resolveConfig, type LoadedConfig, type LoadOptions } from './config/load.js';
import type { MailstageConfig, ResolvedConfig } from './config/schema.js';
import { parseTransportUrl } from './config/schema.js';
import type { Timeouts } from './connection.js';
import {
  SmtpError, SmtpInvalidInputError, SmtpNotSupportedError, SmtpRecipientsRefusedError, describeReply,
} from './errors.js';
import { envelopeFromMessage } from './message/envelope.js';
import type { Envelope, MailMessage } from './message/types.js';
import type { Plugin, Route, RouteHost, RouterStage } from './plugin.js';
import { createPool, type Pool, type PoolEvent } from './pool.js';
import type { SmtpReply } from './protocol/reply.js';
import { createRateLimiter, type RateLimiter } from './rate-limit.js';
import {
  backoff, classify, isDropped, retryPolicy, sleep, SmtpDeliveryUnknownError, SmtpRecipientRefusedError,
  type RetryPolicy,
} from './retry.js';
import { defaultLocalHostname } from './stages/greeting.js';
import type { DebugOption } from './transcript.js';

export { isDeliveryUnknown, SmtpDeliveryUnknownError, SmtpRecipientRefusedError } from './retry.js';

// ---- public types --------------------------------------------------------------------------------

/** nodemailer's result shape. */
export interface SendMailInfo {
  readonly accepted: string[];
  readonly rejected: string[];
  /** One per rejected recipient (present when some were rejected). */
  readonly rejectedErrors?: SmtpError[];
  /** The reply to the body's terminator, like "250 2.0.0 OK queued" (several routes: the first). */
  readonly response: string;
  readonly envelope: { readonly from: string; readonly to: string[] };
  /** '<id@host>' */
  readonly messageId: string;
}

export type MailerEvent =
  | { readonly type: 'connection'; readonly host: string; readonly event: PoolEvent }
  | { readonly type: 'attempt'; readonly messageId: string; readonly host: string; readonly attempt: number }
  | { readonly type: 'retry'; readonly messageId: string; readonly attempt: number; readonly delay: number; readonly error: SmtpError }
  | { readonly type: 'sent'; readonly info: SendMailInfo }
  | { readonly type: 'failed'; readonly messageId: string; readonly error: unknown };

export type MailerListener = (event: MailerEvent) => void;

export interface Mailer extends AsyncDisposable {
  sendMail(message: MailMessage): Promise<SendMailInfo>;
  /** Connects, greets and authenticates to the transport host, then QUITs (nodemailer's verify). */
  verify(): Promise<true>;
  /** Refuses new messages, waits for queued and in-flight ones (retries included), QUITs every
   *  connection. Idempotent. */
  close(): Promise<void>;
  /** True when no message is queued or in flight. */
  isIdle(): boolean;
  /** Observability; returns the unsubscribe function. */
  on(listener: MailerListener): () => void;
  /** The config this mailer runs with. */
  readonly config: ResolvedConfig;
}

export interface MailerOptions {
  /** Plugins used when the config names none (default: the package's `defaultPlugins()`). */
  readonly defaultPlugins?: readonly Plugin[];
  /** Overrides `config.debug` (e.g. a callback sink). */
  readonly debug?: DebugOption;
  readonly onEvent?: MailerListener;
}

/** A config as `defineConfig` returns it, a `loadConfig` result, or its resolved `config`. */
export type MailerConfig = MailstageConfig | LoadedConfig | ResolvedConfig;

// ---- defaults registered by the package entry ----------------------------------------------------

let defaultPluginsProvider: () => readonly Plugin[] = () => [];

/** The package entry registers `defaultPlugins` here (core must not import plugins). */
export function registerDefaultPlugins(provider: () => readonly Plugin[]): void {
  defaultPluginsProvider = provider;
}

// ---- construction --------------------------------------------------------------------------------

/**
 * `createMailer()`: finds the config from the current directory (environment from MAILSTAGE_ENV,
 * then NODE_ENV). `createMailer(config)`: synchronous, from a `defineConfig` object or a loaded one.
 */
export function createMailer(): Promise<Mailer>;
export function createMailer(config: MailerConfig, options?: MailerOptions): Mailer;
export function createMailer(config?: MailerConfig, options: MailerOptions = {}): Mailer | Promise<Mailer> {
  if (config === undefined) return loadMailer();
  return buildMailer(toResolved(config), options);
}

/** `createMailer()` with explicit discovery options (`cwd`, `file`, `env`). */
export async function loadMailer(options: LoadOptions & MailerOptions = {}): Promise<Mailer> {
  return buildMailer((await loadConfig(options)).config, options);
}

function toResolved(config: MailerConfig): ResolvedConfig {
  const c = config as Partial<LoadedConfig>;
  if (c.secrets instanceof Set && typeof c.config === 'object' && c.config !== null) return c.config;
  // The loader deep-freezes what it resolved; resolving again would re-apply MAILSTAGE_ENV.
  if (Object.isFrozen(config)) return config as ResolvedConfig;
  return resolveConfig(config).config;
}

interface Settings {
  readonly client: SmtpClientOptions;
  readonly defaultHost: RouteHost;
  readonly auth?: { readonly user?: string; readonly pass?: string; readonly mechanisms?: readonly string[]; readonly credentials?: Readonly<Record<string, string>> };
  readonly router?: RouterStage;
  readonly pool: { readonly maxConnections: number; readonly maxMessages: number; readonly idleTimeout?: number };
}

/** Idle pooled connections are closed after this long unless the config says otherwise, so that a
 *  script that forgets close() still exits. */
const DEFAULT_IDLE_TIMEOUT = 5_000;
/** How long a QUIT may take before the socket is simply closed. */
const QUIT_TIMEOUT = 5_000;

function settingsOf(config: ResolvedConfig, options: MailerOptions): Settings {
  const t = config.transport ?? {};
  const url = t.url === undefined ? undefined : parseTransportUrl(t.url);
  const plugins = config.plugins ?? options.defaultPlugins ?? defaultPluginsProvider();
  if (url?.protocol === 'lmtp' && !plugins.some((p) => p.greeting?.verb.toUpperCase() === 'LHLO')) {
    throw new SmtpInvalidInputError('transport.url', 'lmtp:// needs the lmtp plugin in `plugins`');
  }
  const port = t.port ?? url?.port;
  // nodemailer's defaults: STARTTLS when offered, TLS from the first byte on 465.
  const tls = t.tls ?? (url?.implicitTls || port === 465 ? 'implicit' : 'opportunistic');
  const a = config.auth;
  const user = a?.user ?? url?.user;
  const pass = a?.pass ?? url?.pass;
  const auth = user !== undefined || a?.credentials !== undefined
    ? { user, pass, mechanisms: a?.mechanisms, credentials: a?.credentials }
    : undefined;
  const client: SmtpClientOptions = {
    port,
    tls,
    tlsOptions: t.tlsOptions as TlsOptions | undefined,
    localHostname: t.localHostname,
    allowInsecureAuth: t.allowInsecureAuth,
    timeouts: t.timeouts as Partial<Timeouts> | undefined,
    chunking: t.chunking,
    pipelining: t.pipelining,
    plugins,
    debug: options.debug ?? config.debug,
    authMechanisms: a?.mechanisms,
  };
  const pool = t.pool === false
    ? { maxConnections: Infinity, maxMessages: 1 }
    : { maxConnections: t.pool?.maxConnections ?? 5, maxMessages: t.pool?.maxMessages ?? 100, idleTimeout: t.pool?.idleTimeout ?? DEFAULT_IDLE_TIMEOUT };
  const router = plugins.findLast((p) => p.router !== undefined)?.router;
  return { client, defaultHost: { host: t.host ?? url?.host ?? 'localhost', port }, auth, router, pool };
}

// ---- the mailer ----------------------------------------------------------------------------------

interface RouteOutcome {
  readonly result: SendMessageResult;
  /** Recipients refused at RCPT (or after the body, LMTP), with their errors. */
  readonly rejected: ReadonlyMap<string, SmtpError>;
}

/** One route's end: delivered (perhaps partly), or failed as a whole. */
interface Settled {
  readonly route: Route;
  readonly outcome?: RouteOutcome;
  readonly error?: unknown;
}

function buildMailer(config: ResolvedConfig, options: MailerOptions): Mailer {
  const settings = settingsOf(config, options);
  const policy = retryPolicy(config.transport?.retry);
  const limiter: RateLimiter = createRateLimiter(config.transport?.rateLimit);
  const pools = new Map<string, Pool<SmtpClient>>();
  const listeners = new Set<MailerListener>(options.onEvent ? [options.onEvent] : []);
  const inflight = new Set<Promise<unknown>>();
  let closing: Promise<void> | undefined;
  // A client never connected: builds messages (the same builders the sessions use) for routing.
  let builder: SmtpClient | undefined;

  const emit = (e: MailerEvent): void => {
    for (const l of listeners) {
      try {
        l(e);
      } catch {
        /* an observer must not break delivery */
      }
    }
  };

  const clientFor = (host: RouteHost): SmtpClient => new SmtpClient({
    ...settings.client,
    host: host.host,
    port: host.port ?? settings.client.port,
    tlsOptions: host.servername === undefined ? settings.client.tlsOptions : { ...settings.client.tlsOptions, servername: host.servername },
  });

  const openSession = async (host: RouteHost): Promise<SmtpClient> => {
    const client = clientFor(host);
    try {
      await client.connect();
      await client.ehloOrHeloIfNeeded();
      if (settings.auth) await authenticate(client, settings.auth);
      return client;
    } catch (err) {
      client.close();
      throw err;
    }
  };

  const poolFor = (host: RouteHost): Pool<SmtpClient> => {
    const key = `${host.host}|${host.port ?? ''}|${host.servername ?? ''}`;
    let pool = pools.get(key);
    if (!pool) {
      pool = createPool<SmtpClient>({
        ...settings.pool,
        open: () => openSession(host),
        alive: (c) => c.connected,
        shut: (c) => shutSession(c),
        onEvent: (event) => emit({ type: 'connection', host: host.host, event }),
      });
      pools.set(key, pool);
    }
    return pool;
  };

  /** Tries the route's hosts in order; the next one only when a host cannot be reached or greets
   *  with a 4xx (RFC 5321 §5.1). */
  const onFirstHost = async <T>(hosts: readonly RouteHost[], fn: (c: SmtpClient, reused: boolean, host: RouteHost) => Promise<T>): Promise<T> => {
    for (let i = 0; ; i++) {
      const host = hosts[i]!;
      try {
        return await poolFor(host).use((c, lease) => fn(c, lease.messages > 0, host));
      } catch (err) {
        const unreachable = err instanceof SmtpError && (err.stage === 'connect' || err.stage === 'greeting') && classify(err) === 'retry';
        if (!unreachable || i === hosts.length - 1) throw err;
      }
    }
  };

  const sendRoute = async (message: MailMessage, messageId: string, envelope: Envelope | undefined, route: Route, replayable: boolean): Promise<RouteOutcome> => {
    const rejected = new Map<string, SmtpError>();
    const refusedReplies: Record<string, SmtpReply> = {};
    if (route.error !== undefined || route.hosts.length === 0) {
      const error = route.error ?? new SmtpNotSupportedError('no host to deliver to', { stage: 'connect' });
      throw error instanceof SmtpError ? error : new SmtpError(error.message, { cause: error, permanent: true, stage: 'connect' });
    }
    // undefined: the session takes the envelope from the message (a raw one without a router).
    let to: readonly string[] | undefined = envelope ? route.recipients : undefined;
    const from = envelope?.from;
    let retries = 0;
    let attempt = 0;
    let reconnected = false;
    for (;;) {
      let reused = false;
      attempt++;
      try {
        // See rate-limit.ts: a turn before taking a connection, the spacing on it.
        await limiter.acquire();
        const result = await onFirstHost(route.hosts, async (client, wasReused, host) => {
          reused = wasReused;
          await limiter.start();
          emit({ type: 'attempt', messageId, host: host.host, attempt });
          return client.sendMessage(message, { from, to });
        });
        for (const [r, reply] of Object.entries({ ...refusedReplies, ...result.refused })) rejected.set(r, new SmtpRecipientRefusedError(r, reply));
        return { result, rejected };
      } catch (err) {
        const verdict = classify(err);
        if (verdict === 'unknown') throw new SmtpDeliveryUnknownError(messageId, to ?? [], err);
        // A pooled connection the server had dropped while idle: once, at once, on a new one.
        if (verdict === 'retry' && reused && !reconnected && isDropped(err) && replayable) {
          reconnected = true;
          continue;
        }
        if (err instanceof SmtpRecipientsRefusedError && err.stage === 'rcpt') {
          // Permanent refusals are final; only the transiently refused recipients go again.
          const again: string[] = [];
          for (const [r, reply] of Object.entries(err.recipients)) {
            if (reply.code >= 500) refusedReplies[r] = reply; else again.push(r);
          }
          to = again;
        }
        if (verdict !== 'retry' || retries >= policy.attempts || !replayable || to?.length === 0) {
          if (err instanceof SmtpRecipientsRefusedError && Object.keys(refusedReplies).length > 0) {
            throw new SmtpRecipientsRefusedError({ ...refusedReplies, ...err.recipients }, { stage: err.stage });
          }
          throw err;
        }
        retries++;
        const wait = backoff(policy, retries);
        emit({ type: 'retry', messageId, attempt, delay: wait, error: err as SmtpError });
        await sleep(wait);
      }
    }
  };

  const send = async (input: MailMessage): Promise<SendMailInfo> => {
    const message = prepare(input, config, settings);
    const messageId = message.messageId ?? '';
    try {
      const replayable = isReplayable(message);
      // Without a router a raw message's envelope is left to the session (it reads the headers).
      const envelope = settings.router || message.raw === undefined || message.raw === null
        ? await envelopeOf(message, () => (builder ??= new SmtpClient(settings.client)))
        : undefined;
      const routes: readonly Route[] = settings.router
        ? await settings.router.route(envelope!)
        : [{ hosts: [settings.defaultHost], recipients: envelope?.to ?? [] }];
      const settled = await Promise.all(routes.map(async (route): Promise<Settled> => {
        try {
          return { route, outcome: await sendRoute(message, messageId, envelope, route, replayable) };
        } catch (error) {
          return { route, error };
        }
      }));
      const info = merge(settled, envelope, messageId);
      emit({ type: 'sent', info });
      return info;
    } catch (err) {
      emit({ type: 'failed', messageId, error: err });
      throw err;
    }
  };

  const mailer: Mailer = {
    config,
    sendMail(message) {
      if (closing) return Promise.reject(new SmtpError('the mailer is closed', { permanent: true, stage: 'input' }));
      const p = send(message);
      inflight.add(p);
      const done = (): void => { inflight.delete(p); };
      p.then(done, done);
      return p;
    },
    async verify() {
      if (settings.router && config.transport?.host === undefined && config.transport?.url === undefined) {
        throw new SmtpNotSupportedError('verify() needs transport.host: with a router (mx) there is no single server to check', { stage: 'connect' });
      }
      const client = await openSession(settings.defaultHost);
      await shutSession(client);
      return true;
    },
    close() {
      closing ??= (async () => {
        while (inflight.size > 0) await Promise.allSettled([...inflight]);
        await Promise.all([...pools.values()].map((p) => p.close()));
      })();
      return closing;
    },
    isIdle: () => inflight.size === 0,
    on(listener) {
      listeners.add(listener);
      return () => { listeners.delete(listener); };
    },
    [Symbol.asyncDispose]() {
      return mailer.close();
    },
  };
  return mailer;
}

// ---- helpers -------------------------------------------------------------------------------------

async function authenticate(client: SmtpClient, auth: NonNullable<Settings['auth']>): Promise<void> {
  if (auth.credentials === undefined) {
    await client.login(auth.user ?? '', auth.pass ?? '');
    return;
  }
  // Extra credentials (a token…): the named mechanisms in order, those the server offers.
  const credentials = { ...auth.credentials, ...(auth.user === undefined ? {} : { user: auth.user }), ...(auth.pass === undefined ? {} : { pass: auth.pass }) };
  const offered = (client.features.get('auth') ?? '').toUpperCase().split(/\s+/).filter(Boolean);
  const wanted = (auth.mechanisms ?? client.installedAuthenticators).filter((m) => offered.includes(m.toUpperCase()));
  if (wanted.length === 0) throw new SmtpNotSupportedError(`no configured AUTH mechanism is offered by the server (offered: ${offered.join(' ') || 'none'})`, { stage: 'auth' });
  let last: unknown;
  for (const mechanism of wanted) {
    try {
      await client.authenticate(mechanism, credentials);
      return;
    } catch (err) {
      last = err;
      if (!client.connected || !(err instanceof SmtpError) || err.stage !== 'auth') throw err;
    }
  }
  throw last;
}

async function shutSession(client: SmtpClient): Promise<void> {
  if (!client.connected) return;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([client.quit(), new Promise((resolve) => { timer = setTimeout(resolve, QUIT_TIMEOUT); })]);
  } catch {
    /* closing anyway */
  } finally {
    clearTimeout(timer);
    client.close();
  }
}

/** Config defaults (from, replyTo, headers, DSN) under the message, and a fixed Message-ID and
 *  Date, so that every attempt sends the same message and `info.messageId` is known even when the
 *  send fails. */
function prepare(input: MailMessage, config: ResolvedConfig, settings: Settings): MailMessage {
  const dsnDefaults = config.envelope?.dsn;
  const dsn = input.dsn ?? (dsnDefaults && (dsnDefaults.ret !== undefined || dsnDefaults.notify !== undefined)
    ? { ...(dsnDefaults.ret ? { ret: dsnDefaults.ret } : {}), ...(dsnDefaults.notify ? { notify: [...dsnDefaults.notify] } : {}) }
    : undefined);
  if (input.raw !== undefined && input.raw !== null) return dsn === undefined ? input : { ...input, dsn };
  const d = config.message;
  const headers = mergeHeaders(d?.headers, input.headers);
  const messageId = input.messageId ?? (hasHeader(input.headers, 'message-id') ? undefined : newMessageId(input.from ?? d?.from, settings));
  return {
    ...input,
    ...(input.from === undefined && d?.from !== undefined ? { from: d.from } : {}),
    ...(input.replyTo === undefined && d?.replyTo !== undefined ? { replyTo: d.replyTo } : {}),
    ...(headers === undefined ? {} : { headers }),
    ...(dsn === undefined ? {} : { dsn }),
    ...(messageId === undefined ? {} : { messageId }),
    date: input.date ?? new Date(),
  };
}

type Headers = NonNullable<MailMessage['headers']>;

function hasHeader(headers: Headers | undefined, lowerName: string): boolean {
  return Object.keys(headers ?? {}).some((k) => k.toLowerCase() === lowerName);
}

/** The message's own headers win over the config's, names compared without case. */
function mergeHeaders(defaults: Readonly<Record<string, string | null>> | undefined, own: Headers | undefined): Headers | undefined {
  if (!defaults) return own;
  const out: Record<string, Headers[string]> = {};
  for (const [k, v] of Object.entries(defaults)) if (v !== null && !hasHeader(own, k.toLowerCase())) out[k] = v;
  return { ...out, ...own };
}

function newMessageId(from: MailMessage['from'], settings: Settings): string {
  const text = typeof from === 'string' ? from : from?.address;
  const domain = settings.client.localHostname ?? (text ? /@([A-Za-z0-9.-]+)>?\s*$/.exec(text)?.[1] : undefined) ?? defaultLocalHostname(undefined);
  return `<${randomUUID()}@${/^[^\s<>@]+$/.test(domain) ? domain : 'localhost'}>`;
}

/** A stream can be read once: a message holding one is tried once. */
function isReplayable(message: MailMessage): boolean {
  const once = (v: unknown): boolean => v instanceof Readable || (typeof v === 'object' && v !== null && Symbol.asyncIterator in v);
  return ![message.text, message.html, message.amp, message.raw, ...(message.attachments ?? []).map((a) => a.content)].some(once);
}

async function envelopeOf(message: MailMessage, builder: () => SmtpClient): Promise<Envelope> {
  if (message.raw === undefined || message.raw === null) return envelopeFromMessage(message);
  return (await builder().build(message)).envelope;
}

function merge(settled: readonly Settled[], envelope: Envelope | undefined, messageId: string): SendMailInfo {
  const accepted = settled.flatMap((s) => s.outcome?.result.accepted ?? []);
  const failed = settled.filter((s) => s.error !== undefined);
  const unknown = failed.find((s) => s.error instanceof SmtpDeliveryUnknownError)?.error as SmtpDeliveryUnknownError | undefined;
  if (unknown) {
    if (settled.length === 1) throw unknown;
    throw new SmtpDeliveryUnknownError(messageId, unknown.recipients, unknown.cause, accepted);
  }
  // Nothing delivered anywhere: the (first) error is the answer.
  if (accepted.length === 0) throw failed[0]!.error;
  const rejected = new Map<string, SmtpError>();
  for (const s of settled) {
    for (const [r, e] of s.outcome?.rejected ?? []) rejected.set(r, e);
    if (s.error === undefined) continue;
    // A route that failed as a whole while others delivered: its recipients are rejected.
    const replies = s.error instanceof SmtpRecipientsRefusedError ? s.error.recipients : {};
    for (const r of s.route.recipients) {
      const reply = replies[r];
      rejected.set(r, reply ? new SmtpRecipientRefusedError(r, reply) : asSmtpError(s.error));
    }
  }
  const first = settled.find((s) => s.outcome !== undefined)!.outcome!.result;
  return {
    accepted,
    rejected: [...rejected.keys()],
    ...(rejected.size > 0 ? { rejectedErrors: [...rejected.values()] } : {}),
    response: describeReply(first.response),
    envelope: envelope ? { from: envelope.from, to: [...envelope.to] } : { from: first.envelope.from, to: [...first.envelope.to] },
    messageId: first.messageId ?? messageId,
  };
}

function asSmtpError(err: unknown): SmtpError {
  return err instanceof SmtpError ? err : new SmtpError(String((err as Error)?.message ?? err), { cause: err, permanent: true });
}
