/**
 * Retry policy for the Mailer: which failures may be sent again, how long to wait, and the two
 * outcome errors the Mailer adds to the typed tree.
 *
 * The rule that matters most: once the body's terminator has been written, a lost reply means the
 * server may have delivered the message. Sending it again risks a duplicate, so such a failure is
 * never retried; it becomes `SmtpDeliveryUnknownError` and the caller decides.
 */
import { setTimeout as delay } from 'node:timers/promises';
import {
  SmtpAbortError, SmtpError, SmtpProtocolError, SmtpResponseError, SmtpServerDisconnectedError, SmtpTimeoutError,
  describeReply, type SmtpErrorOptions,
} from './errors.js';
import type { RetryConfig } from './config/schema.js';
import type { SmtpReply } from './protocol/reply.js';

export interface RetryPolicy {
  /** Retries after the first try (0: try once). */
  readonly attempts: number;
  readonly minDelay: number;
  readonly maxDelay: number;
  readonly factor: number;
  /** 0…1: each delay is shortened by up to this fraction, at random, so that senders that failed
   *  together do not come back together. */
  readonly jitter: number;
}

/** Without `transport.retry` a failure is reported at once (nodemailer does not retry either). */
export const NO_RETRY: RetryPolicy = { attempts: 0, minDelay: 1000, maxDelay: 60_000, factor: 2, jitter: 0.1 };

export function retryPolicy(config: RetryConfig | undefined): RetryPolicy {
  if (!config) return NO_RETRY;
  return { ...config, jitter: config.jitter ?? NO_RETRY.jitter };
}

/** The wait before retry number `retry` (1-based): exponential, capped, jittered downwards. */
export function backoff(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const base = Math.min(policy.maxDelay, policy.minDelay * policy.factor ** Math.max(0, retry - 1));
  return Math.round(base * (1 - policy.jitter * random()));
}

export type Verdict = 'retry' | 'permanent' | 'unknown';

/**
 * - `unknown`: the terminator was sent and no reply came (connection lost, timed out, garbage,
 *   aborted while waiting for it);
 * - `permanent`: the error says so (5xx, invalid input, not supported, bad certificate), the caller
 *   aborted, or it is not an SmtpError at all (a bug or a local failure: retrying will not help);
 * - `retry`: everything else (4xx, connection lost or timed out before the terminator).
 */
export function classify(err: unknown): Verdict {
  if (!(err instanceof SmtpError)) return 'permanent';
  if (isBranded(err)) return 'unknown';
  if (err.stage === 'final-reply' && (
    err instanceof SmtpServerDisconnectedError || err instanceof SmtpTimeoutError
    || err instanceof SmtpProtocolError || err instanceof SmtpAbortError)) {
    return 'unknown';
  }
  if (err instanceof SmtpAbortError) return 'permanent';
  return err.permanent ? 'permanent' : 'retry';
}

/** A disconnect or a 421: what a reused pooled connection shows when the server dropped it. */
export function isDropped(err: unknown): boolean {
  return err instanceof SmtpServerDisconnectedError || (err instanceof SmtpResponseError && err.code === 421);
}

/** The message may or may not have been delivered: its terminator was sent, the reply was lost. */
export class SmtpDeliveryUnknownError extends SmtpError {
  /** A brand that survives two copies of this module (source and dist) in one process. */
  readonly deliveryUnknown = true as const;
  readonly messageId: string;
  /** The recipients whose fate is unknown. */
  readonly recipients: readonly string[];
  /** What other routes of the same message delivered (mx: one domain unknown, others done). */
  readonly delivered: readonly string[];
  constructor(messageId: string, recipients: readonly string[], cause: unknown, delivered: readonly string[] = []) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    // `permanent`: a generic retry loop must not resend it. Whether to resend is the caller's call.
    super(`delivery of ${messageId} unknown: the message was sent but its reply was lost (${reason}); not resent`, {
      stage: 'final-reply', cause, permanent: true,
    });
    this.messageId = messageId;
    this.recipients = recipients;
    this.delivered = delivered;
  }
}

function isBranded(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { deliveryUnknown?: unknown }).deliveryUnknown === true;
}

/** True for `SmtpDeliveryUnknownError`, and for a session error that means the same (a lost reply
 *  to the body's terminator), so SmtpClient users can ask the same question. */
export function isDeliveryUnknown(err: unknown): boolean {
  return isBranded(err) || classify(err) === 'unknown';
}

/** One recipient refused while others were accepted: an entry of `info.rejectedErrors`. */
export class SmtpRecipientRefusedError extends SmtpResponseError {
  readonly recipient: string;
  constructor(recipient: string, reply: SmtpReply, options: SmtpErrorOptions = {}) {
    super(reply, `recipient <${recipient}> refused: ${describeReply(reply)}`, { stage: 'rcpt', ...options });
    this.recipient = recipient;
  }
}

/**
 * Waits `ms`; with a signal the wait ends early when it is aborted (rejecting with the signal's
 * reason, an AbortError), so a Ctrl-C never waits out a backoff.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason ?? abortError());
  if (ms <= 0) return Promise.resolve();
  return signal ? delay(ms, undefined, { signal }) : delay(ms);
}

function abortError(): Error {
  const e = new Error('aborted');
  e.name = 'AbortError';
  return e;
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET']);

/**
 * The server could not be reached or would not talk: nothing was said about any message (refused,
 * DNS, timeout or drop while connecting, a greeting that is not 220, a STARTTLS that failed). The one
 * definition, used by the Mailer (try the next host), the runner and the queue (stop before every row
 * is marked failed). A reply to a command of ours (a 4xx to MAIL, say) is not "unreachable".
 */
export function isUnreachable(err: unknown): boolean {
  if (err instanceof SmtpError) {
    if (err.stage !== 'connect' && err.stage !== 'greeting' && err.stage !== 'starttls') return false;
    return !err.permanent || !(err instanceof SmtpResponseError);
  }
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && UNREACHABLE_CODES.has(code);
}
