import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, expect, it } from 'vitest';
import { mimeBuilder } from '../../core/message/index.js';
import type { BuiltMessage } from '../../core/message/types.js';

const dir = mkdtempSync(join(tmpdir(), 'mailstage-stream-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const FILE_SIZE = 50 * 1024 * 1024;

// A real gc() lets the test tell memory still held apart from garbage not yet collected
// (freed Buffers live outside the V8 heap and are reclaimed late, which inflates RSS for a while).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const held = (): number => {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

async function writeBigFile(path: string): Promise<void> {
  const out = createWriteStream(path);
  const block = randomBytes(1024 * 1024);
  for (let i = 0; i < FILE_SIZE / block.length; i++) {
    if (!out.write(block)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

it('streams a 50 MB file attachment with flat memory and the promised size', async () => {
  const path = join(dir, 'big.bin');
  await writeBigFile(path);
  const baseline = process.memoryUsage().rss;
  const heldBefore = held();
  let heldPeak = heldBefore;

  const built = (await mimeBuilder().build({
    from: 'a@example.com', to: 'b@example.com', subject: 'big', text: 'see attached',
    attachments: [{ path }],
  }, { hostname: 'h.example' })) as BuiltMessage;
  expect(Buffer.isBuffer(built.body)).toBe(false);

  let peak = baseline;
  let total = 0;
  let longest = 0;
  let carry = 0; // length of the line still open at the end of the previous chunk
  let chunks = 0;
  for await (const chunk of built.body as AsyncIterable<Buffer>) {
    total += chunk.length;
    // Line lengths across chunk borders, without keeping the message.
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, nl + 1)) {
      longest = Math.max(longest, carry + nl - start);
      carry = 0;
      start = nl + 1;
    }
    carry += chunk.length - start;
    if (++chunks % 50 === 0) peak = Math.max(peak, process.memoryUsage().rss);
    if (chunks % 100 === 0) heldPeak = Math.max(heldPeak, held());
  }
  peak = Math.max(peak, process.memoryUsage().rss);

  expect(total).toBe(built.size);
  expect(total).toBeGreaterThan(FILE_SIZE * 4 / 3);
  expect(longest).toBeLessThanOrEqual(78);
  const growth = peak - baseline;
  const heldGrowth = heldPeak - heldBefore;
  console.log(`streaming ${FILE_SIZE >> 20} MB: RSS +${(growth / 2 ** 20).toFixed(1)} MB, held after gc +${(heldGrowth / 2 ** 20).toFixed(1)} MB`);
  // Reading the file whole would hold 50 MB (plus 67 MB of base64); streaming holds a few chunks.
  expect(heldGrowth).toBeLessThan(FILE_SIZE / 4);
  expect(growth).toBeLessThan(FILE_SIZE / 2);
}, 120_000);
