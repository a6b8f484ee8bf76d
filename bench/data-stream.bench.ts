/**
 * Throughput of the data phase transform (core/protocol/data-stream.ts).
 *
 *   npx tsx bench/data-stream.bench.ts [MB per case, default 200]
 *
 * Each case pushes the given amount of text through one DotStuffer in 64 KiB chunks and reports wall
 * MB/s and CPU ms per MB (user+system, so GC of the produced Buffers is included). Input chunks come
 * from a pre-generated 8 MB pool, cycled, so generating input costs nothing in the measured loop while
 * chunk contents still vary (lines and CRLFs split at chunk boundaries as in real streams). The machine
 * is shared and noisy, so each case runs REPEATS times and the median (by CPU) is printed.
 */
import { createDotStuffer } from '../core/protocol/data-stream.js';

const CHUNK = 64 * 1024;
const POOL_BYTES = 8 * 1024 * 1024;
const MB = 1024 * 1024;
const totalMB = Number(process.argv[2] ?? 200);
const REPEATS = 5;

/** Deterministic pseudo-random text lines (xorshift, so runs are comparable). */
function makePool(lineLen: number, eol: string, dotEvery: number): readonly Buffer[] {
  let seed = 0x9e3779b9;
  const rnd = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 0x100000000;
  };
  const words = ['lorem', 'ipsum', 'dolor', 'sit', 'amet', 'consectetur', 'adipiscing', 'elit', 'sed', 'do'];
  const parts: string[] = [];
  let size = 0;
  let n = 0;
  while (size < POOL_BYTES) {
    let line = dotEvery > 0 && n % dotEvery === 0 ? '.' : '';
    const target = lineLen - eol.length + Math.floor(rnd() * 11) - 5;
    while (line.length < target) line += words[Math.floor(rnd() * words.length)] + ' ';
    line = line.slice(0, Math.max(1, target)) + eol;
    parts.push(line);
    size += line.length;
    n++;
  }
  const all = Buffer.from(parts.join(''), 'latin1');
  const chunks: Buffer[] = [];
  for (let i = 0; i + CHUNK <= all.length; i += CHUNK) chunks.push(Buffer.from(all.subarray(i, i + CHUNK)));
  return chunks;
}

interface Result {
  readonly name: string;
  readonly mbPerSec: number;
  readonly cpuMsPerMB: number;
  readonly outRatio: number;
  readonly zeroCopyShare: number;
}

function run(name: string, pool: readonly Buffer[]): Result {
  const chunksNeeded = Math.ceil((totalMB * MB) / CHUNK);
  // Warm-up so the JIT has settled before measuring.
  const warm = createDotStuffer();
  for (let i = 0; i < 200; i++) warm.push(pool[i % pool.length]);
  warm.end();

  const stuffer = createDotStuffer();
  let zeroCopy = 0;
  let sink = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < chunksNeeded; i++) {
    const chunk = pool[i % pool.length];
    const out = stuffer.push(chunk);
    if (out === chunk) zeroCopy++;
    sink += out.length;
  }
  sink += stuffer.end().length;
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const mb = stuffer.bytesIn / MB;
  if (sink !== stuffer.bytesOut) throw new Error('bytesOut mismatch');
  return {
    name,
    mbPerSec: mb / (wallMs / 1000),
    cpuMsPerMB: cpuMs / mb,
    outRatio: stuffer.bytesOut / stuffer.bytesIn,
    zeroCopyShare: zeroCopy / chunksNeeded,
  };
}

const cases: readonly [string, readonly Buffer[]][] = [
  ['CRLF text, ~80 B lines, no leading dots', makePool(80, '\r\n', 0)],
  ['LF text, ~80 B lines (every line end fixed)', makePool(80, '\n', 0)],
  ['CRLF text, ~80 B lines, 1/3 start with "."', makePool(80, '\r\n', 3)],
  ['LF text, ~80 B lines, 1/3 start with "."', makePool(80, '\n', 3)],
  ['CRLF text, ~1 KB lines, no leading dots', makePool(1024, '\r\n', 0)],
  ['CRLF text, ~1 KB lines, 1/3 start with "."', makePool(1024, '\r\n', 3)],
];

console.log(`node ${process.version}, ${totalMB} MB per case, ${CHUNK / 1024} KiB chunks`);
console.log('case'.padEnd(46), 'MB/s'.padStart(8), 'CPU ms/MB'.padStart(10), 'out/in'.padStart(7), 'zero-copy'.padStart(10));
for (const [name, pool] of cases) {
  const runs = Array.from({ length: REPEATS }, () => run(name, pool)).sort((a, b) => a.cpuMsPerMB - b.cpuMsPerMB);
  const r = runs[REPEATS >> 1];
  console.log(
    r.name.padEnd(46),
    r.mbPerSec.toFixed(0).padStart(8),
    r.cpuMsPerMB.toFixed(3).padStart(10),
    r.outRatio.toFixed(4).padStart(7),
    `${(r.zeroCopyShare * 100).toFixed(0)}%`.padStart(10),
  );
}
