import { SmtpInvalidInputError } from '../../api.js';

/** A bad option (url, mailto, secret) or a message the headers cannot be made for (no single
 *  recipient, List-Unsubscribe already present). `field` names what was wrong. */
export class ListUnsubscribeError extends SmtpInvalidInputError {}
