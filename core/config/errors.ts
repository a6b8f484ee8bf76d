/**
 * Config errors. A bad config is reported once, with every bad path on its own line, so a user fixes
 * all of it in one edit instead of one error per run. Messages never carry a stack (the CLI prints
 * `error.message` and exits 2) and never a secret's value: values are only echoed (`got …`) for paths
 * that are not secret, and the loader scrubs secret values out of the final text as a second guard.
 */
import type { z } from 'zod';
import { envRefName, isEnvRef } from './env.js';

export interface ConfigIssue {
  /** Dotted path into the config (`transport.port`, `plugins[1]`, `(root)` for the whole). */
  readonly path: string;
  readonly message: string;
}

export interface ConfigErrorOptions {
  readonly filepath?: string;
  readonly environment?: string;
  readonly cause?: unknown;
}

export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];
  readonly filepath?: string;
  readonly environment?: string;

  constructor(headline: string, issues: readonly ConfigIssue[] = [], options: ConfigErrorOptions = {}) {
    super(composeMessage(headline, issues), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ConfigError';
    this.issues = issues;
    this.filepath = options.filepath;
    this.environment = options.environment;
  }
}

function composeMessage(headline: string, issues: readonly ConfigIssue[]): string {
  return [headline, ...issues.map((i) => `  ${i.path}: ${i.message}`)].join('\n');
}

// ---- paths ---------------------------------------------------------------------------------------

export type PathSegment = string | number;

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

/** `['transport','port']` → `transport.port`; `['plugins',1]` → `plugins[1]`; odd keys are quoted. */
export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && IDENT.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

// ---- zod issues → readable lines -----------------------------------------------------------------

/** Marks a custom issue as "this value has the wrong type" so unions can tell a near miss from a
 *  type mismatch; `expected` is what to tell the user the branch wanted. */
export interface TypeMismatchParams {
  readonly typeMismatch: true;
  readonly expected: string;
}

const KNOWN_KEYS_TAG = '\u0000known:';

const EXPECTED: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'an object',
  array: 'a list',
  record: 'an object',
  bigint: 'a number',
  function: 'a function',
  nan: 'a number',
};

/** Passed to every `safeParse`: zod's default texts are terse ("Invalid input"); these read as
 *  sentences and keep the data needed to split unknown-key issues into one line per key. */
export const zodErrorMap: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case 'invalid_type':
      return `expected ${EXPECTED[iss.expected] ?? iss.expected}`;
    case 'invalid_value':
      return `expected ${oneOf(iss.values.map((v) => JSON.stringify(v)))}`;
    case 'too_small':
      return sizeMessage(iss.origin, '>=', iss.minimum);
    case 'too_big':
      return sizeMessage(iss.origin, '<=', iss.maximum);
    case 'unrecognized_keys': {
      const def = (iss.inst as { _zod?: { def?: { shape?: object } } } | undefined)?._zod?.def;
      return KNOWN_KEYS_TAG + JSON.stringify(Object.keys(def?.shape ?? {}));
    }
    case 'invalid_format':
      return `expected ${iss.format === 'regex' ? 'a different format' : `a valid ${iss.format}`}`;
    default:
      return undefined;
  }
};

function sizeMessage(origin: string, op: string, bound: unknown): string {
  const n = Number(bound);
  switch (origin) {
    case 'string':
      return op === '>=' && n === 1 ? 'must not be empty' : `expected a string of ${op} ${n} characters`;
    case 'array':
    case 'set':
      return op === '>=' && n === 1 ? 'must not be an empty list' : `expected a list of ${op} ${n} items`;
    default:
      return `expected a number ${op} ${n}`;
  }
}

function oneOf(items: readonly string[]): string {
  const unique = [...new Set(items)];
  if (unique.length <= 1) return unique[0] ?? 'something else';
  return `${unique.slice(0, -1).join(', ')} or ${unique[unique.length - 1]}`;
}

type AnyIssue = z.core.$ZodIssue & { readonly params?: Readonly<Record<string, unknown>> };

/** Codes whose message reads better followed by the value that was given. */
const SHOW_INPUT = new Set(['invalid_type', 'invalid_value', 'too_small', 'too_big', 'invalid_format', 'not_multiple_of', 'invalid_union']);

