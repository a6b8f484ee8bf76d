/**
 * Dependencies loaded on first use. The package entry must stay cheap for a program that only sends
 * (`SmtpClient`): the config schema (zod), the message builders (libmime, mimetext, libqp) and the
 * template engine (handlebars) cost ~50 MB of RSS together when evaluated eagerly. Their APIs are
 * synchronous here (createMailer(config), compileTemplates, …), so a dynamic import() cannot be
 * used; each of them ships CommonJS, which `require` loads synchronously the first time a function
 * needs it. Node caches it, and an ESM `import` of the same package elsewhere (a test, a user's
 * program) gets the very same module.exports.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** `() => require(id)`, resolved once and cached. */
export function lazyRequire<T>(id: string): () => T {
  let mod: T | undefined;
  return () => (mod ??= require(id) as T);
}
