/** The config DSL: `defineConfig`/`env` for config files, `loadConfig` and friends for the CLI and
 *  the Mailer, `formatConfig` for `config print`. */
export { defineConfig } from './define.js';
export { env, isEnvRef, type EnvRef, type EnvOptions, type Environ } from './env.js';
export { mergeOverlay } from './merge.js';
export { ConfigError, type ConfigIssue } from './errors.js';
export {
  loadConfig,
  findConfig,
  resolveConfig,
  SEARCH_PLACES,
  type LoadedConfig,
  type LoadOptions,
  type ResolveOptions,
} from './load.js';
export { formatConfig, MASK, type FormatOptions } from './print.js';
export { secretValuesOf, maskSecrets, registerSecrets } from './secrets.js';
export {
  schemas,
  parseTransportUrl,
  splitHostPort,
  BUILTIN_TLS_MODES,
  type MailstageConfig,
  type BaseConfig,
  type EnvironmentConfig,
  type ResolvedConfig,
  type TransportConfig,
  type AuthConfig,
  type EnvelopeConfig,
  type MessageDefaults,
  type BatchConfig,
  type PoolConfig,
  type RetryConfig,
  type RateLimitConfig,
  type TlsMode,
  type BuiltinTlsMode,
  type SourceFormat,
  type TransportUrl,
} from './schema.js';
