/**
 * What every command shares: the global options, loading the config, and turning any failure into
 * one line on stderr and an exit code — 0 ok, 1 delivery failures, 2 bad input or config (130 for
 * a run stopped by Ctrl-C/SIGTERM). Stack traces only with --debug.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { ConfigError, loadConfig, type LoadedConfig } from '../index.js';
import { SmtpInvalidInputError } from '../core/errors.js';
import { BatchInputError } from '../runner/errors.js';
import { printable } from '../core/printable.js';

export const EXIT_OK = 0;
export const EXIT_DELIVERY = 1;
export const EXIT_INPUT = 2;
export const EXIT_INTERRUPTED = 130;

/** Bad flags or arguments: exit 2. */
export class CliInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliInputError';
  }
}

export interface GlobalOptions {
  readonly config?: string;
  readonly env?: string;
  readonly debug?: boolean;
}

export function globals(command: Command): GlobalOptions {
  return command.optsWithGlobals() as GlobalOptions;
}

export async function loadCliConfig(g: GlobalOptions): Promise<LoadedConfig> {
  return loadConfig({ ...(g.config ? { file: g.config } : {}), ...(g.env ? { env: g.env } : {}) });
}

/** Relative paths in a config are relative to the config file. */
export function configDir(loaded: LoadedConfig): string {
  return loaded.filepath ? path.dirname(loaded.filepath) : process.cwd();
}

export function exitCodeOf(error: unknown): number {
  if (error instanceof ConfigError || error instanceof BatchInputError || error instanceof CliInputError || error instanceof SmtpInvalidInputError) {
    return EXIT_INPUT;
  }
  return EXIT_DELIVERY;
}

/**
 * What the user is told. A config error keeps its lines (one per bad path, the syntax error's
 * source line); anything else is one line (server replies may span several). Either way every
 * control character is escaped: a server's or a row's text must not drive the terminal.
 */
export function describeError(error: unknown): string {
  if (error instanceof ConfigError) return printable(error.message, { newlines: true });
  const text = error instanceof Error ? error.message : String(error);
  return printable(text.replace(/\s*\r?\n\s*/g, '; ').trim());
}

/** Runs a command body, reports a failure as one line, and sets the exit code. */
export function action<A extends unknown[]>(body: (...args: A) => Promise<number | void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const command = args[args.length - 1] as Command;
    try {
      const code = await body(...args);
      process.exitCode = code ?? EXIT_OK;
    } catch (error) {
      const debug = globals(command).debug === true;
      process.stderr.write(`mailstage: ${describeError(error)}\n`);
      if (debug && error instanceof Error && error.stack) process.stderr.write(`${printable(error.stack, { newlines: true })}\n`);
      process.exitCode = exitCodeOf(error);
    }
  };
}

/** Parses a positive integer flag. */
export function positiveInt(name: string): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value) || Number(value) < 1) throw new CliInputError(`${name} must be a positive integer, got ${JSON.stringify(value)}`);
    return Number(value);
  };
}
