/**
 * The typed error tree. Every failure mailstage reports is an `SmtpError`; each says whether it is
 * `permanent` (retrying the same thing will fail the same way) or transient, and at which `stage`
 * of the session it happened, so callers (the Mailer's retry loop, the batch journal) can decide
 * without parsing messages.
 */
import type { SmtpReply } from './protocol/reply.js';

/** Where in a session an error happened. `final-reply` means the body's terminator was sent but
 *  its reply never came: the message may or may not have been delivered. */
export type SmtpStage =
  | 'connect' | 'greeting' | 'helo' | 'starttls' | 'auth' | 'mail' | 'rcpt' | 'data' | 'body'
  | 'final-reply' | 'rset' | 'quit' | 'command' | 'input';

export interface SmtpErrorOptions {
  readonly stage?: SmtpStage;
  readonly cause?: unknown;
  readonly permanent?: boolean;
}

export class SmtpError extends Error {
  readonly permanent: boolean;
  readonly stage?: SmtpStage;
  constructor(message: string, options: SmtpErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.permanent = options.permanent ?? false;
    this.stage = options.stage;
  }
}

/** The server does not offer what was asked for (an extension, a mechanism, a TLS upgrade). */
export class SmtpNotSupportedError extends SmtpError {
  constructor(message: string, options: SmtpErrorOptions = {}) {
    super(message, { permanent: true, ...options });
  }
}

/** The connection closed (or was never open) while something was expected of it. */
export class SmtpServerDisconnectedError extends SmtpError {}

/** A stage took longer than its timeout (or the overall deadline passed). */
export class SmtpTimeoutError extends SmtpError {
  readonly timeout: number;
  constructor(message: string, timeout: number, options: SmtpErrorOptions = {}) {
    super(message, options);
    this.timeout = timeout;
  }
}

/** The operation was cancelled through the AbortSignal. Named 'AbortError' like the platform's. */
export class SmtpAbortError extends SmtpError {
  constructor(message: string, options: SmtpErrorOptions = {}) {
    super(message, options);
    this.name = 'AbortError';
  }
}

/** Bad input refused before anything reached the wire: CR/LF/NUL in an argument, a malformed
 *  address, an unknown option. `field` names what was wrong. */
export class SmtpInvalidInputError extends SmtpError {
  readonly field: string;
  constructor(field: string, message: string, options: SmtpErrorOptions = {}) {
    super(`${field}: ${message}`, { permanent: true, stage: 'input', ...options });
    this.field = field;
  }
}

/** The server answered with a code the operation cannot accept. */
export class SmtpResponseError extends SmtpError {
  readonly code: number;
  readonly enhancedCode?: string;
  readonly reply: SmtpReply;
  constructor(reply: SmtpReply, message?: string, options: SmtpErrorOptions = {}) {
    super(message ?? describeReply(reply), { permanent: reply.code >= 500, ...options });
    this.reply = reply;
    this.code = reply.code;
    this.enhancedCode = reply.enhancedCode;
  }
}

/** The server sent something that is not an SMTP reply (or a line over the limit). */
export class SmtpProtocolError extends SmtpResponseError {}

export class SmtpSenderRefusedError extends SmtpResponseError {
  readonly sender: string;
  constructor(reply: SmtpReply, sender: string, options: SmtpErrorOptions = {}) {
    super(reply, `sender <${sender}> refused: ${describeReply(reply)}`, { stage: 'mail', ...options });
    this.sender = sender;
  }
}

export class SmtpDataError extends SmtpResponseError {}
export class SmtpConnectError extends SmtpResponseError {}
export class SmtpHeloError extends SmtpResponseError {}
export class SmtpAuthenticationError extends SmtpResponseError {}

/** Every recipient was refused (at RCPT, or for LMTP after the body). */
export class SmtpRecipientsRefusedError extends SmtpError {
  readonly recipients: Readonly<Record<string, SmtpReply>>;
  constructor(recipients: Readonly<Record<string, SmtpReply>>, options: SmtpErrorOptions = {}) {
    const entries = Object.entries(recipients);
    const permanent = entries.length > 0 && entries.every(([, r]) => r.code >= 500);
    super(
      `all recipients refused: ${entries.map(([a, r]) => `<${a}> ${describeReply(r)}`).join('; ')}`,
      { permanent, stage: 'rcpt', ...options },
    );
    this.recipients = recipients;
  }
}

export function describeReply(reply: SmtpReply): string {
  return reply.message ? `${reply.code} ${reply.message.replace(/\n/g, ' / ')}` : String(reply.code);
}

/** A reply made up by the client (no server line behind it), e.g. for a socket-level failure. */
export function syntheticReply(code: number, message: string): SmtpReply {
  return { code, lines: [message], message };
}
