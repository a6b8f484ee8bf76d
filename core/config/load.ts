/**
 * Finding, loading and resolving a config: discovery (cosmiconfig) → the file as written (checked,
 * overlays included) → one environment merged over the base → env() resolved → the full schema
 * (defaults, required fields, cross-field rules). Each step that fails throws one `ConfigError`
 * listing everything wrong at that step.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Loader } from 'cosmiconfig';
import type { Jiti } from 'jiti';
import type { z } from 'zod';
import { isPlainObject, resolveEnvRefs, type Environ } from './env.js';
import { ConfigError, formatPath, toConfigIssues, zodErrorMap, type ConfigIssue } from './errors.js';
import { mergeOverlay } from './merge.js';
import { registerSecrets } from './secrets.js';
import { schemas, semanticIssues, type ResolvedConfig } from './schema.js';

export interface LoadedConfig {
  readonly config: ResolvedConfig;
  /** The environment whose overlay was applied, if any. */
  readonly environment?: string;
  /** The file it came from (absent for a config passed in directly). */
  readonly filepath?: string;
  /** Dotted paths whose values must never be shown: every value that came from env(), plus
   *  `auth.pass`, `auth.credentials.*` and `transport.tlsOptions.key` even when written literally. */
  readonly secrets: ReadonlySet<string>;
}

export interface ResolveOptions {
  /** The environment to apply (the CLI's `--env`); else `MAILSTAGE_ENV`, then `NODE_ENV`. */
  readonly env?: string;
  /** Where env() and MAILSTAGE_ENV/NODE_ENV are read from (default `process.env`). */
  readonly processEnv?: Environ;
  /** For messages and `LoadedConfig.filepath`. */
  readonly filepath?: string;
}

export interface LoadOptions extends Omit<ResolveOptions, 'filepath'> {
  /** Where discovery starts (default `process.cwd()`). */
  readonly cwd?: string;
  /** An explicit config file (the CLI's `--config`), relative to `cwd`; skips discovery. */
  readonly file?: string;
}

const MODULE_NAME = 'mailstage';

/** Searched in this order in each folder; the first that exists wins. */
export const SEARCH_PLACES: readonly string[] = [
  ...['ts', 'mts', 'cts', 'js', 'mjs', 'cjs', 'json', 'yaml', 'yml'].map((ext) => `${MODULE_NAME}.config.${ext}`),
  `.${MODULE_NAME}rc`,
  ...['json', 'yaml', 'yml', 'js', 'ts', 'mjs', 'cjs'].map((ext) => `.${MODULE_NAME}rc.${ext}`),
  'package.json',
];

// ---- discovery -----------------------------------------------------------------------------------

// jiti rather than cosmiconfig's own loaders: its TypeScript loader needs the TypeScript JS API
// (gone in TS 7) and cannot resolve the config's own imports; jiti handles TS and JS alike, resolves
// local modules and packages, and with moduleCache off a changed config is re-read on every load.
// Both are loaded when a config file is first looked for, not when the package is imported.
let jiti: Promise<Jiti> | undefined;
const loadModule: Loader = async (filepath) => {
  jiti ??= import('jiti').then(({ createJiti }) => createJiti(import.meta.url, { moduleCache: false }));
  return (await jiti).import(filepath, { default: true });
};

async function explorer() {
  const { cosmiconfig } = await import('cosmiconfig');
  return cosmiconfig(MODULE_NAME, {
    searchPlaces: [...SEARCH_PLACES],
    loaders: { '.ts': loadModule, '.mts': loadModule, '.cts': loadModule, '.js': loadModule, '.mjs': loadModule, '.cjs': loadModule },
    // Walk up from cwd to the project root (the first folder with a package.json), so commands work
    // from a subfolder, without wandering into the rest of the file system.
    searchStrategy: 'project',
    // An empty config file is a valid, empty config (not a reason to keep searching upward).
    ignoreEmptySearchPlaces: false,
    cache: false,
  });
}

interface Located {
  readonly config: unknown;
  readonly filepath: string;
}

