/**
 * SmtpClient: one SMTP/LMTP session with smtplib's surface (SMTP, SMTP_SSL and LMTP in one class).
 * It is thin on purpose: the connection matches replies, the stages (transport, greeting, TLS
 * policy, authenticators, envelope extensions, data phase) come from plugins, and this file
 * sequences them with smtplib's semantics.
 */
import type * as tls from 'node:tls';
import { Connection, DEFAULT_TIMEOUTS, type Timeouts } from './connection.js';
import {
  SmtpAbortError, SmtpConnectError, SmtpDataError, SmtpError, SmtpHeloError, SmtpInvalidInputError,
  SmtpNotSupportedError, SmtpRecipientsRefusedError, SmtpResponseError, SmtpSenderRefusedError,
  SmtpServerDisconnectedError, SmtpTimeoutError, type SmtpStage,
} from './errors.js';
import type { BuiltMessage, MailMessage, MessageBody } from './message/types.js';
import type { AuthContext, EnvelopeContext, MessageBuilder, MessageFacts, Plugin } from './plugin.js';
import { envelopeAddress, formatPath, needsSmtpUtf8 } from './protocol/address.js';
import { authMechanisms, parseCapabilities } from './protocol/capabilities.js';
import { checkArgument, encodeCommand } from './protocol/command.js';
import { describeBody, stuffWhole } from './protocol/data-stream.js';
import { DEFAULT_REPLY_LIMITS, type ReplyLimits, type SmtpReply } from './protocol/reply.js';
import { chooseMechanisms, isAuthFailure, noMechanismError, runAuthenticator, type SaslChannel } from './stages/auth.js';
import { sendBdatBody, sendDataBody } from './stages/data.js';
import { mailParameters, rcptParameters, type EnvelopeOptions } from './stages/envelope.js';
import { defaultLocalHostname } from './stages/greeting.js';
import { resolveStages, type SessionStages } from './stages/resolve.js';
import { parseEndpoint, serverName, type Endpoint } from './stages/transport.js';
import { createTranscript, type DebugOption, type Transcript } from './transcript.js';

export type TlsMode = 'none' | 'opportunistic' | 'required' | 'implicit';

export type TlsOptions = Pick<tls.ConnectionOptions,
  'ca' | 'cert' | 'key' | 'passphrase' | 'pfx' | 'servername' | 'rejectUnauthorized' | 'minVersion' | 'maxVersion'
  | 'ciphers' | 'checkServerIdentity' | 'ALPNProtocols' | 'session'>;

export interface SmtpClientOptions {
  /** Host name or address; 'host:port' (one colon), '[v6]:port', or '/abs/path' for a unix socket. */
  readonly host?: string;
  /** Default 25 (the greeting plugin's default, 24 for LMTP); 465 when `tls: 'implicit'`. */
  readonly port?: number;
  /** The EHLO/HELO/LHLO name; default this host's FQDN, else `[ip]`. */
  readonly localHostname?: string;
  /** TLS policy: a built-in mode or the name of a plugin's policy. Default 'none' (as smtplib). */
  readonly tls?: TlsMode | (string & {});
  readonly tlsOptions?: TlsOptions;
  /** Allow AUTH mechanisms that send secrets in the clear on an unencrypted connection. */
  readonly allowInsecureAuth?: boolean;
  readonly timeouts?: Partial<Timeouts>;
  readonly signal?: AbortSignal;
  /** 'auto': BDAT when CHUNKING is advertised. */
  readonly chunking?: 'auto' | 'never';
  /** 'auto': pipeline MAIL/RCPT/DATA when PIPELINING is advertised. */
  readonly pipelining?: 'auto' | 'never';
  /** Every stage is a plugin. */
  readonly plugins?: readonly Plugin[];
  /** 0, 1 (transcript), 2 (with timestamps) or a callback; secrets are redacted. */
  readonly debug?: DebugOption;
  /** SASL mechanism preference for login(), e.g. ['CRAM-MD5', 'PLAIN', 'LOGIN']. */
  readonly authMechanisms?: readonly string[];
  /** Reply parser limits (line 8 192 octets, reply 64 KiB by default). */
  readonly limits?: Partial<ReplyLimits>;
  /** BDAT chunk size in octets (default 1 MiB). */
  readonly chunkSize?: number;
}

export type RcptOptionsInput =
  | EnvelopeOptions
  | Readonly<Record<string, EnvelopeOptions>>
  | ((recipient: string) => EnvelopeOptions | undefined);

export interface SendmailOptions {
  readonly mailOptions?: EnvelopeOptions;
  /** One options object for all recipients, a map keyed by recipient, or a function. */
  readonly rcptOptions?: RcptOptionsInput;
}

export interface SendmailResult {
  /** Recipients the server did not take, with its reply (at RCPT, or after the body for LMTP). */
  readonly refused: Record<string, SmtpReply>;
  readonly accepted: string[];
  /** The reply to the end of the body (LMTP: the first recipient's success). */
  readonly response: SmtpReply;
}

export interface SendMessageOptions extends SendmailOptions {
  readonly from?: string;
  readonly to?: string | readonly string[];
}

