import { describe, it, expect } from 'vitest';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { bodyChunks, createDotStuffer, describeBody, stuffWhole, type DotStufferOptions } from '../../core/protocol/data-stream.js';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const BDAT: DotStufferOptions = { stuff: false };

/**
 * The obviously-correct reference: split the whole body into lines at CRLF, bare CR or bare LF, write
 * every line with CRLF (an unterminated last line too), prefix '.' to lines starting with '.', add the
 * terminator. Byte by byte, whole body at once: slow and simple on purpose.
 */
function reference(input: Uint8Array, stuff = true): Buffer {
  const lines: number[][] = [];
  let cur: number[] = [];
  for (let i = 0; i < input.length; i++) {
    const b = input[i];
    if (b === CR) {
      lines.push(cur);
      cur = [];
      if (input[i + 1] === LF) i++;
    } else if (b === LF) {
      lines.push(cur);
      cur = [];
    } else cur.push(b);
  }
  if (cur.length > 0) lines.push(cur);
  const out: number[] = [];
  for (const line of lines) {
    if (stuff && line[0] === DOT) out.push(DOT);
    out.push(...line, CR, LF);
  }
  if (stuff) out.push(DOT, CR, LF);
  return Buffer.from(out);
}

/** Streams `input` through a fresh stuffer split at `cuts` (sorted offsets); returns output and stuffer. */
function streamed(input: Buffer, cuts: readonly number[], options?: DotStufferOptions) {
  const stuffer = createDotStuffer(options);
  const parts: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts, input.length]) {
    parts.push(stuffer.push(input.subarray(from, cut)));
    from = cut;
  }
  parts.push(stuffer.end());
  return { out: Buffer.concat(parts), stuffer };
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const show = (buf: Buffer): string => JSON.stringify(buf.toString('latin1'));

describe('reference implementation (sanity of the oracle itself)', () => {
  it('matches hand-written expectations', () => {
    expect(show(reference(b('')))).toBe(show(b('.\r\n')));
    expect(show(reference(b('a')))).toBe(show(b('a\r\n.\r\n')));
    expect(show(reference(b('a\r\n')))).toBe(show(b('a\r\n.\r\n')));
    expect(show(reference(b('a\r\r\n.')))).toBe(show(b('a\r\n\r\n..\r\n.\r\n')));
    expect(show(reference(b('.\n'), false))).toBe(show(b('.\r\n')));
  });
});

describe('smuggling variants (stuff mode)', () => {
  const expected = 'a\r\n..\r\nb\r\n.\r\n';
  const variants: readonly [string, string][] = [
    ['\\n.\\n', 'a\n.\nb'],
    ['\\r.\\r', 'a\r.\rb'],
    ['\\n.\\r\\n', 'a\n.\r\nb'],
    ['\\r\\n.\\r', 'a\r\n.\rb'],
    ['\\r.\\n', 'a\r.\nb'],
    ['\\r\\n.\\n', 'a\r\n.\nb'],
    ['\\n.\\r', 'a\n.\rb'],
    ['\\r.\\r\\n', 'a\r.\r\nb'],
    ['\\r\\n.\\r\\n', 'a\r\n.\r\nb'],
  ];
  for (const [name, input] of variants) {
    it(`${name} becomes a stuffed CRLF line (whole)`, () => {
      expect(show(stuffWhole(input))).toBe(show(b(expected)));
    });
    it(`${name} becomes a stuffed CRLF line (one byte per chunk)`, () => {
      const buf = b(input);
      const cuts = Array.from({ length: buf.length - 1 }, (_, i) => i + 1);
      expect(show(streamed(buf, cuts).out)).toBe(show(b(expected)));
    });
  }

  it('never lets a lone "." line through unstuffed, whatever the line ends around it', () => {
    const ends = ['\r\n', '\r', '\n'];
    for (const e1 of ends) {
      for (const e2 of ends) {
        const out = stuffWhole(`x${e1}.${e2}y`).toString('latin1');
        expect(out).toBe('x\r\n..\r\ny\r\n.\r\n');
        // The only CRLF.CRLF in the output is the terminator at the very end.
        expect(out.indexOf('\r\n.\r\n')).toBe(out.length - 5);
      }
    }
  });

  it('stuffs ".." lines to "..." and lines that only start with dots', () => {
    expect(stuffWhole('..\r\n..x\n...').toString('latin1')).toBe('...\r\n...x\r\n....\r\n.\r\n');
  });

  it('stuffs a leading dot at the very start of the body', () => {
    expect(stuffWhole('.hello\r\n').toString('latin1')).toBe('..hello\r\n.\r\n');
    expect(stuffWhole('.').toString('latin1')).toBe('..\r\n.\r\n');
    expect(stuffWhole('.\r\n').toString('latin1')).toBe('..\r\n.\r\n');
  });

  it('does not stuff dots that are not at a line start', () => {
    expect(stuffWhole('a.b\r\nc. .\r\n').toString('latin1')).toBe('a.b\r\nc. .\r\n.\r\n');
  });

  it('turns runs of bare CRs and LFs into one CRLF each (CRLF stays one line end)', () => {
    expect(stuffWhole('a\r\r\n\n\r\rb').toString('latin1')).toBe('a\r\n\r\n\r\n\r\n\r\nb\r\n.\r\n');
    expect(stuffWhole('\n\r').toString('latin1')).toBe('\r\n\r\n.\r\n');
  });
});