async function locate(options: LoadOptions): Promise<Located | undefined> {
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const filepath = options.file === undefined ? undefined : path.resolve(cwd, options.file);
  try {
    if (filepath !== undefined) {
      if (!fs.existsSync(filepath)) throw new ConfigError(`Config file not found: ${filepath}`, [], { filepath });
      const result = await (await explorer()).load(filepath);
      if (result === null) {
        throw new ConfigError(`${filepath} has no "${MODULE_NAME}" key`, [], { filepath });
      }
      return { config: result.config, filepath: result.filepath };
    }
    const result = await (await explorer()).search(cwd);
    return result === null ? undefined : { config: result.config, filepath: result.filepath };
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const where = (error as { filepath?: unknown }).filepath ?? filepath;
    throw cannotLoad(error, typeof where === 'string' ? where : undefined);
  }
}

/**
 * A config that does not parse or throws while it is evaluated. The loader's message carries the
 * position on a later line (`/path/mailstage.config.ts:3:40`): bring it to the front, with the line
 * it points at, so the user need not rerun with --debug to find the mistake.
 */
function cannotLoad(error: unknown, where: string | undefined): ConfigError {
  const text = error instanceof Error ? `${error.message}\n${error.stack ?? ''}` : String(error);
  const reason = (error instanceof Error ? error.message : String(error)).split('\n')[0]!.trim().replace(/^Error: /, '');
  const position = where === undefined ? undefined : positionIn(text, where);
  const lines = [`Cannot load config ${position ? `${where}:${position.line}:${position.column}` : where ?? ''}: ${reason}`.replace('  ', ' ')];
  if (position && where) {
    const source = readLine(where, position.line);
    if (source !== undefined) {
      lines.push(`  ${position.line} | ${source}`, `  ${' '.repeat(String(position.line).length)} | ${' '.repeat(Math.max(0, position.column - 1))}^`);
    }
  }
  return new ConfigError(lines.join('\n'), [], { cause: error, filepath: where });
}

function positionIn(text: string, file: string): { line: number; column: number } | undefined {
  const escaped = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`${escaped}:(\\d+):(\\d+)`).exec(text);
  return match ? { line: Number(match[1]), column: Number(match[2]) } : undefined;
}

function readLine(file: string, line: number): string | undefined {
  try {
    const text = fs.readFileSync(file, 'utf8').split(/\r?\n/)[line - 1];
    return text === undefined ? undefined : text.replace(/\t/g, ' ');
  } catch {
    return undefined;
  }
}

/** The folders `search` looks in, for the "not found" message (mirrors cosmiconfig's 'project'). */
function searchedFolders(start: string): string[] {
  const folders: string[] = [];
  for (let dir = start; ; dir = path.dirname(dir)) {
    folders.push(dir);
    const isRoot = ['package.json', 'package.yaml'].some((f) => fs.existsSync(path.join(dir, f)));
    if (isRoot || path.dirname(dir) === dir) return folders;
  }
}

function notFound(cwd: string): ConfigError {
  const names = SEARCH_PLACES.map((p) => (p === 'package.json' ? `package.json ("${MODULE_NAME}" key)` : p));
  return new ConfigError(
    [
      'No mailstage config found.',
      `  looked in: ${searchedFolders(path.resolve(cwd)).join(', ')}`,
      `  for: ${names.join(', ')}`,
      '  create mailstage.config.ts (start from config.example.ts, shipped in the mailstage package), or pass --config <file>',
    ].join('\n'),
  );
}

/** Finds, loads and resolves the config; throws `ConfigError` when there is none. */
export async function loadConfig(options: LoadOptions = {}): Promise<LoadedConfig> {
  const found = await locate(options);
  if (!found) throw notFound(options.cwd ?? process.cwd());
  return resolveConfig(found.config, { ...options, filepath: found.filepath });
}

/** Like `loadConfig`, but `undefined` when discovery finds no config (for callers where a config is
 *  optional). An explicit `file` that is missing, or a config that is invalid, still throws. */