export interface SendMessageResult extends SendmailResult {
  readonly envelope: { readonly from: string; readonly to: readonly string[] };
  readonly messageId?: string;
}

/** LMTP's data(): the first reply, plus every accepted recipient's own. */
export interface DataReply extends SmtpReply {
  readonly recipients?: Readonly<Record<string, SmtpReply>>;
}

/** Built-in message builders, registered by the package entry (core does not import them). */
let builtinBuilders: readonly MessageBuilder[] = [];
export function registerBuiltinMessageBuilders(builders: readonly MessageBuilder[]): void {
  builtinBuilders = builders;
}

const NO_FEATURES: ReadonlyMap<string, string> = new Map();

export class SmtpClient implements AsyncDisposable {
  readonly options: SmtpClientOptions;
  private readonly stages: SessionStages;
  private readonly transcript: Transcript;
  private readonly timeouts: Timeouts;
  private readonly limits: ReplyLimits;
  private conn: Connection | undefined;
  private everConnected = false;
  private endpoint: Endpoint | undefined;
  private featureMap: ReadonlyMap<string, string> = NO_FEATURES;
  private esmtp = false;
  private greeted = false;
  private policyApplied = false;
  /** Recipients accepted since the last MAIL (for LMTP's per-recipient data replies). */
  private txRecipients: string[] = [];
  private lane: Promise<unknown> = Promise.resolve();
  private ehloName: string | undefined;
  /** The reply to the last EHLO/LHLO and HELO, as smtplib keeps them. */
  ehloResp: SmtpReply | undefined;
  heloResp: SmtpReply | undefined;

