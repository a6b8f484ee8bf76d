/**
 * The plugin spine. A plugin is a plain object with a `name` and the stages it provides (the idea of
 * Vite/Rollup plugins); `definePlugin` exists for types and a sanity check. Core wires stages and
 * knows no specific plugin: the built-in envelope extensions and TLS policies go through these same
 * interfaces.
 */
import type { Duplex, Readable } from 'node:stream';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import type { BuiltMessage, Envelope, MailMessage } from './message/types.js';
import type { SmtpReply } from './protocol/reply.js';

// ---- authenticator (fixed by API.md) -------------------------------------------------------------

export interface AuthContext {
  readonly credentials: Readonly<Record<string, string>>;
  readonly secure: boolean;
  readonly hostname: string;
  readonly features: ReadonlyMap<string, string>;
}

/** One SASL mechanism. Challenges and responses are decoded text; base64 is the core's job. */
export interface Authenticator {
  readonly mechanism: string;
  /** Refused on a plaintext connection unless `allowInsecureAuth`. */
  readonly requiresTls?: boolean;
  /** The initial response sent on the AUTH line (`undefined`: none, wait for a 334). */
  start(ctx: AuthContext): Promise<string | undefined> | string | undefined;
  /** The answer to one 334 challenge. */
  next(challenge: string, ctx: AuthContext): Promise<string> | string;
}

// ---- transport -----------------------------------------------------------------------------------

export interface TransportTarget {
  readonly host: string;
  readonly port: number;
  /** A unix socket path, when the target is one. */
  readonly path?: string;
  /** TLS from the first byte (`tls: 'implicit'`). */
  readonly implicitTls: boolean;
  readonly tlsOptions: TlsConnectionOptions;
  readonly connectTimeout: number;
  readonly signal?: AbortSignal;
}

export interface OpenedTransport {
  readonly socket: Duplex;
  /** True when the stream is already encrypted. */
  readonly secure: boolean;
}

/** Opens the byte stream a session runs over (TCP, implicit TLS, a unix socket, a proxy…). */
export interface TransportStage {
  readonly name: string;
  open(target: TransportTarget): Promise<OpenedTransport>;
}

// ---- greeting ------------------------------------------------------------------------------------

/** How the session introduces itself: EHLO with HELO fallback (SMTP) or LHLO alone (LMTP). */
export interface GreetingStage {
  readonly name: string;
  readonly verb: string;
  readonly fallbackToHelo: boolean;
  /** The port used when none is given. */
  readonly defaultPort?: number;
}

// ---- data phase ----------------------------------------------------------------------------------

export interface DataStage {
  readonly name: string;
  /** LMTP: after the body, one reply per accepted recipient instead of one for the message. */
  readonly repliesPerRecipient: boolean;
}

// ---- TLS policy ----------------------------------------------------------------------------------

export interface TlsPolicyContext {
  readonly features: ReadonlyMap<string, string>;
  readonly secure: boolean;
  readonly host: string;
}

export type TlsDecision =
  | { readonly action: 'starttls' }
  | { readonly action: 'plaintext' }
  | { readonly action: 'refuse'; readonly reason: string };

export interface TlsPolicy {
  readonly name: string;
  /** TLS from the first byte (the transport wraps the socket before the greeting). */
  readonly implicit?: boolean;
  /** Called after the first EHLO on a plaintext connection. */
  decide(ctx: TlsPolicyContext): TlsDecision;
}

// ---- envelope extensions -------------------------------------------------------------------------

/** What is known of the message when MAIL FROM is written. */
export interface MessageFacts {
  readonly size?: number;
  /** true: 8-bit bytes present; false: 7-bit only; undefined: unknown (a stream). */
  readonly eightBit?: boolean;
  readonly needsSmtpUtf8: boolean;
  /** The body goes as BDAT chunks rather than DATA. */
  readonly chunked: boolean;
  /** The body is not line-oriented text (it has NUL octets): BINARYMIME material. */
  readonly binary?: boolean;
}

export interface EnvelopeContext {
  readonly features: ReadonlyMap<string, string>;
  hasExtension(name: string): boolean;
  readonly message: MessageFacts;
  /** True after HELO (no ESMTP: no parameters may be sent). */
  readonly esmtp: boolean;
}

/**
 * Adds ESMTP parameters to MAIL and RCPT. An extension may own an option key (`option: 'dsn'`):
 * `mail(from, { dsn: {...} })` hands that value to it; a key no installed extension owns is an error.
 * Return the parameters to add (e.g. `['RET=HDRS']`), or nothing. Throw `SmtpInvalidInputError` for
 * a bad option value and `SmtpNotSupportedError` when the server lacks what the option requires.
 */
export interface EnvelopeExtension {
  readonly name: string;
  readonly option?: string;
  mailParams?(ctx: EnvelopeContext, option: unknown): readonly string[] | undefined;
  rcptParams?(ctx: EnvelopeContext, option: unknown, recipient: string): readonly string[] | undefined;
}

// ---- message builders ----------------------------------------------------------------------------