export async function findConfig(options: LoadOptions = {}): Promise<LoadedConfig | undefined> {
  const found = await locate(options);
  return found && resolveConfig(found.config, { ...options, filepath: found.filepath });
}

// ---- resolution ----------------------------------------------------------------------------------

const PARSE = { error: zodErrorMap, reportInput: true } as const;

/** Values hidden from messages and print even when written literally in the file. */
const SENSITIVE: readonly (readonly string[])[] = [
  ['auth', 'pass'],
  ['auth', 'credentials', '*'],
  ['transport', 'tlsOptions', 'key'],
  ['transport', 'url'], // may carry user:pass@
];

function matchesSensitive(segments: readonly PropertyKey[]): boolean {
  return SENSITIVE.some((pattern) => pattern.length <= segments.length && pattern.every((p, i) => p === '*' || p === segments[i]));
}

/** In the file as written, overlays live under `environments.<name>`. */
function hideInFile(p: readonly PropertyKey[]): boolean {
  return matchesSensitive(p[0] === 'environments' ? p.slice(2) : p);
}

/**
 * Validates and resolves a config object (what a config file exports, or what a program passes to
 * `createMailer`): picks the environment, merges its overlay, resolves env(), applies defaults.
 */
export function resolveConfig(raw: unknown, options: ResolveOptions = {}): LoadedConfig {
  const environ = options.processEnv ?? process.env;
  const filepath = options.filepath;
  const input = raw ?? {}; // an empty file
  const inFile = filepath ? ` in ${filepath}` : '';

  // Every problem in one pass: the file as written (typos in any environment, at their real paths),
  // then missing env() variables, then the merged config of this environment (required fields and
  // the checks that depend on plugins, such as a TLS policy name). A path already reported by an
  // earlier step is not reported again by a later one, so one mistake gives one line.
  const { configSchema, fileSchema } = schemas();
  const issues: ConfigIssue[] = [];
  const asWritten = fileSchema.safeParse(input, PARSE);
  if (!asWritten.success) issues.push(...issuesOf(asWritten.error, input, hideInFile));

  const source = isPlainObject(input) ? input : {};
  const environments = isPlainObject(source['environments']) ? source['environments'] : {};
  const environment = chooseEnvironment(environments, options, environ);
  const { environments: _overlays, ...base } = source;
  const merged = environment === undefined || !isPlainObject(environments[environment]) ? base : mergeOverlay(base, environments[environment]);
  const label = `${inFile}${environment === undefined ? '' : ` (environment "${environment}")`}`;

  const resolution = resolveEnvRefs(merged, environ);
  for (const m of resolution.missing) {
    issues.push({
      path: formatPath(m.path),
      message: `environment variable ${m.name} is not set (env(${JSON.stringify(m.name)}) has no default)`,
    });
  }

  const envSecrets = new Set(resolution.secretPaths.map(formatPath));
  const hide = (p: readonly PropertyKey[]): boolean => matchesSensitive(p) || envSecrets.has(formatPath(p));
  const parsed = configSchema.safeParse(resolution.value, PARSE);
  if (!parsed.success) {
    const reported = [...issues];
    for (const issue of issuesOf(parsed.error, resolution.value, hide)) {
      if (reported.some((r) => overlaps(r.path, issue.path) || misspeltRequired(r, issue))) continue;
      issues.push({ ...issue, message: scrub(issue.message, resolution.secretValues) });
    }
  }
  for (const issue of semanticIssues(resolution.value)) {
    const at = formatPath(issue.path);
    if (issues.some((i) => overlaps(i.path, at))) continue;
    const got = !('got' in issue) ? '' : hide(issue.path) ? ', got a secret value (not shown)' : `, got ${JSON.stringify(issue.got)}`;
    issues.push({ path: at, message: scrub(`${issue.message}${got}`, resolution.secretValues) });
  }
  if (issues.length > 0 || !parsed.success) {
    const headline = asWritten.success && resolution.missing.length > 0 && issues.every((i) => i.message.startsWith('environment variable '))
      ? `Missing environment variables${label}:`
      : `Invalid config${asWritten.success ? label : inFile}:`;
    throw new ConfigError(headline, issues, { filepath, environment });
  }

  const config = deepFreeze(parsed.data) as ResolvedConfig;
  const secrets = new Set([...envSecrets, ...literalSensitivePaths(config)]);
  registerSecrets(config, resolution.secretValues);
  return {
    config,
    ...(environment === undefined ? {} : { environment }),
    ...(filepath === undefined ? {} : { filepath }),
    secrets,
  };
}