describe('line starts and line ends at chunk boundaries', () => {
  const cases: readonly [readonly string[], string][] = [
    [['a\r\n', '.b'], 'a\r\n..b\r\n.\r\n'],
    [['a\r', '\n.b'], 'a\r\n..b\r\n.\r\n'],
    [['a\r', '.b'], 'a\r\n..b\r\n.\r\n'],
    [['a\n', '.b'], 'a\r\n..b\r\n.\r\n'],
    [['a', '\n.b'], 'a\r\n..b\r\n.\r\n'],
    [['a', '\r\n', '.', 'b'], 'a\r\n..b\r\n.\r\n'],
    [['a\r\n.', 'b'], 'a\r\n..b\r\n.\r\n'],
    [['a\r', '\r', '\n'], 'a\r\n\r\n.\r\n'],
    [['a\r', '\n'], 'a\r\n.\r\n'],
    [['a\r', 'b'], 'a\r\nb\r\n.\r\n'],
    [['.', '.', '\r', '\n', '.'], '...\r\n..\r\n.\r\n'],
    [['', '.', '', 'x'], '..x\r\n.\r\n'],
  ];
  for (const [chunks, expected] of cases) {
    it(`${JSON.stringify(chunks)} → ${JSON.stringify(expected)}`, () => {
      const stuffer = createDotStuffer();
      const out = Buffer.concat([...chunks.map((c) => stuffer.push(b(c))), stuffer.end()]);
      expect(show(out)).toBe(show(b(expected)));
    });
  }
});

describe('every split offset gives the same output as the reference', () => {
  const inputs = [
    'a\n.\nb',
    'a\r.\rb',
    'a\n.\r\nb',
    'a\r\n.\rb',
    'a\r.\nb',
    '.\r\n..\r\n.\n.\r.',
    '\r\n\r\n.\r\n\r',
    'line one\r\n.line two\r\n..line three\nline four\r.\r\n\r\n.',
    '\n\n\r\r\r\n\n\r.',
    '.',
    'no line end at all',
    'ends in CR\r',
    'ends in LF\n',
    'é.\r\n.é\r\n\xff\x80',
  ];
  for (const stuff of [true, false]) {
    for (const input of inputs) {
      it(`${stuff ? 'DATA' : 'BDAT'} ${JSON.stringify(input)}: one cut at each offset, and each pair of cuts`, () => {
        const buf = Buffer.from(input, 'utf8');
        const want = show(reference(buf, stuff));
        expect(show(stuffWhole(buf, { stuff }))).toBe(want);
        for (let i = 0; i <= buf.length; i++) {
          expect(show(streamed(buf, [i], { stuff }).out), `cut at ${i}`).toBe(want);
        }
        if (buf.length <= 24) {
          for (let i = 0; i <= buf.length; i++) {
            for (let j = i; j <= buf.length; j++) {
              expect(show(streamed(buf, [i, j], { stuff }).out), `cuts at ${i},${j}`).toBe(want);
            }
          }
        }
      });
    }
  }
});