export interface IssueContext {
  /** The data that was parsed, to quote the offending value. */
  readonly data: unknown;
  /** True for paths whose value must never be shown (secrets). */
  readonly hide: (path: readonly PropertyKey[]) => boolean;
}

/** zod issues → one `ConfigIssue` per bad path, unions reduced to the branch the user meant. */
export function toConfigIssues(issues: readonly z.core.$ZodIssue[], ctx: IssueContext): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const seen = new Set<string>();
  const push = (issue: ConfigIssue): void => {
    const key = `${issue.path}\u0000${issue.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(issue);
    }
  };
  for (const issue of issues) collect(issue as AnyIssue, [], ctx, push);
  return out;
}

function collect(issue: AnyIssue, prefix: readonly PropertyKey[], ctx: IssueContext, push: (i: ConfigIssue) => void): void {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'invalid_union') {
    // The branch that got past its type check is the one the user was writing: report its issues.
    const near = issue.errors.filter((branch) => !branch.every((i) => isTypeMismatch(i as AnyIssue)));
    if (near.length === 1) {
      for (const inner of near[0]!) collect(inner as AnyIssue, path, ctx, push);
      return;
    }
    const expected = oneOf(issue.errors.flatMap((b) => b.flatMap((i) => expectations(i as AnyIssue))));
    push({ path: formatPath(path), message: withInput(`expected ${expected}`, path, ctx) });
    return;
  }
  if (issue.code === 'unrecognized_keys') {
    const known = issue.message.startsWith(KNOWN_KEYS_TAG)
      ? (JSON.parse(issue.message.slice(KNOWN_KEYS_TAG.length)) as string[])
      : [];
    for (const key of issue.keys) {
      const hint = suggest(key, known);
      push({ path: formatPath([...path, key]), message: `unknown key${hint ? ` (did you mean "${hint}"?)` : ''}` });
    }
    return;
  }
  if (issue.code === 'invalid_key') {
    // A bad record key: the path already names the key, so its own checks' messages say the rest.
    const inner = issue.issues.map((i) => i.message).join('; ');
    push({ path: formatPath(path), message: inner || 'invalid key' });
    return;
  }
  const show = SHOW_INPUT.has(issue.code) || issue.params?.['showInput'] === true;
  push({ path: formatPath(path), message: show ? withInput(issue.message, path, ctx) : issue.message });
}

function isTypeMismatch(issue: AnyIssue): boolean {
  if (issue.path.length !== 0) return false;
  if (issue.code === 'invalid_type') return true;
  if (issue.code === 'custom') return issue.params?.['typeMismatch'] === true;
  if (issue.code === 'invalid_union') return issue.errors.every((b) => b.every((i) => isTypeMismatch(i as AnyIssue)));
  return false;
}

function expectations(issue: AnyIssue): string[] {
  if (issue.code === 'invalid_type') return [EXPECTED[issue.expected] ?? issue.expected];
  if (issue.code === 'custom' && typeof issue.params?.['expected'] === 'string') return [issue.params['expected']];
  if (issue.code === 'invalid_union') return issue.errors.flatMap((b) => b.flatMap((i) => expectations(i as AnyIssue)));
  return [];
}

function withInput(message: string, path: readonly PropertyKey[], ctx: IssueContext): string {
  const found = lookup(ctx.data, path);
  if (!found.present) return message.startsWith('expected') ? `required; ${message}` : `required (${message})`;
  if (ctx.hide(path)) return `${message}, got a secret value (not shown)`;
  return `${message}, got ${describeValue(found.value)}`;
}

function lookup(data: unknown, path: readonly PropertyKey[]): { present: boolean; value?: unknown } {
  let cur: unknown = data;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, seg)) return { present: false };
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return cur === undefined ? { present: false } : { present: true, value: cur };
}

/** A short, safe description of a value: scalars quoted, containers only named (they may hold a
 *  secret further down). */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'a list';
  if (isEnvRef(value)) return `env(${JSON.stringify(envRefName(value))})`;
  if (typeof value === 'object') return 'an object';
  return typeof value;
}

/** The closest known key, when it is close enough to be a typo. */
export function suggest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = distance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined;
}

/** Optimal string alignment distance (Levenshtein plus adjacent transposition: `prot` → `port`). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
