/**
 * The batch runner's own failures. `BatchInputError` is everything the user can fix by editing a
 * file or a flag (a missing source, a malformed row, a template that does not compile, a server
 * that cannot be reached before anything was sent): the CLI prints its one-line message and exits 2.
 */
export class BatchInputError extends Error {
  constructor(message: string, options?: { readonly cause?: unknown }) {
    super(message, options);
    this.name = 'BatchInputError';
  }
}

/** The message of any thrown value, on one line (server replies may span several). */
export function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/\s*\r?\n\s*/g, ' / ').trim();
}
