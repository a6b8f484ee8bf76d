/**
 * The DKIM plugin's errors. Key and per-message problems are bad input (`SmtpInvalidInputError`:
 * permanent, exit code 2 in the CLI, a batch row ends `invalid`/`failed`), each naming the option
 * or header at fault and never the key material. A failure to spool the body is a local fault
 * (disk full, temp folder unwritable): transient, the same message may go through later.
 */
import { SmtpError, SmtpInvalidInputError } from '../../api.js';

/** A key that cannot sign: unreadable, not PEM, the wrong type, RSA under 1024 bits, a bad selector
 *  or domain. `field` is the option path (`dkim.keys[1].privateKey`). */
export class DkimKeyError extends SmtpInvalidInputError {}

/** A message that cannot be signed as configured: no or several From fields, no key for its From
 *  domain, a malformed header field, NUL octets in the body. */
export class DkimSigningError extends SmtpInvalidInputError {}

/** The body could not be spooled to the temporary folder (ENOSPC, EACCES…). Transient. */
export class DkimSpoolError extends SmtpError {
  constructor(message: string, cause: unknown) {
    super(message, { cause, permanent: false });
  }
}
