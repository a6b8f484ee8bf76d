/**
 * `env('SMTP_PASS')`: a placeholder resolved when the config is loaded, so a config file can be
 * committed without its secrets. Every value that came from `env()` is treated as a secret: the
 * loader records its path and `config print` / error messages never show it.
 */

/**
 * The brand. A registered symbol (not a module-local one) because the config file is evaluated by
 * jiti with its own module instances, and users may import `env` from the built package while the
 * loader runs from source (or the reverse): every copy of this module must recognise the others'
 * markers. It is not a string key, so it cannot collide with config data.
 */
export const ENV_BRAND: unique symbol = Symbol.for('mailstage.config.env');

export interface EnvSpec {
  readonly name: string;
  readonly default?: string;
}

/** What `env()` returns: stands for a string until the config is loaded. */
export interface EnvRef {
  readonly [ENV_BRAND]: EnvSpec;
}

export interface EnvOptions {
  /** Used when the variable is unset or empty. */
  readonly default?: string;
}

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function env(name: string, options: EnvOptions = {}): EnvRef {
  if (typeof name !== 'string' || !VAR_NAME.test(name)) {
    throw new TypeError(`env(): ${JSON.stringify(name)} is not an environment variable name`);
  }
  if (options.default !== undefined && typeof options.default !== 'string') {
    throw new TypeError(`env(${JSON.stringify(name)}): the default must be a string`);
  }
  const spec: EnvSpec = Object.freeze(options.default === undefined ? { name } : { name, default: options.default });
  const ref = { [ENV_BRAND]: spec };
  // Readable when someone JSON.stringify()s an unresolved config (symbol keys are dropped otherwise).
  Object.defineProperty(ref, 'toJSON', { value: () => `env(${JSON.stringify(name)})`, enumerable: false });
  return Object.freeze(ref);
}

export function isEnvRef(value: unknown): value is EnvRef {
  if (value === null || typeof value !== 'object') return false;
  const spec = (value as Partial<Record<typeof ENV_BRAND, unknown>>)[ENV_BRAND];
  return typeof spec === 'object' && spec !== null && typeof (spec as { name?: unknown }).name === 'string';
}

export function envRefName(ref: EnvRef): string {
  return ref[ENV_BRAND].name;
}

/** A plain data object (from any realm), as opposed to a class instance, Buffer, plugin with a
 *  prototype, or an env() marker. Only these are walked and merged. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || isEnvRef(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === null || Object.getPrototypeOf(proto) === null;
}

// ---- resolution ----------------------------------------------------------------------------------

export type Environ = Readonly<Record<string, string | undefined>>;

export interface EnvResolution {
  readonly value: unknown;
  /** Paths (as segments) whose values came from env(). */
  readonly secretPaths: readonly (readonly PropertyKey[])[];
  /** The values those paths got, so error texts can be scrubbed of them. */
  readonly secretValues: readonly string[];
  /** Every env() with no value and no default, in tree order. */
  readonly missing: readonly { readonly path: readonly PropertyKey[]; readonly name: string }[];
}

/**
 * Replaces every env() marker in plain objects and arrays. Plugins are left untouched (not walked,
 * not copied): they are live objects whose identity the core relies on. An empty variable counts as
 * unset, because `SMTP_PASS=` in a shell or .env file is almost always a mistake, not a password.
 */
export function resolveEnvRefs(tree: unknown, environ: Environ): EnvResolution {
  const secretPaths: (readonly PropertyKey[])[] = [];
  const secretValues: string[] = [];
  const missing: { path: readonly PropertyKey[]; name: string }[] = [];

  const walk = (value: unknown, path: readonly PropertyKey[]): unknown => {
    if (isEnvRef(value)) {
      const spec = value[ENV_BRAND];
      const raw = environ[spec.name];
      const resolved = raw !== undefined && raw !== '' ? raw : spec.default;
      if (resolved === undefined) {
        missing.push({ path, name: spec.name });
        return undefined;
      }
      secretPaths.push(path);
      secretValues.push(resolved);
      return resolved;
    }
    if (Array.isArray(value)) return value.map((item, i) => walk(item, [...path, i]));
    if (isPlainObject(value)) {
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) {
        out[key] = path.length === 0 && key === 'plugins' ? item : walk(item, [...path, key]);
      }
      return out;
    }
    return value;
  };

  return { value: walk(tree, []), secretPaths, secretValues, missing };
}