export interface BuildContext {
  /** The name used in generated Message-IDs. */
  readonly hostname: string;
}

/** Turns a message description into an envelope and a body stream. First match wins. */
export interface MessageBuilder {
  readonly name: string;
  matches(message: MailMessage): boolean;
  build(message: MailMessage, ctx: BuildContext): Promise<BuiltMessage> | BuiltMessage;
}

// ---- hooks ---------------------------------------------------------------------------------------

export interface SendOutcome {
  readonly envelope: Envelope;
  readonly accepted: readonly string[];
  readonly refused: Readonly<Record<string, SmtpReply>>;
  readonly response: SmtpReply;
}

/** Observers of the session; they may throw to veto (beforeSend) but cannot change the protocol. */
export interface SessionHooks {
  onConnect?(info: { readonly host: string; readonly port: number; readonly secure: boolean }): void | Promise<void>;
  beforeSend?(envelope: Envelope): void | Promise<void>;
  afterSend?(outcome: SendOutcome): void | Promise<void>;
  onError?(error: Error): void;
}

// ---- router (direct delivery) --------------------------------------------------------------------

/** One host a route may be delivered to. */
export interface RouteHost {
  /** A name or an address to connect to. */
  readonly host: string;
  /** Default: the transport's port. */
  readonly port?: number;
  /** The name TLS verifies (SNI) when `host` is an address resolved from it (an MX name). */
  readonly servername?: string;
}

/** Recipients that share their destination, with the hosts to try in preference order. */
export interface Route {
  readonly hosts: readonly RouteHost[];
  readonly recipients: readonly string[];
  /** The route cannot be delivered (no MX and no address, a null MX, a DNS failure): these
   *  recipients are refused with this error. */
  readonly error?: Error;
}

/** Splits an envelope into routes (the mx plugin: by recipient domain). Without a router the
 *  Mailer sends every recipient to the configured transport host. */
export interface RouterStage {
  readonly name: string;
  route(envelope: Envelope): Promise<readonly Route[]>;
}

// ---- message transforms (issue 13) ---------------------------------------------------------------

/** What a transform knows about the message it is given (API.md "Transform stage"). */
export interface TransformContext {
  readonly envelope: Envelope;
  /** The batch row's recipient (the one a per-recipient header is for). */
  readonly recipient?: string;
  /** The batch row, in a batch run. */
  readonly row?: Readonly<Record<string, unknown>>;
  readonly runId?: string;
}

/** A built message as transforms see it: the header fields, then the body as a stream. */
export interface BuiltForTransform {
  /** Raw header fields in the order they are written (`'Name: value'`, folding `\r\n ` kept, no
   *  final CRLF). A transform returns the array it wants written. */
  headers: string[];
  /** The body after the blank line: Buffers with CRLF line ends, not dot-stuffed, to be read once. */
  body: Readable;
}

/**
 * A hook on every message of every send path, run in plugin order: `message` before building (it
 * returns the message object to build), `built` after (it returns the header fields and a body
 * stream to send; it never needs the whole body in memory).
 */
export interface MessageTransform {
  readonly name?: string;
  message?(message: MailMessage, ctx: TransformContext): MailMessage | Promise<MailMessage>;
  built?(built: BuiltForTransform, ctx: TransformContext): BuiltForTransform | Promise<BuiltForTransform>;
}

// ---- the plugin ----------------------------------------------------------------------------------

export interface Plugin {
  readonly name: string;
  readonly authenticators?: readonly Authenticator[];
  readonly transport?: TransportStage;
  readonly greeting?: GreetingStage;
  readonly data?: DataStage;
  /** Named TLS policies, selectable with `tls: '<name>'`. */
  readonly tlsPolicies?: readonly TlsPolicy[];
  readonly envelopeExtensions?: readonly EnvelopeExtension[];
  readonly messageBuilders?: readonly MessageBuilder[];
  readonly hooks?: SessionHooks;
  /** Routing for the Mailer (direct delivery); the last plugin with one wins. */
  readonly router?: RouterStage;
  /** Message transforms (DKIM, List-Unsubscribe…), run in plugin order on every send path. */
  readonly transforms?: readonly MessageTransform[];
}

export function definePlugin<P extends Plugin>(plugin: P): P {
  if (!plugin || typeof plugin.name !== 'string' || plugin.name.length === 0) {
    throw new TypeError('definePlugin: a plugin needs a non-empty `name`');
  }
  for (const a of plugin.authenticators ?? []) {
    if (!/^[A-Z0-9_-]{1,20}$/i.test(a.mechanism)) {
      throw new TypeError(`definePlugin(${plugin.name}): bad SASL mechanism name ${JSON.stringify(a.mechanism)}`);
    }
  }
  (plugin.transforms ?? []).forEach((t, i) => {
    const hooks = t && [t.message, t.built].filter((h) => h !== undefined);
    if (!hooks || hooks.length === 0 || hooks.some((h) => typeof h !== 'function')) {
      throw new TypeError(`definePlugin(${plugin.name}): transforms[${i}] needs a message() or built() function`);
    }
  });
  return plugin;
}
