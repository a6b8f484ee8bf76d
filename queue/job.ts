/** What one job carries: a rendered row, ready for the Mailer on any host. */
import type { MailMessage } from '../core/message/types.js';

export interface SendJob {
  readonly run: string;
  readonly row: number;
  /** The Message-ID the runner derived for the row (`<run.row.hash@domain>`); resends keep it. */
  readonly id: string;
  readonly to: readonly string[];
  readonly message: MailMessage;
}

/** Deterministic: the same run and row always make the same job, so BullMQ adds it once. */
export function jobIdFor(run: string, row: number): string {
  return `${run}.${row}`;
}

/** Run ids name Redis keys and job ids: keep them to a safe alphabet. */
export const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
