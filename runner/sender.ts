/**
 * The send step, kept behind one small interface so the batch does not care what carries a message:
 * the in-process Mailer pool today, a queue's enqueue step for the scale-out (issue 8), a fake in
 * tests. A sender resolves with what the server said, or throws a typed `SmtpError`.
 */
import type { MailMessage } from '../core/message/types.js';

export interface SendInfo {
  readonly accepted: readonly string[];
  readonly rejected: readonly string[];
  /** The final reply as text (`250 2.0.0 Ok: queued as …`). */
  readonly response: string;
  readonly messageId?: string;
}

export interface Sender {
  send(message: MailMessage): Promise<SendInfo>;
  /** True when the body's terminator went out but its reply never came: delivered or not, no one
   *  knows. Such rows are journaled `unknown` rather than retried blindly. */
  isDeliveryUnknown(error: unknown): boolean;
  /** Checks the far end is usable (connects, greets, logs in) before a run is journaled. */
  verify?(): Promise<unknown>;
  /** Drains and closes (the pool's connections, a queue client). */
  close(): Promise<void>;
}

/** The Mailer's surface the batch relies on (API.md); structural, so any compatible object works. */
export interface MailerLike {
  sendMail(message: MailMessage): Promise<{
    readonly accepted: readonly unknown[];
    readonly rejected: readonly unknown[];
    readonly response: string;
    readonly messageId?: string;
  }>;
  verify?(): Promise<unknown>;
  close(): Promise<void>;
}

/** Without the Mailer's own predicate: the error's stage says the terminator was sent. */
export function terminatorSentReplyLost(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { stage?: unknown }).stage === 'final-reply';
}

export function mailerSender(mailer: MailerLike, isDeliveryUnknown: (error: unknown) => boolean = terminatorSentReplyLost): Sender {
  const address = (a: unknown): string =>
    typeof a === 'string' ? a : typeof a === 'object' && a !== null && 'address' in a ? String((a as { address: unknown }).address) : String(a);
  return {
    async send(message) {
      const info = await mailer.sendMail(message);
      return {
        accepted: info.accepted.map(address),
        rejected: info.rejected.map(address),
        response: info.response,
        ...(info.messageId === undefined ? {} : { messageId: info.messageId }),
      };
    },
    isDeliveryUnknown,
    ...(mailer.verify ? { verify: () => mailer.verify!() } : {}),
    close: () => mailer.close(),
  };
}