  constructor(options: SmtpClientOptions = {}) {
    this.options = options;
    this.stages = resolveStages(options.plugins ?? [], builtinBuilders);
    this.transcript = createTranscript(options.debug);
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...stripUndefined(options.timeouts ?? {}) };
    this.limits = { ...DEFAULT_REPLY_LIMITS, ...stripUndefined(options.limits ?? {}) };
    if (options.tls !== undefined && !this.stages.tlsPolicies.has(options.tls)) {
      throw new SmtpInvalidInputError('tls', `unknown TLS policy ${JSON.stringify(options.tls)} (known: ${[...this.stages.tlsPolicies.keys()].join(', ')})`);
    }
    if (options.localHostname !== undefined) checkArgument('localHostname', options.localHostname);
    options.signal?.addEventListener('abort', () => {
      this.conn?.fail(new SmtpAbortError('aborted by the caller', { stage: 'command' }));
    }, { once: true });
  }

  // ---- state ------------------------------------------------------------------------------------

  /** EHLO keywords (lower-case) and their parameters; empty before EHLO and after QUIT. */
  get features(): ReadonlyMap<string, string> {
    return this.featureMap;
  }

  get doesEsmtp(): boolean {
    return this.esmtp;
  }

  hasExtension(name: string): boolean {
    return this.featureMap.has(name.toLowerCase());
  }

  /** True while a connection is open. */
  get connected(): boolean {
    return this.conn !== undefined && !this.conn.closed;
  }

  /** True when the connection is encrypted (implicit TLS or after STARTTLS). */
  get secure(): boolean {
    return this.conn?.secure ?? false;
  }

  /** The TLS socket when encrypted: protocol, cipher and peer certificate for reports. */
  get tlsSocket(): tls.TLSSocket | undefined {
    return this.conn?.tlsSocket;
  }

  /** The plugins' stages as wired for this client (for tools such as `probe`). */
  get installedAuthenticators(): readonly string[] {
    return this.stages.authenticators.map((a) => a.mechanism.toUpperCase());
  }

  private get policyName(): string {
    return this.options.tls ?? 'none';
  }

  // ---- connection -------------------------------------------------------------------------------

  /** Opens the transport and reads the greeting; not 220 → SmtpConnectError. */
  async connect(host?: string, port?: number): Promise<SmtpReply> {
    this.checkSignal('connect');
    if (this.conn && !this.conn.closed) this.close();
    this.everConnected = true;
    const endpoint = parseEndpoint(host ?? this.options.host ?? 'localhost', port ?? (host ? undefined : this.options.port));
    this.endpoint = endpoint;
    const policy = this.stages.tlsPolicies.get(this.policyName)!;
    const implicitTls = policy.implicit === true;
    const resolvedPort = endpoint.port ?? (implicitTls ? 465 : this.stages.greeting.defaultPort ?? 25);
    return this.withDeadline('connect', async () => {
      const opened = await this.stages.transport.open({
        host: endpoint.host,
        port: resolvedPort,
        path: endpoint.path,
        implicitTls,
        tlsOptions: { ...this.options.tlsOptions, servername: this.options.tlsOptions?.servername ?? serverName(endpoint.host) },
        connectTimeout: this.timeouts.connect,
        signal: this.options.signal,
      });
      const conn = new Connection(opened.socket, opened.secure, this.transcript, this.limits);
      this.conn = conn;
      this.resetSession();
      if (this.transcript.enabled) {
        this.transcript.info(`connected to ${endpoint.path ?? `${endpoint.host}:${resolvedPort}`}${opened.secure ? ' (TLS)' : ''}`);
      }
      const [greeting] = await conn.expect(1, 'greeting', this.timeouts.greeting);
      if (greeting!.code !== 220) {
        conn.close();
        throw new SmtpConnectError(greeting!, `server refused the connection: ${greeting!.code} ${greeting!.message}`, { stage: 'greeting' });
      }
      for (const h of this.stages.hooks) await h.onConnect?.({ host: endpoint.path ?? endpoint.host, port: resolvedPort, secure: opened.secure });
      return greeting!;
    });
  }

  /** Sends QUIT and closes; the reply is returned. Features are forgotten. */
  async quit(): Promise<SmtpReply> {
    const conn = this.requireConnection('quit');
    this.logClient('QUIT');
    try {
      return await conn.command('QUIT\r\n', 'quit', this.timeouts.command);
    } finally {
      conn.end();
      this.resetSession();
    }
  }

  /** Closes the connection without QUIT. Idempotent. */
  close(): void {
    this.conn?.close();
    this.resetSession();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.connected) {
      try {
        await this.quit();
      } catch {
        /* closing anyway */
      }
    }
    this.close();
  }

  // ---- greeting and TLS -------------------------------------------------------------------------

  async ehlo(name?: string): Promise<SmtpReply> {
    const conn = this.requireConnection('helo');
    const host = checkArgument('localHostname', name ?? this.localHostname());
    const verb = this.stages.greeting.verb;
    this.logClient(`${verb} ${host}`);
    const reply = await conn.command(`${verb} ${host}\r\n`, 'helo', this.timeouts.command);
    this.ehloResp = reply;
    if (reply.code === 250) {
      this.featureMap = parseCapabilities(reply);
      this.esmtp = true;
      this.greeted = true;
    } else {
      this.featureMap = NO_FEATURES;
      this.esmtp = false;
      this.closeOn421(reply);
    }
    return reply;
  }

  async helo(name?: string): Promise<SmtpReply> {
    const conn = this.requireConnection('helo');
    const host = checkArgument('localHostname', name ?? this.localHostname());
    this.logClient(`HELO ${host}`);
    const reply = await conn.command(`HELO ${host}\r\n`, 'helo', this.timeouts.command);
    this.heloResp = reply;
    // After HELO there is no ESMTP: no extension parameters may be sent.
    this.esmtp = false;
    this.featureMap = NO_FEATURES;
    if (reply.code >= 200 && reply.code <= 299) this.greeted = true;
    this.closeOn421(reply);
    return reply;
  }

  /** EHLO (HELO when refused, unless the greeting stage forbids it), then the TLS policy. */
  async ehloOrHeloIfNeeded(): Promise<void> {
    await this.greetIfNeeded();
    if (this.policyApplied) return;
    if (this.secure) {
      this.policyApplied = true;
      return;
    }
    const policy = this.stages.tlsPolicies.get(this.policyName)!;
    const decision = policy.decide({ features: this.featureMap, secure: false, host: this.endpoint?.host ?? '' });
    if (decision.action === 'refuse') {
      this.close();
      throw new SmtpNotSupportedError(decision.reason, { stage: 'starttls' });
    }
    if (decision.action === 'starttls') {
      try {
        await this.startTls();
      } catch (err) {
        // Opportunistic TLS goes on in plaintext when the server declines (454) with the session
        // intact, as nodemailer and Postfix's "may" level do; any other policy that asked for TLS
        // must not let a later call fall through to plaintext: the connection is closed.
        if (this.policyName === 'opportunistic' && err instanceof SmtpResponseError && err.code !== 421 && this.connected) {
          if (this.transcript.enabled) this.transcript.info(`STARTTLS declined (${err.code}); continuing without TLS`);
          this.policyApplied = true;
          return;
        }
        this.close();
        throw err;
      }
    }
    this.policyApplied = true;
  }

  private async greetIfNeeded(): Promise<void> {
    if (!this.conn && !this.everConnected && this.options.host !== undefined) await this.connect();
    this.requireConnection('helo');
    if (this.greeted) return;
    const e = await this.ehlo();
    if (e.code >= 200 && e.code <= 299) {
      this.greeted = true;
      return;
    }
    if (!this.stages.greeting.fallbackToHelo || !this.connected) {
      throw new SmtpHeloError(e, `${this.stages.greeting.verb} refused: ${e.code} ${e.message}`, { stage: 'helo' });
    }
    const h = await this.helo();
    if (h.code < 200 || h.code > 299) {
      throw new SmtpHeloError(h, `EHLO and HELO refused: ${h.code} ${h.message}`, { stage: 'helo' });
    }
    this.greeted = true;
  }

  /** STARTTLS, the handshake, and EHLO again (everything learned before is forgotten). */
  async startTls(tlsOptions?: TlsOptions): Promise<SmtpReply> {
    await this.greetIfNeeded();
    const conn = this.requireConnection('starttls');
    if (!this.hasExtension('starttls')) {
      throw new SmtpNotSupportedError('STARTTLS extension not supported by server.', { stage: 'starttls' });
    }
    this.logClient('STARTTLS');
    const [reply] = await conn.send('STARTTLS\r\n', 1, 'starttls', this.timeouts.command, true);
    if (reply!.code !== 220) {
      this.closeOn421(reply!);
      throw new SmtpResponseError(reply!, `STARTTLS refused: ${reply!.code} ${reply!.message}`, { stage: 'starttls' });
    }
    const host = this.endpoint?.host ?? 'localhost';
    const merged = { ...this.options.tlsOptions, ...tlsOptions };
    await conn.upgradeTls({ ...merged, host, servername: merged.servername ?? serverName(host) }, this.timeouts.command);
    if (this.transcript.enabled) {
      const s = conn.tlsSocket!;
      this.transcript.info(`TLS established: ${s.getProtocol()} ${s.getCipher()?.name ?? ''}`);
    }
    this.policyApplied = true;
    this.featureMap = NO_FEATURES;
    this.esmtp = false;
    this.greeted = false;
    this.ehloResp = undefined;
    this.heloResp = undefined;
    await this.greetIfNeeded();
    return reply!;
  }

  // ---- authentication ---------------------------------------------------------------------------

  /**
   * Authenticates with the best mechanism both sides have, falling back to the next one when a
   * mechanism's credentials are refused; the last failure is thrown.
   */
  async login(user: string, pass: string): Promise<SmtpReply> {
    if (typeof user !== 'string' || typeof pass !== 'string') throw new SmtpInvalidInputError('credentials', 'user and password must be strings');
    return this.exclusive(() => this.withDeadline('auth', async () => {
      await this.ehloOrHeloIfNeeded();
      if (!this.hasExtension('auth')) {
        throw new SmtpNotSupportedError('SMTP AUTH extension not supported by server.', { stage: 'auth' });
      }
      const advertised = authMechanisms(this.featureMap);
      const { usable, needTls } = chooseMechanisms(advertised, this.stages.authenticators, this.options.authMechanisms, this.secure, this.options.allowInsecureAuth === true);
      if (usable.length === 0) throw noMechanismError(advertised, this.stages.authenticators, needTls);
      let last: unknown;
      for (const auth of usable) {
        try {
          return await runAuthenticator(this.saslChannel(), auth, this.authContext({ user, pass }));
        } catch (err) {
          if (!isAuthFailure(err) || !this.connected) throw err;
          last = err;
        }
      }
      throw last;
    }));
  }

  /** Authenticates with one named mechanism (an installed authenticator). */
  async authenticate(mechanism: string, credentials: Readonly<Record<string, string>>): Promise<SmtpReply> {
    return this.exclusive(() => this.withDeadline('auth', async () => {
      await this.ehloOrHeloIfNeeded();
      const name = mechanism.toUpperCase();
      const auth = this.stages.authenticators.find((a) => a.mechanism.toUpperCase() === name);
      if (!auth) {
        throw new SmtpNotSupportedError(`no authenticator installed for ${name} (installed: ${this.installedAuthenticators.join(', ') || 'none'})`, { stage: 'auth' });
      }
      if (auth.requiresTls && !this.secure && this.options.allowInsecureAuth !== true) {
        throw noMechanismError([], [], [name]);
      }
      return runAuthenticator(this.saslChannel(), auth, this.authContext(credentials));
    }));
  }

  private authContext(credentials: Readonly<Record<string, string>>): AuthContext {
    return { credentials, secure: this.secure, hostname: this.endpoint?.host ?? '', features: this.featureMap };
  }

  private saslChannel(): SaslChannel {
    const conn = this.requireConnection('auth');
    return {
      exchange: async (line, redacted) => {
        this.logClient(redacted);
        const reply = await conn.command(line, 'auth', this.timeouts.command);
        this.closeOn421(reply);
        return reply;
      },
      secret: (v) => this.transcript.addSecret(v),
      scrub: (t) => this.transcript.scrub(t),
    };
  }

  // ---- simple commands (replies returned, never thrown) -----------------------------------------

  /** A raw command; returns the reply whatever its code (smtplib's docmd). */
  async command(verb: string, args?: string): Promise<SmtpReply> {
    const line = encodeCommand(verb, args, 'command arguments');
    const conn = this.requireConnection('command');
    this.logClient(line.slice(0, -2));
    const reply = await conn.command(line, 'command', this.timeouts.command);
    this.closeOn421(reply);
    return reply;
  }

  async verify(address: string): Promise<SmtpReply> {
    return this.command('VRFY', addressOnly(address, 'address'));
  }

  async expn(address: string): Promise<SmtpReply> {
    return this.command('EXPN', addressOnly(address, 'address'));
  }

  async help(arg?: string): Promise<SmtpReply> {
    return this.command('HELP', arg);
  }

  async noop(): Promise<SmtpReply> {
    return this.command('NOOP');
  }

  async rset(): Promise<SmtpReply> {
    this.txRecipients = [];
    return this.command('RSET');
  }

  // ---- the transaction, step by step ------------------------------------------------------------

  /** MAIL FROM; returns the reply. Options: typed (read by extensions) or raw ESMTP strings. */
  async mail(from: string, params?: EnvelopeOptions): Promise<SmtpReply> {
    const conn = this.requireConnection('mail');
    const sender = envelopeAddress(from, 'from');
    const facts: MessageFacts = { needsSmtpUtf8: needsSmtpUtf8(sender), chunked: false };
    const list = this.esmtp ? mailParameters(this.stages.envelopeExtensions, this.envelopeContext(facts), params) : [];
    const line = `MAIL FROM:${formatPath(sender)}${joinParams(list)}`;
    this.logClient(line);
    this.txRecipients = [];
    const reply = await conn.command(`${line}\r\n`, 'mail', this.timeouts.command);
    this.closeOn421(reply);
    return reply;
  }

  /** RCPT TO; returns the reply. */
  async rcpt(to: string, params?: EnvelopeOptions): Promise<SmtpReply> {
    const conn = this.requireConnection('rcpt');
    const rcpt = envelopeAddress(to, 'to');
    if (rcpt === '') throw new SmtpInvalidInputError('to', 'empty recipient address');
    const facts: MessageFacts = { needsSmtpUtf8: needsSmtpUtf8(rcpt), chunked: false };
    const list = this.esmtp ? rcptParameters(this.stages.envelopeExtensions, this.envelopeContext(facts), params, rcpt) : [];
    const line = `RCPT TO:${formatPath(rcpt)}${joinParams(list)}`;
    this.logClient(line);
    const reply = await conn.command(`${line}\r\n`, 'rcpt', this.timeouts.command);
    if (reply.code === 250 || reply.code === 251) this.txRecipients.push(to);
    this.closeOn421(reply);
    return reply;
  }

  /**
   * DATA and the body; returns the final reply. Not 354 → SmtpDataError. With LMTP the reply carries
   * every accepted recipient's own reply in `recipients`.
   */
  async data(body: MessageBody): Promise<DataReply> {
    const conn = this.requireConnection('data');
    this.logClient('DATA');
    const go = await conn.command('DATA\r\n', 'data', this.timeouts.command);
    if (go.code !== 354) {
      this.closeOn421(go);
      throw new SmtpDataError(go, `DATA refused: ${go.code} ${go.message}`, { stage: 'data' });
    }
    const perRecipient = this.stages.data.repliesPerRecipient;
    const rcpts = this.txRecipients;
    this.txRecipients = [];
    const count = perRecipient ? Math.max(1, rcpts.length) : 1;
    const described = describeBody(body);
    const replies = await sendDataBody(conn, body, described.buffer, count, this.timeouts, this.transcript);
    for (const r of replies) this.closeOn421(r);
    if (!perRecipient) return replies[0]!;
    const recipients: Record<string, SmtpReply> = {};
    rcpts.forEach((r, i) => { recipients[r] = replies[i]!; });
    return { ...replies[0]!, recipients };
  }

  // ---- whole transactions -----------------------------------------------------------------------

  /**
   * smtplib's sendmail: MAIL, RCPT for each recipient, the body; resolves with the refused map,
   * throws when the sender, every recipient, or the body is refused (RSET first, except after 421).
   * Pipelined when the server allows; the body goes as BDAT chunks when CHUNKING is offered.
   */
  async sendmail(from: string, to: string | readonly string[], body: MessageBody, options: SendmailOptions = {}): Promise<SendmailResult> {
    return this.exclusive(() => this.withDeadline('mail', () => this.transaction(from, to, body, options, undefined)));
  }

  /**
   * smtplib's send_message with nodemailer's message object: the message is built by the first
   * matching message builder (raw, then the MIME builder), the envelope comes from its headers
   * (Sender/From; To+Cc+Bcc; Resent-*) unless given, and Bcc never reaches the wire.
   */
  async sendMessage(message: MailMessage, options: SendMessageOptions = {}): Promise<SendMessageResult> {
    const built = await this.build(message);
    const from = options.from ?? built.envelope.from;
    const to = options.to ?? built.envelope.to;
    const dsn = message.dsn;
    const sendOptions: SendmailOptions = {
      mailOptions: options.mailOptions ?? (dsn ? { dsn } : undefined),
      rcptOptions: options.rcptOptions ?? (dsn ? { dsn } : undefined),
    };
    const result = await this.exclusive(() => this.withDeadline('mail', () => this.transaction(from, to, built.body, sendOptions, built)));
    return { ...result, envelope: { from, to: typeof to === 'string' ? [to] : to }, messageId: built.messageId };
  }

  /** Builds a message with the installed builders (used by sendMessage and the Mailer). */
  async build(message: MailMessage): Promise<BuiltMessage> {
    const builder = this.stages.messageBuilders.find((b) => b.matches(message));
    if (!builder) throw new SmtpInvalidInputError('message', 'no message builder accepts this message');
    return builder.build(message, { hostname: this.options.localHostname ?? this.ehloName ?? senderDomain(message) ?? defaultLocalHostname(undefined) });
  }

  private async transaction(
    from: string,
    to: string | readonly string[],
    body: MessageBody,
    options: SendmailOptions,
    built: BuiltMessage | undefined,
  ): Promise<SendmailResult> {
    const originals = typeof to === 'string' ? [to] : [...to];
    if (originals.length === 0) throw new SmtpInvalidInputError('to', 'no recipients');
    const sender = envelopeAddress(from, 'from');
    const rcpts = originals.map((r) => {
      const a = envelopeAddress(r, 'to');
      if (a === '') throw new SmtpInvalidInputError('to', 'empty recipient address');
      return a;
    });
    await this.ehloOrHeloIfNeeded();
    const conn = this.requireConnection('mail');
    const esmtp = this.esmtp;
    const chunked = esmtp && this.options.chunking !== 'never' && this.featureMap.has('chunking');
    const pipelining = esmtp && this.options.pipelining !== 'never' && this.featureMap.has('pipelining');
    const described = describeBody(body);
    const bodyOption = options.mailOptions && !Array.isArray(options.mailOptions) ? (options.mailOptions as Record<string, unknown>).body : undefined;
    // Not line-oriented text: NUL octets (a known body), or BINARYMIME asked for explicitly.
    const binary = chunked && (String(bodyOption ?? '').toUpperCase() === 'BINARYMIME'
      || (bodyOption === undefined && this.featureMap.has('binarymime') && described.buffer !== undefined && described.buffer.includes(0)));
    const needsUtf8 = built?.needsSmtpUtf8 === true || needsSmtpUtf8(sender) || rcpts.some(needsSmtpUtf8);
    const facts: MessageFacts = {
      size: built?.size ?? described.size,
      // A stream's content is unknown: declare 8BITMIME (harmless for 7-bit text) when offered.
      eightBit: built?.eightBit ?? described.eightBit ?? true,
      needsSmtpUtf8: needsUtf8,
      chunked,
      binary,
    };
    let mailLine: string;
    const rcptLines: string[] = [];
    if (esmtp) {
      const ctx = this.envelopeContext(facts);
      const exts = this.stages.envelopeExtensions;
      mailLine = `MAIL FROM:${formatPath(sender)}${joinParams(mailParameters(exts, ctx, options.mailOptions))}\r\n`;
      for (let i = 0; i < rcpts.length; i++) {
        const ro = rcptOptionsFor(options.rcptOptions, originals[i]!, rcpts[i]!);
        rcptLines.push(`RCPT TO:${formatPath(rcpts[i]!)}${joinParams(rcptParameters(exts, ctx, ro, rcpts[i]!))}\r\n`);
      }
    } else {
      if (needsUtf8) throw new SmtpNotSupportedError('an address needs SMTPUTF8 and the server did not accept EHLO', { stage: 'mail' });
      // smtplib: after HELO, mail and rcpt options are dropped.
      mailLine = `MAIL FROM:${formatPath(sender)}\r\n`;
      for (const r of rcpts) rcptLines.push(`RCPT TO:${formatPath(r)}\r\n`);
    }
    for (const h of this.stages.hooks) await h.beforeSend?.({ from: sender, to: rcpts });

    const perRecipient = this.stages.data.repliesPerRecipient;
    const n = rcpts.length;
    // The whole transaction goes in one write when the body is small and known: MAIL, RCPT…,
    // BDAT n LAST and the body (LMTP waits for the RCPT replies first: its BDAT reply count
    // depends on them).
    const oneShotBdat = chunked && pipelining && !perRecipient && described.buffer !== undefined && described.buffer.length <= this.chunkSize();
    const pipelineData = pipelining && !chunked;

    let replies: SmtpReply[];
    if (pipelining) {
      if (this.transcript.enabled) {
        this.logClient(mailLine.slice(0, -2));
        for (const l of rcptLines) this.logClient(l.slice(0, -2));
      }
      let text = mailLine + rcptLines.join('');
      let count = 1 + n;
      const stages: SmtpStage[] = ['mail', ...rcptLines.map((): SmtpStage => 'rcpt')];
      if (pipelineData) {
        text += 'DATA\r\n';
        count++;
        stages.push('data');
        this.logClient('DATA');
      }
      if (oneShotBdat) {
        const bytes = binary ? described.buffer! : stuffWhole(described.buffer!, { stuff: false });
        const header = `BDAT ${bytes.length} LAST\r\n`;
        this.logClient(`${header.trimEnd()} <${bytes.length} octets>`);
        // The whole message leaves in this write: if the connection is lost before the replies,
        // the server may have taken it, so every reply of the group counts as the final one.
        const p = conn.expect(count + 1, stages.map((): SmtpStage => 'final-reply'), this.timeouts.data);
        p.catch(noop); // awaited below, after the writes
        // A write failure surfaces through the reply waiter, with the stage it happened in.
        const head = conn.write(text + header, 'mail', this.timeouts.command);
        const w = conn.write(bytes, 'body', this.timeouts.data);
        await Promise.allSettled([head, w]);
        replies = await p;
        return this.finishOneShot(conn, sender, originals, replies);
      }
      replies = await conn.send(text, count, stages, this.timeouts.command);
    } else {
      this.logClient(mailLine.slice(0, -2));
      replies = [await conn.command(mailLine, 'mail', this.timeouts.command)];
      if (replies[0]!.code === 250) {
        for (let i = 0; i < n; i++) {
          this.logClient(rcptLines[i]!.slice(0, -2));
          const r = await conn.command(rcptLines[i]!, 'rcpt', this.timeouts.command);
          replies.push(r);
          if (r.code === 421) break;
        }
      }
    }

    const dataReply = pipelineData ? replies[1 + n] : undefined;
    const { accepted, refused } = await this.envelopeVerdict(conn, sender, originals, replies, dataReply);

    let final: SmtpReply[];
    if (chunked) {
      try {
        final = await sendBdatBody(conn, body, perRecipient ? accepted.length : 1, pipelining, this.chunkSize(), this.timeouts, this.transcript, binary);
      } catch (err) {
        if (err instanceof SmtpResponseError && err.code === 421) this.close();
        else if (this.connected) await this.safeRset(conn);
        throw err;
      }
    } else {
      const go = dataReply ?? await (this.logClient('DATA'), conn.command('DATA\r\n', 'data', this.timeouts.command));
      if (go.code !== 354) {
        if (go.code === 421) this.close(); else await this.safeRset(conn);
        throw new SmtpDataError(go, `DATA refused: ${go.code} ${go.message}`, { stage: 'data' });
      }
      final = await sendDataBody(conn, body, described.buffer, perRecipient ? accepted.length : 1, this.timeouts, this.transcript);
    }
    return this.finish(conn, sender, originals, accepted, refused, final, perRecipient);
  }

  private async finishOneShot(conn: Connection, sender: string, originals: string[], replies: SmtpReply[]): Promise<SendmailResult> {
    const bdatReply = replies[1 + originals.length]!;
    const { accepted, refused } = await this.envelopeVerdict(conn, sender, originals, replies, bdatReply);
    return this.finish(conn, sender, originals, accepted, refused, [bdatReply], false);
  }

  /**
   * Reads the MAIL and RCPT replies (replies[0], replies[1..n]): sender refused → RSET and
   * SmtpSenderRefusedError; a 421 closes; every recipient refused → RSET and
   * SmtpRecipientsRefusedError. `after` is the reply to what was pipelined behind them (DATA's 354,
   * or the one-shot BDAT's), which decides how the transaction is abandoned.
   */
  private async envelopeVerdict(
    conn: Connection, sender: string, originals: readonly string[], replies: readonly SmtpReply[], after: SmtpReply | undefined,
  ): Promise<{ accepted: string[]; refused: Record<string, SmtpReply> }> {
    const mailReply = replies[0]!;
    if (mailReply.code !== 250) {
      await this.abandon(conn, mailReply, after);
      throw new SmtpSenderRefusedError(mailReply, sender);
    }
    const refused: Record<string, SmtpReply> = {};
    const accepted: string[] = [];
    for (let i = 0; i < originals.length; i++) {
      const r = replies[1 + i];
      if (!r) break;
      if (r.code === 250 || r.code === 251) accepted.push(originals[i]!);
      else refused[originals[i]!] = r;
      if (r.code === 421) {
        this.close();
        for (let j = i + 1; j < originals.length; j++) refused[originals[j]!] = r;
        throw new SmtpRecipientsRefusedError(refused);
      }
    }
    if (accepted.length === 0) {
      await this.abandon(conn, mailReply, after);
      throw new SmtpRecipientsRefusedError(refused);
    }
    return { accepted, refused };
  }

  private async finish(
    conn: Connection, sender: string, originals: string[], accepted: string[], refused: Record<string, SmtpReply>,
    final: SmtpReply[], perRecipient: boolean,
  ): Promise<SendmailResult> {
    let result: SendmailResult;
    if (perRecipient) {
      // LMTP: each accepted recipient has its own verdict on the message.
      const delivered: string[] = [];
      let response: SmtpReply | undefined;
      accepted.forEach((r, i) => {
        const reply = final[i]!;
        if (reply.code >= 200 && reply.code < 300) {
          delivered.push(r);
          response ??= reply;
        } else {
          refused[r] = reply;
        }
      });
      if (final.some((r) => r.code === 421)) this.close();
      if (delivered.length === 0) throw new SmtpRecipientsRefusedError(refused, { stage: 'final-reply' });
      result = { refused, accepted: delivered, response: response! };
    } else {
      const reply = final[0]!;
      if (reply.code !== 250) {
        if (reply.code === 421) this.close(); else await this.safeRset(conn);
        throw new SmtpDataError(reply, `message refused: ${reply.code} ${reply.message}`, { stage: 'final-reply' });
      }
      result = { refused, accepted, response: reply };
    }
    for (const h of this.stages.hooks) await h.afterSend?.({ envelope: { from: sender, to: originals }, ...result });
    return result;
  }

  /** After a refused MAIL or every RCPT refused: end a pipelined DATA that got 354, then RSET. */
  private async abandon(conn: Connection, reply: SmtpReply, dataReply: SmtpReply | undefined): Promise<void> {
    if (reply.code === 421 || dataReply?.code === 421) {
      this.close();
      return;
    }
    if (dataReply?.code === 354) {
      // The server is reading a body we will not send: an empty one ends it (and fails for lack
      // of recipients, or is delivered empty to nobody).
      try {
        this.logClient('.');
        await conn.command('.\r\n', 'final-reply', this.timeouts.data);
      } catch {
        return;
      }
    }
    await this.safeRset(conn);
  }

  private async safeRset(conn: Connection): Promise<void> {
    if (conn.closed) return;
    try {
      this.logClient('RSET');
      const r = await conn.command('RSET\r\n', 'rset', this.timeouts.command);
      this.closeOn421(r);
    } catch {
      /* smtplib's _rset: a disconnect here is reported by the next command */
    }
  }

  // ---- helpers ----------------------------------------------------------------------------------

  private envelopeContext(message: MessageFacts): EnvelopeContext {
    const features = this.featureMap;
    return { features, hasExtension: (n) => features.has(n.toLowerCase()), message, esmtp: this.esmtp };
  }

  private chunkSize(): number {
    return this.options.chunkSize ?? 1024 * 1024;
  }

  private localHostname(): string {
    this.ehloName ??= this.options.localHostname ?? defaultLocalHostname(this.conn?.localAddress);
    return this.ehloName;
  }

  private requireConnection(stage: SmtpStage): Connection {
    this.checkSignal(stage);
    const conn = this.conn;
    if (!conn || conn.closed) {
      throw new SmtpServerDisconnectedError(
        conn ? `${stage}: not connected (${conn.closedBy?.message ?? 'closed'})` : 'please run connect() first',
        { stage, cause: conn?.closedBy },
      );
    }
    return conn;
  }

  private checkSignal(stage: SmtpStage): void {
    if (this.options.signal?.aborted) throw new SmtpAbortError('aborted by the caller', { stage });
  }

  private closeOn421(reply: SmtpReply): void {
    // 421: the service is closing the channel; no RSET, no QUIT.
    if (reply.code === 421) this.close();
  }

  private resetSession(): void {
    this.featureMap = NO_FEATURES;
    this.esmtp = false;
    this.greeted = false;
    this.policyApplied = false;
    this.ehloResp = undefined;
    this.heloResp = undefined;
    this.txRecipients = [];
  }

  private logClient(line: string): void {
    if (this.transcript.enabled) this.transcript.client(line);
  }

  /**
   * Whole transactions and logins run one at a time, in call order: two concurrent sendmail()
   * calls on one session would otherwise interleave their commands on the wire.
   */
  private exclusive<T>(op: () => Promise<T>): Promise<T> {
    const run = this.lane.then(op, op);
    this.lane = run.catch(noop);
    return run;
  }

  /** Runs one operation under the overall deadline (`timeouts.total`), when one is set. */
  private async withDeadline<T>(stage: SmtpStage, op: () => Promise<T>): Promise<T> {
    const total = this.timeouts.total;
    if (total === undefined) return op();
    let timer: NodeJS.Timeout | undefined;
    let fired: SmtpTimeoutError | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const at = this.conn?.stage ?? stage;
        fired = new SmtpTimeoutError(`${at}: operation exceeded the total deadline of ${total} ms`, total, { stage: at });
        this.conn?.fail(fired);
        reject(fired);
      }, total);
    });
    try {
      return await Promise.race([op(), deadline]);
    } catch (err) {
      throw fired ?? err;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The From/Sender domain: the conventional right-hand side of a Message-ID (nodemailer does so). */
function senderDomain(message: MailMessage): string | undefined {
  const from = message.sender ?? message.from;
  const text = typeof from === 'string' ? from : from?.address;
  const m = text ? /@([A-Za-z0-9.-]+)>?\s*$/.exec(text) : null;
  return m?.[1];
}

function noop(): void {}

function joinParams(params: readonly string[]): string {
  return params.length === 0 ? '' : ` ${params.join(' ')}`;
}

function addressOnly(address: string, field: string): string {
  checkArgument(field, address);
  try {
    return envelopeAddress(address, field) || address;
  } catch {
    return address;
  }
}

function rcptOptionsFor(input: RcptOptionsInput | undefined, original: string, bare: string): EnvelopeOptions | undefined {
  if (input === undefined) return undefined;
  if (typeof input === 'function') return input(original);
  if (Array.isArray(input)) return input as readonly string[];
  const map = input as Readonly<Record<string, unknown>>;
  if (Object.prototype.hasOwnProperty.call(map, original)) return map[original] as EnvelopeOptions;
  if (Object.prototype.hasOwnProperty.call(map, bare)) return map[bare] as EnvelopeOptions;
  const keys = Object.keys(map);
  // Keys that look like addresses make it a per-recipient map (this recipient has no entry).
  if (keys.length > 0 && keys.every((k) => k.includes('@'))) return undefined;
  return map as EnvelopeOptions;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
