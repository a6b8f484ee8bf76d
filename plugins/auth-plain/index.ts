/**
 * AUTH PLAIN (RFC 4616): `authzid NUL user NUL password` as the initial response on the AUTH line.
 * The password travels merely encoded, so it is refused on plaintext unless `allowInsecureAuth`.
 */
import { definePlugin, type Authenticator, type Plugin } from '../../api.js';

export interface AuthPlainOptions {
  /** Authorisation identity (act as this user); default none. */
  readonly authzid?: string;
}

export default function authPlain(options: AuthPlainOptions = {}): Plugin {
  const authenticator: Authenticator = {
    mechanism: 'PLAIN',
    requiresTls: true,
    start: ({ credentials }) => `${credentials.authzid ?? options.authzid ?? ''}\0${credentials.user ?? ''}\0${credentials.pass ?? ''}`,
    next: () => {
      // The whole exchange is the initial response; a challenge after it is a server error.
      throw new Error('unexpected challenge after the PLAIN initial response');
    },
  };
  return definePlugin({ name: 'auth-plain', authenticators: [authenticator] });
}
