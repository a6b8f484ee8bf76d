import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SmtpInvalidInputError } from '../../core/errors.js';
import { formatAddressList, needsSmtpUtf8, parseAddressList } from '../../core/message/address.js';
import { base64Stream } from '../../core/message/body.js';
import { encodeWords, foldHeader } from '../../core/message/headers.js';

describe('parseAddressList', () => {
  it.each([
    ['a@b.example', [{ address: 'a@b.example' }]],
    ['"Name, Jr." <a@b.example>', [{ name: 'Name, Jr.', address: 'a@b.example' }]],
    ['Name <a@b.example>, c@d.example', [{ name: 'Name', address: 'a@b.example' }, { address: 'c@d.example' }]],
    ['Team: a@b.example, "X Y" <c@d.example>;', [{ address: 'a@b.example' }, { name: 'X Y', address: 'c@d.example' }]],
    ['Team: a@b.example;, e@f.example', [{ address: 'a@b.example' }, { address: 'e@f.example' }]],
    ['a@b.example (Comment Name)', [{ name: 'Comment Name', address: 'a@b.example' }]],
    ['"Quote \\"q\\" Back\\\\slash" <a@b.example>', [{ name: 'Quote "q" Back\\slash', address: 'a@b.example' }]],
    ['<a@b.example>', [{ address: 'a@b.example' }]],
    ['=?UTF-8?Q?J=C3=B6rg?= <j@b.example>', [{ name: 'Jörg', address: 'j@b.example' }]],
    ['Jörg <jörg@bücher.example>', [{ name: 'Jörg', address: 'jörg@bücher.example' }]],
    ['', []],
  ] as const)('%s', (input, expected) => {
    expect(parseAddressList(input, 'to')).toEqual(expected);
  });

  it('takes objects, arrays and nested arrays', () => {
    // Nested arrays are outside the type but nodemailer (and plain JS callers) accept them.
    const nested = [{ name: 'A', address: 'a@x.example' }, ['b@x.example', { address: 'C <c@x.example>' }]] as never;
    expect(parseAddressList(nested, 'cc')).toEqual([
      { name: 'A', address: 'a@x.example' }, { address: 'b@x.example' }, { name: 'C', address: 'c@x.example' },
    ]);
  });

  it.each([
    ['a@b.example\r\nX: y'], ['a@b.example\n'], ['a\0@b.example'], ['Name\r <a@b.example>'], ['no address here'], ['a@b@c'], ['<a b@c.example>'],
  ])('refuses %j naming the field', (input) => {
    const error = (() => { try { parseAddressList(input, 'from'); } catch (e) { return e; } })();
    expect(error).toBeInstanceOf(SmtpInvalidInputError);
    expect((error as SmtpInvalidInputError).field).toBe('from');
  });

  it('refuses CR/LF in an object name', () => {
    expect(() => parseAddressList({ name: 'x\ny', address: 'a@b.example' }, 'replyTo')).toThrow(/replyTo: CR, LF/);
  });
});

describe('formatting', () => {
  it('quotes, encodes or leaves names as needed', () => {
    expect(formatAddressList([{ address: 'a@b.example' }])).toBe('a@b.example');
    expect(formatAddressList([{ name: 'Jane Doe', address: 'j@b.example' }])).toBe('Jane Doe <j@b.example>');
    expect(formatAddressList([{ name: 'Doe, Jane', address: 'j@b.example' }, { address: 'x@y.example' }])).toBe('"Doe, Jane" <j@b.example>, x@y.example');
    expect(formatAddressList([{ name: 'Say "hi"', address: 'j@b.example' }])).toBe('"Say \\"hi\\"" <j@b.example>');
    expect(formatAddressList([{ name: 'Jürgen', address: 'j@b.example' }])).toBe('=?UTF-8?Q?J=C3=BCrgen?= <j@b.example>');
    expect(formatAddressList([{ name: 'Дмитрий', address: 'd@b.example' }])).toBe('=?UTF-8?B?0JTQvNC40YLRgNC40Lk=?= <d@b.example>');
  });

  it('flags non-ASCII addresses for SMTPUTF8', () => {
    expect(needsSmtpUtf8('jörg@example.com')).toBe(true);
    expect(needsSmtpUtf8('j@bücher.example')).toBe(true);
    expect(needsSmtpUtf8('plain@example.com')).toBe(false);
  });

  it('encoded words are ≤ 75 characters, split between characters, and decode back', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 300 }), (text) => {
      const words = encodeWords(text);
      for (const w of words) expect(w.length).toBeLessThanOrEqual(75);
      const decoded = words.map((w) => {
        const [, enc, payload] = /^=\?UTF-8\?([BQ])\?(.*)\?=$/.exec(w)!;
        return enc === 'B'
          ? Buffer.from(payload, 'base64').toString('utf8')
          : Buffer.from(payload.replace(/_/g, ' ').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');
      }).join('');
      expect(decoded).toBe(text);
    }));
  });

  it('folds headers at 78 between tokens', () => {
    const folded = foldHeader('Subject', encodeWords('ü'.repeat(200), 78 - 'Subject'.length - 2));
    expect(folded.split('\r\n').every((l) => l.length <= 78)).toBe(true);
    expect(folded.split('\r\n').slice(1).every((l) => l.startsWith(' '))).toBe(true);
  });
});

describe('base64Stream', () => {
  it('equals Buffer base64 for any chunking, lines of 76', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 20 }), async (bytes, cuts) => {
      const data = Buffer.from(bytes);
      async function* chunks() {
        let at = 0;
        for (let i = 0; at < data.length; i++) {
          const n = cuts[i % cuts.length];
          yield data.subarray(at, at + n);
          at += n;
        }
      }
      const out: Buffer[] = [];
      for await (const b of base64Stream(chunks())) out.push(b);
      const text = Buffer.concat(out).toString('latin1');
      expect(text.replace(/\r\n/g, '')).toBe(data.toString('base64'));
      expect(text.split('\r\n').every((l) => l.length <= 76)).toBe(true);
      if (data.length > 0) expect(text.split('\r\n').slice(0, -1).every((l) => l.length === 76)).toBe(true);
    }));
  });
});
