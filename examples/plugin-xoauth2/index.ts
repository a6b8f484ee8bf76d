/**
 * A third-party authenticator, written the way a user would in their own package: XOAUTH2
 * (Google/Microsoft OAuth 2.0 for SMTP). It imports only mailstage's public API.
 *
 * Wire format: `AUTH XOAUTH2 base64("user=" u "\x01auth=Bearer " token "\x01\x01")`. A refused token
 * comes back as `334 base64(JSON error)`; the client answers with an empty line and the server
 * then sends its 535.
 */
import { definePlugin, type Authenticator, type Plugin } from '../../api.js';

export interface XOAuth2Options {
  /** Returns a current access token for the user (refresh it here when it has expired). */
  readonly token: (user: string) => string | Promise<string>;
  /** Called with the server's decoded JSON error (status, schemes, scope) when a token is refused. */
  readonly onError?: (error: Readonly<Record<string, unknown>>) => void;
}

export default function xoauth2(options: XOAuth2Options): Plugin {
  const authenticator: Authenticator = {
    mechanism: 'XOAUTH2',
    // The token is a bearer secret: never on a plaintext connection unless the user allows it.
    requiresTls: true,
    async start({ credentials }) {
      const user = credentials.user ?? '';
      const token = credentials.accessToken ?? (await options.token(user));
      return `user=${user}\x01auth=Bearer ${token}\x01\x01`;
    },
    next(challenge) {
      try {
        options.onError?.(JSON.parse(challenge) as Record<string, unknown>);
      } catch {
        /* not JSON: nothing to report */
      }
      // The empty response acknowledges the error; the server follows with 535.
      return '';
    },
  };
  return definePlugin({ name: 'auth-xoauth2', authenticators: [authenticator] });
}
