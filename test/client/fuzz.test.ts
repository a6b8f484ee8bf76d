/**
 * Fuzzing with a fixed seed (cheap enough for CI): the reply parser on arbitrary and model-generated
 * bytes, and whole sessions against a server that answers at random. The properties are in
 * `test/fuzz/run.ts`, which also runs them longer on demand (`npx tsx test/fuzz/run.ts [runs]`).
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { SmtpError, SmtpProtocolError } from '../../core/errors.js';
import {
  parseChunks, parserArbitraryBytes, parserModelRoundTrip, parserSplitIndependent, sessionProperty, splitAt,
  watchUnhandled,
} from '../fuzz/run.js';

const SEED = 20_240_611;
const counts: Record<string, number> = {};

async function run(name: string, prop: fc.IRawProperty<never, boolean>, numRuns: number): Promise<void> {
  const details = await fc.check(prop as fc.IAsyncProperty<never>, { seed: SEED, numRuns });
  counts[name] = details.numRuns;
  if (details.failed) throw new Error(fc.defaultReportMessage(details));
  expect(details.numRuns).toBe(numRuns);
}

afterAll(() => {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  console.log(`fuzz cases run (seed ${SEED}): ${JSON.stringify(counts)}, total ${total}`);
});

describe('reply parser (fast-check, fixed seed)', () => {
  it('arbitrary bytes, split arbitrarily: replies or an SmtpError, nothing else, never slow', async () => {
    await run('parser-bytes', parserArbitraryBytes as never, 3000);
  });

  it('replies generated from a model round-trip exactly, however the bytes are split', async () => {
    await run('parser-model', parserModelRoundTrip as never, 2000);
  });

  it('the outcome does not depend on how the bytes are split', async () => {
    await run('parser-split', parserSplitIndependent as never, 3000);
  });

  it('regression: a line of exactly maxLineLength octets is accepted whether or not its CR and LF arrive together', () => {
    const limits = { maxLineLength: 16, maxReplyLength: 1000, maxReplyLines: 10 };
    const line = Buffer.from(`250 ${'x'.repeat(12)}\r\n`); // 16 octets before the CRLF
    const whole = parseChunks([line], limits);
    expect(whole.error).toBeUndefined();
    expect(whole.replies.map((r) => r.code)).toEqual([250]);
    const split = parseChunks(splitAt(line, [17]), limits); // '250 xxxxxxxxxxxx\r' | '\n'
    expect(split.error).toBeUndefined();
    expect(split.replies).toEqual(whole.replies);
  });

  it('sanity: the harness sees a parser error as typed', () => {
    const out = parseChunks([Buffer.from('hello\r\n')]);
    expect(out.error).toBeInstanceOf(SmtpProtocolError);
    expect(out.error).toBeInstanceOf(SmtpError);
  });
});

describe('whole sessions against a random server (fast-check, fixed seed)', () => {
  it('sendmail always settles, typed, and is never left connected after the connection ended; no unhandled rejection', async () => {
    const done = watchUnhandled();
    try {
      await run('session', sessionProperty as never, 300);
    } finally {
      const stray = done();
      expect(stray.map((s) => `${(s as Error)?.name}: ${(s as Error)?.message}`)).toEqual([]);
    }
  }, 60_000);
});
