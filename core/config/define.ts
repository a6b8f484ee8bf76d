/**
 * What a config file imports. `defineConfig` does nothing at run time; it exists so an editor checks
 * the config against `MailstageConfig` (typos included) as it is written. It is deliberately not
 * generic: a generic parameter would infer the literal's own type and skip excess-property checks.
 */
import type { MailstageConfig } from './schema.js';

export function defineConfig(config: MailstageConfig): MailstageConfig {
  return config;
}

export { env, type EnvRef, type EnvOptions } from './env.js';
export type { MailstageConfig } from './schema.js';