/** `transport` and `transport.port`, or a path and itself, describe the same mistake. Paths of an
 *  overlay (`environments.staging.transport.port`) are compared without their prefix. */
function overlaps(a: string, b: string): boolean {
  const strip = (p: string) => p.replace(/^environments(\.[A-Za-z0-9_$-]+|\["[^"]*"\])/, '').replace(/^\./, '');
  const [x, y] = [strip(a), strip(b)];
  const within = (outer: string, inner: string) => inner === outer || inner.startsWith(`${outer}.`) || inner.startsWith(`${outer}[`);
  return within(x, y) || within(y, x);
}

/** `subject: { pth: 'x' }` gives "pth: unknown key" as written and "path: required" once merged:
 *  one mistake, so the second is not reported. */
function misspeltRequired(reported: ConfigIssue, issue: ConfigIssue): boolean {
  const parent = (p: string) => p.replace(/(\.[^.[\]]+|\[[^\]]*\])$/, '');
  return issue.message.startsWith('required') && reported.message.startsWith('unknown key') && parent(reported.path) === parent(issue.path);
}

function issuesOf(error: z.ZodError, data: unknown, hide: (p: readonly PropertyKey[]) => boolean): ConfigIssue[] {
  return toConfigIssues(error.issues, { data, hide });
}

/** A second guard behind path-based hiding: no secret value survives into an error text. Very short
 *  values are skipped, since replacing every "1" or "ab" would garble the message without hiding
 *  anything worth hiding. */
function scrub(message: string, secretValues: readonly string[]): string {
  return secretValues.filter((v) => v.length >= 4).reduce((m, v) => m.split(v).join('****'), message);
}

function chooseEnvironment(environments: Record<string, unknown>, options: ResolveOptions, environ: Environ): string | undefined {
  const candidates: readonly (readonly [string, string | undefined])[] = [
    ['the env option (--env)', options.env],
    ['MAILSTAGE_ENV', environ['MAILSTAGE_ENV']],
    ['NODE_ENV', environ['NODE_ENV']],
  ];
  const chosen = candidates.find(([, name]) => name !== undefined && name !== '');
  if (!chosen) return undefined;
  const [from, name] = chosen as readonly [string, string];
  if (Object.hasOwn(environments, name)) return name;
  // NODE_ENV is set for many reasons (NODE_ENV=test under test runners): not naming one of ours is fine.
  if (from === 'NODE_ENV') return undefined;
  const known = Object.keys(environments);
  throw new ConfigError(
    `Unknown environment "${name}" (from ${from}); ${known.length > 0 ? `known environments: ${known.join(', ')}` : 'the config defines no environments'}`,
  );
}

function literalSensitivePaths(config: ResolvedConfig): string[] {
  const out: string[] = [];
  if (config.auth?.pass !== undefined) out.push('auth.pass');
  for (const key of Object.keys(config.auth?.credentials ?? {})) out.push(formatPath(['auth', 'credentials', key]));
  if (config.transport?.tlsOptions?.key !== undefined) out.push('transport.tlsOptions.key');
  return out;
}

/** Freezes the data, not the plugins (live objects that may keep state) nor Buffers (not freezable). */
function deepFreeze(value: unknown, atRoot = true): unknown {
  if (Array.isArray(value)) {
    for (const item of value) deepFreeze(item, false);
    return Object.freeze(value);
  }
  if (isPlainObject(value)) {
    for (const [key, item] of Object.entries(value)) {
      if (atRoot && key === 'plugins') Object.freeze(item);
      else deepFreeze(item, false);
    }
    return Object.freeze(value);
  }
  return value;
}
