/**
 * AUTH LOGIN (draft-murchison-sasl-login): the user name, then the password, each answering a 334.
 * Servers word the prompts differently (or not at all), so the prompt text decides when it says
 * which it wants, and the order decides otherwise.
 */
import { definePlugin, type AuthContext, type Authenticator, type Plugin } from '../../api.js';

export default function authLogin(): Plugin {
  const answered = new WeakMap<AuthContext, number>();
  const authenticator: Authenticator = {
    mechanism: 'LOGIN',
    requiresTls: true,
    start: (ctx) => {
      answered.set(ctx, 0);
      return undefined;
    },
    next: (challenge, ctx) => {
      const n = answered.get(ctx) ?? 0;
      answered.set(ctx, n + 1);
      const { user = '', pass = '' } = ctx.credentials;
      if (/user\s*name|^user/i.test(challenge)) return user;
      if (/pass\s*word/i.test(challenge)) return pass;
      return n === 0 ? user : pass;
    },
  };
  return definePlugin({ name: 'auth-login', authenticators: [authenticator] });
}