describe('randomised against the reference (fast-check)', () => {
  // Bytes biased towards the interesting ones, so line ends and dots meet chunk edges often.
  const byte = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(CR, LF, DOT) },
    { weight: 2, arbitrary: fc.constantFrom(0x61, 0x20) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
  );
  const body = fc.array(byte, { maxLength: 300 }).map((a) => Buffer.from(a));
  const bodyWithCuts = body.chain((buf) =>
    fc.tuple(fc.constant(buf), fc.uniqueArray(fc.integer({ min: 0, max: buf.length }), { maxLength: 20 }).map((c) => [...c].sort((x, y) => x - y))),
  );

  for (const stuff of [true, false]) {
    it(`${stuff ? 'DATA' : 'BDAT'} mode: output, counters and eightBit match the reference for random chunkings`, () => {
      fc.assert(
        fc.property(bodyWithCuts, ([buf, cuts]) => {
          const { out, stuffer } = streamed(buf, cuts, { stuff });
          const want = reference(buf, stuff);
          expect(show(out)).toBe(show(want));
          expect(stuffer.bytesIn).toBe(buf.length);
          expect(stuffer.bytesOut).toBe(want.length);
          expect(stuffer.eightBit).toBe(buf.some((x) => x >= 0x80));
          expect(show(stuffWhole(buf, { stuff }))).toBe(show(want));
        }),
        { numRuns: 3000 },
      );
    });
  }

  it('output never contains a bare CR, a bare LF, or an early CRLF.CRLF', () => {
    fc.assert(
      fc.property(bodyWithCuts, ([buf, cuts]) => {
        const out = streamed(buf, cuts).out.toString('latin1');
        expect(out.endsWith('\r\n.\r\n') || out === '.\r\n').toBe(true);
        expect(/\r(?!\n)|(?<!\r)\n/.test(out)).toBe(false);
        const term = out.indexOf('\r\n.\r\n');
        expect(term === -1 || term === out.length - 5).toBe(true);
        expect(out.startsWith('.\r\n') && out.length > 3).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('body ends', () => {
  it('empty body: ".\\r\\n" in DATA mode, nothing in BDAT mode', () => {
    const data = createDotStuffer();
    expect(show(data.end())).toBe(show(b('.\r\n')));
    expect(data.bytesOut).toBe(3);
    const bdat = createDotStuffer(BDAT);
    const tail = bdat.end();
    expect(Buffer.isBuffer(tail)).toBe(true);
    expect(tail.length).toBe(0);
    expect(show(stuffWhole(''))).toBe(show(b('.\r\n')));
    expect(stuffWhole(Buffer.alloc(0), BDAT).length).toBe(0);
  });

  it('empty chunks change nothing (an empty-chunk-only body is an empty body)', () => {
    const stuffer = createDotStuffer();
    const empty = Buffer.alloc(0);
    expect(stuffer.push(empty).length).toBe(0);
    expect(show(stuffer.end())).toBe(show(b('.\r\n')));
    expect(stuffer.bytesIn).toBe(0);
  });

  it('adds CRLF before the terminator only when the last line is unterminated', () => {
    expect(show(stuffWhole('x'))).toBe(show(b('x\r\n.\r\n')));
    expect(show(stuffWhole('x\r\n'))).toBe(show(b('x\r\n.\r\n')));
    expect(show(stuffWhole('x\n'))).toBe(show(b('x\r\n.\r\n')));
    expect(show(stuffWhole('x', BDAT))).toBe(show(b('x\r\n')));
    expect(show(stuffWhole('x\n', BDAT))).toBe(show(b('x\r\n')));
  });

  it('a body ending in a bare CR gets exactly one LF, never a second CRLF', () => {
    const stuffer = createDotStuffer();
    const chunk = b('x\r');
    const first = stuffer.push(chunk);
    // The CR passes through unchanged; end() completes it.
    expect(first).toBe(chunk);
    const tail = stuffer.end();
    expect(show(tail)).toBe(show(b('\n.\r\n')));
    expect(show(Buffer.concat([first, tail]))).toBe(show(b('x\r\n.\r\n')));
    expect(show(stuffWhole('x\r'))).toBe(show(b('x\r\n.\r\n')));

    const bdat = createDotStuffer(BDAT);
    expect(show(Buffer.concat([bdat.push(b('x\r')), bdat.end()]))).toBe(show(b('x\r\n')));
  });

  it('a CR alone in the last chunk after a line end', () => {
    const stuffer = createDotStuffer();
    const out = Buffer.concat([stuffer.push(b('x\r\n')), stuffer.push(b('\r')), stuffer.end()]);
    expect(show(out)).toBe(show(b('x\r\n\r\n.\r\n')));
  });
});

describe('BDAT mode', () => {
  it('normalises line ends but neither stuffs dots nor adds a terminator', () => {
    expect(show(stuffWhole('.a\n..b\r.\r\n.', BDAT))).toBe(show(b('.a\r\n..b\r\n.\r\n.\r\n')));
  });

  it('leaves clean CRLF text with leading dots untouched (zero copy)', () => {
    const stuffer = createDotStuffer(BDAT);
    const chunk = b('.a\r\n.b\r\n');
    expect(stuffer.push(chunk)).toBe(chunk);
    expect(stuffer.end().length).toBe(0);
    expect(stuffer.bytesOut).toBe(chunk.length);
  });
});

describe('counters', () => {
  it('bytesIn counts input, bytesOut counts every byte returned including end()', () => {
    const stuffer = createDotStuffer();
    const outs = [stuffer.push(b('.a\n')), stuffer.push(b('b\r')), stuffer.push(b('.c'))];
    expect(stuffer.bytesIn).toBe(7);
    expect(stuffer.bytesOut).toBe(outs.reduce((n, o) => n + o.length, 0));
    const tail = stuffer.end();
    const all = Buffer.concat([...outs, tail]);
    expect(show(all)).toBe(show(b('..a\r\nb\r\n..c\r\n.\r\n')));
    expect(stuffer.bytesOut).toBe(all.length);
  });

  it('eightBit turns on at the first byte >= 0x80 and stays on', () => {
    const stuffer = createDotStuffer();
    stuffer.push(b('plain ascii\r\n'));
    expect(stuffer.eightBit).toBe(false);
    stuffer.push(b('\x7f\x00'));
    expect(stuffer.eightBit).toBe(false);
    stuffer.push(Buffer.from('é', 'utf8'));
    expect(stuffer.eightBit).toBe(true);
    stuffer.push(b('ascii again'));
    expect(stuffer.eightBit).toBe(true);
    const lone = createDotStuffer();
    lone.push(Buffer.from([0x80]));
    expect(lone.eightBit).toBe(true);
  });

  it('rejects use after end()', () => {
    const stuffer = createDotStuffer();
    stuffer.end();
    expect(() => stuffer.push(b('x'))).toThrow(/after end/);
    expect(() => stuffer.end()).toThrow(/twice/);
  });
});

describe('zero copy', () => {
  it('returns the same Buffer for chunks that need no change, across a split CRLF too', () => {
    const stuffer = createDotStuffer();
    const chunks = [b('Subject: hi\r\n\r\nbody line\r'), b('\nmore. text\r\n'), b('no line end yet'), b(' still\r\n')];
    for (const c of chunks) expect(stuffer.push(c)).toBe(c);
    expect(stuffer.bytesOut).toBe(stuffer.bytesIn);
  });

  it('copies (and leaves the input untouched) when a change is needed', () => {
    const cases = ['a\nb', 'a\rb', 'a\r\n.b', '.b'];
    for (const s of cases) {
      const chunk = b(s);
      const out = createDotStuffer().push(chunk);
      expect(out).not.toBe(chunk);
      expect(chunk.toString('latin1')).toBe(s);
    }
  });

  it('a chunk after a bare CR at a chunk end is copied only because an LF must be inserted', () => {
    const stuffer = createDotStuffer();
    const first = b('a\r');
    expect(stuffer.push(first)).toBe(first);
    const second = b('b\r\n');
    const out = stuffer.push(second);
    expect(out).not.toBe(second);
    expect(show(out)).toBe(show(b('\nb\r\n')));
  });

  it('stuffWhole returns one Buffer holding everything, terminator included', () => {
    const out = stuffWhole(b('hello\r\nworld\r\n'));
    expect(show(out)).toBe(show(b('hello\r\nworld\r\n.\r\n')));
  });
});

describe('large chunks', () => {
  it('handles 64 KiB chunks of mixed content exactly like the reference', () => {
    const lines: string[] = [];
    const ends = ['\r\n', '\n', '\r'];
    for (let i = 0; i < 4000; i++) lines.push(`${i % 3 === 0 ? '.' : ''}line ${i} ${'x'.repeat(i % 97)}${ends[i % 7 === 0 ? i % 3 : 0]}`);
    const buf = Buffer.from(lines.join(''), 'latin1');
    const cuts: number[] = [];
    for (let at = 65536; at < buf.length; at += 65536) cuts.push(at);
    const want = reference(buf);
    const got = streamed(buf, cuts).out;
    expect(got.length).toBe(want.length);
    expect(got.equals(want)).toBe(true);
  });
});

describe('bodyChunks', () => {
  const collect = async (it: AsyncIterable<Buffer>): Promise<Buffer[]> => {
    const out: Buffer[] = [];
    for await (const c of it) {
      expect(Buffer.isBuffer(c)).toBe(true);
      out.push(c);
    }
    return out;
  };

  it('encodes a string as UTF-8', async () => {
    const chunks = await collect(bodyChunks('héllo\r\n'));
    expect(chunks.length).toBe(1);
    expect(chunks[0].equals(Buffer.from('héllo\r\n', 'utf8'))).toBe(true);
  });

  it('passes a Buffer through as the same object', async () => {
    const buf = b('abc');
    const chunks = await collect(bodyChunks(buf));
    expect(chunks).toHaveLength(1);
    expect(chunks[0]).toBe(buf);
  });

  it('wraps a Uint8Array without copying', async () => {
    const backing = new Uint8Array([0x78, 0x61, 0x62, 0x63, 0x78]);
    const view = backing.subarray(1, 4);
    const [chunk] = await collect(bodyChunks(view));
    expect(chunk.toString('latin1')).toBe('abc');
    expect(chunk.buffer).toBe(backing.buffer);
    backing[1] = 0x41; // visible through the wrapper: same memory
    expect(chunk.toString('latin1')).toBe('Abc');
  });

  it('yields nothing for an empty string or buffer', async () => {
    expect(await collect(bodyChunks(''))).toHaveLength(0);
    expect(await collect(bodyChunks(Buffer.alloc(0)))).toHaveLength(0);
  });

  it('maps a Readable of Buffers', async () => {
    const chunks = await collect(bodyChunks(Readable.from([b('a\r\n'), b('b')])));
    expect(Buffer.concat(chunks).toString('latin1')).toBe('a\r\nb');
    expect(chunks).toHaveLength(2);
  });

  it('maps a Readable with an encoding set (string chunks)', async () => {
    const readable = new Readable({ read() {} });
    readable.setEncoding('utf8');
    readable.push(Buffer.from('ünï', 'utf8'));
    readable.push(Buffer.from('côde', 'utf8'));
    readable.push(null);
    const chunks = await collect(bodyChunks(readable));
    expect(Buffer.concat(chunks).toString('utf8')).toBe('ünïcôde');
  });

  it('maps an async generator of mixed strings, Buffers and Uint8Arrays, dropping empty chunks', async () => {
    async function* gen(): AsyncGenerator<string | Buffer | Uint8Array> {
      yield 'é';
      yield '';
      yield b('b');
      yield new Uint8Array([0x63]);
      yield Buffer.alloc(0);
    }
    const chunks = await collect(bodyChunks(gen()));
    expect(chunks).toHaveLength(3);
    expect(Buffer.concat(chunks).toString('utf8')).toBe('ébc');
  });

  it('rejects chunks that are not bytes or strings, and bodies that are not bodies', async () => {
    async function* bad(): AsyncGenerator<unknown> {
      yield 42;
    }
    await expect(collect(bodyChunks(bad() as AsyncIterable<string>))).rejects.toThrow(TypeError);
    expect(() => bodyChunks(42 as unknown as string)).toThrow(TypeError);
  });

  it('feeds a stuffer end to end', async () => {
    async function* gen(): AsyncGenerator<string> {
      yield 'Subject: x\n\n.';
      yield '\r';
      yield '\n.\r';
    }
    const stuffer = createDotStuffer();
    const parts: Buffer[] = [];
    for await (const c of bodyChunks(gen())) parts.push(stuffer.push(c));
    parts.push(stuffer.end());
    expect(show(Buffer.concat(parts))).toBe(show(b('Subject: x\r\n\r\n..\r\n..\r\n.\r\n')));
  });
});

describe('describeBody', () => {
  it('strings: UTF-8 size, eightBit, and the encoded buffer', () => {
    const ascii = describeBody('hello\r\n');
    expect(ascii.size).toBe(7);
    expect(ascii.eightBit).toBe(false);
    expect(ascii.buffer?.toString('latin1')).toBe('hello\r\n');
    const utf8 = describeBody('héllo €');
    expect(utf8.size).toBe(Buffer.byteLength('héllo €'));
    expect(utf8.size).toBe(10); // h é(2) l l o ' ' €(3)
    expect(utf8.eightBit).toBe(true);
    expect(describeBody('').size).toBe(0);
    expect(describeBody('').eightBit).toBe(false);
  });

  it('Buffers and Uint8Arrays: size, eightBit, zero-copy buffer', () => {
    const buf = b('abc\x80');
    const d = describeBody(buf);
    expect(d).toEqual({ size: 4, eightBit: true, buffer: buf });
    expect(d.buffer).toBe(buf);
    const u8 = new Uint8Array([0x41, 0x42]);
    const e = describeBody(u8);
    expect(e.size).toBe(2);
    expect(e.eightBit).toBe(false);
    expect(e.buffer?.buffer).toBe(u8.buffer);
    expect(describeBody(new Uint8Array([0xff])).eightBit).toBe(true);
  });

  it('finds a single high byte anywhere in a large buffer', () => {
    const big = Buffer.alloc(1 << 20, 0x61);
    expect(describeBody(big).eightBit).toBe(false);
    big[big.length - 1] = 0x80;
    expect(describeBody(big).eightBit).toBe(true);
  });

  it('streams: nothing known', () => {
    expect(describeBody(Readable.from([b('x')]))).toEqual({});
    async function* gen(): AsyncGenerator<string> {
      yield 'x';
    }
    expect(describeBody(gen())).toEqual({});
  });
});

describe('memory', () => {
  it('stays flat while 300 MB pass through in 64 KiB chunks', () => {
    const CHUNK = 64 * 1024;
    const TOTAL = 300 * 1024 * 1024;
    // Templates with every kind of change (bare LF, bare CR, leading dots) so most chunks are copied.
    const line = (i: number): string => `${i % 3 === 0 ? '.' : ''}${'word '.repeat(15)}${['\r\n', '\n', '\r'][i % 3]}`;
    const text = Buffer.from(Array.from({ length: 3000 }, (_, i) => line(i)).join(''), 'latin1');
    const stuffer = createDotStuffer();
    const before = process.memoryUsage().rss;
    let peak = before;
    let produced = 0;
    for (let done = 0, n = 0; done < TOTAL; done += CHUNK, n++) {
      // A fresh chunk each time, as a stream would hand over, starting at a varying offset.
      const start = (n * 7919) % (text.length - CHUNK);
      const chunk = Buffer.allocUnsafe(CHUNK);
      text.copy(chunk, 0, start, start + CHUNK);
      produced += stuffer.push(chunk).length;
      if ((n & 255) === 0) peak = Math.max(peak, process.memoryUsage().rss);
    }
    produced += stuffer.end().length;
    peak = Math.max(peak, process.memoryUsage().rss);
    expect(stuffer.bytesIn).toBe(Math.ceil(TOTAL / CHUNK) * CHUNK);
    expect(produced).toBe(stuffer.bytesOut);
    expect(stuffer.bytesOut).toBeGreaterThan(stuffer.bytesIn);
    if (process.env.DATA_STREAM_MEM_LOG) console.log(`rss growth ${((peak - before) / 1048576).toFixed(1)} MB`);
    expect(peak - before).toBeLessThan(50 * 1024 * 1024);
  });
});

describe('rendering into caller-provided buffers (the data stage pools them)', () => {
  it('gives the same bytes as allocating, rendered in place when the buffer is big enough', () => {
    const chunks = ['.a\nb\r\n.c', '\r', '\n.d\n', 'plain text\r\n', '\n\n.'].map((s) => Buffer.from(s, 'latin1'));
    const plain = createDotStuffer();
    const pooled = createDotStuffer();
    const backing = Buffer.alloc(64, 0xff);
    const asked: number[] = [];
    for (const chunk of chunks) {
      const a = plain.push(chunk);
      const b = pooled.push(chunk, (size) => { asked.push(size); return backing; });
      expect(b.equals(a)).toBe(true);
      if (b !== chunk) expect(b.buffer).toBe(backing.buffer); // rendered into the lent buffer
    }
    expect(pooled.end().equals(plain.end())).toBe(true);
    expect(asked.length).toBeGreaterThan(0);
    // An allocator that declines (undefined) or lends a too-small buffer falls back to allocating.
    const s = createDotStuffer();
    expect(s.push(Buffer.from('.x\n'), () => undefined).toString('latin1')).toBe('..x\r\n');
    expect(createDotStuffer().push(Buffer.from('.x\n'), () => Buffer.alloc(2)).toString('latin1')).toBe('..x\r\n');
  });
});
