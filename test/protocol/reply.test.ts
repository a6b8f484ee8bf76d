import { describe, expect, it } from 'vitest';
import { createReplyParser, type SmtpReply } from '../../core/protocol/reply.js';
import { SmtpProtocolError, SmtpResponseError } from '../../core/errors.js';

function parse(...chunks: (string | Buffer)[]): SmtpReply[] {
  const out: SmtpReply[] = [];
  const p = createReplyParser((r) => out.push(r));
  for (const c of chunks) p.push(typeof c === 'string' ? Buffer.from(c, 'utf8') : c);
  return out;
}

describe('reply parser', () => {
  it('parses a one-line reply', () => {
    expect(parse('250 OK\r\n')).toEqual([{ code: 250, lines: ['OK'], message: 'OK' }]);
  });

  it('joins a multi-line reply with \\n and keeps each line', () => {
    const [r] = parse('250-mx.example Hello\r\n250-PIPELINING\r\n250 SIZE 1000\r\n');
    expect(r).toEqual({ code: 250, lines: ['mx.example Hello', 'PIPELINING', 'SIZE 1000'], message: 'mx.example Hello\nPIPELINING\nSIZE 1000' });
  });

  it('accepts an empty text: "250", "250 " and smtp-sink\'s last "250 "', () => {
    expect(parse('250\r\n')[0]).toMatchObject({ code: 250, lines: [''] });
    expect(parse('250 \r\n')[0]).toMatchObject({ code: 250, lines: [''] });
    expect(parse('250-sink\r\n250-PIPELINING\r\n250 \r\n')[0]!.lines).toEqual(['sink', 'PIPELINING', '']);
  });

  it('accepts bare LF line ends', () => {
    expect(parse('220 hi\n')[0]).toMatchObject({ code: 220, message: 'hi' });
  });

  it('reassembles replies split at every byte', () => {
    const text = '250-first\r\n250 second\r\n354 go ahead\r\n';
    for (let i = 1; i < text.length; i++) {
      const out = parse(text.slice(0, i), text.slice(i));
      expect(out.map((r) => r.code)).toEqual([250, 354]);
      expect(out[0]!.lines).toEqual(['first', 'second']);
    }
  });

  it('delivers several pipelined replies from one chunk in order', () => {
    expect(parse('250 2.1.0 Ok\r\n550 5.1.1 No such user\r\n250 2.1.5 Ok\r\n354 End\r\n').map((r) => r.code)).toEqual([250, 550, 250, 354]);
  });

  it('extracts RFC 3463 enhanced status codes whose class matches the reply', () => {
    expect(parse('550 5.1.1 <x@y>: Recipient address rejected\r\n')[0]!.enhancedCode).toBe('5.1.1');
    expect(parse('250 2.0.0 Ok: queued as 123\r\n')[0]!.enhancedCode).toBe('2.0.0');
    expect(parse('452 4.5.3 Too many recipients\r\n')[0]!.enhancedCode).toBe('4.5.3');
    // Not an enhanced code: class differs, or it is just a version number in the text.
    expect(parse('250 5.1.1 odd\r\n')[0]!.enhancedCode).toBeUndefined();
    expect(parse('220 mx ESMTP Postfix 3.7.11\r\n')[0]!.enhancedCode).toBeUndefined();
    expect(parse('250 2.1.0x\r\n')[0]!.enhancedCode).toBeUndefined();
  });

  it('decodes UTF-8 reply text', () => {
    expect(parse('250 héllo ✓\r\n')[0]!.message).toBe('héllo ✓');
  });

  it('refuses non-numeric garbage with a typed protocol error', () => {
    expect(() => parse('HTTP/1.1 400 Bad Request\r\n')).toThrow(SmtpProtocolError);
    expect(() => parse('25\r\n')).toThrow(SmtpProtocolError);
    expect(() => parse('250_odd\r\n')).toThrow(SmtpProtocolError);
    expect(() => parse('\r\n')).toThrow(SmtpProtocolError);
    expect(() => parse('650 out of range\r\n')).toThrow(/out of range/);
  });

  it('refuses a line over 8 192 octets with 500 "Line too long" (smtplib), even before its end arrives', () => {
    const long = `250 ${'x'.repeat(9000)}`;
    try {
      parse(long);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(SmtpResponseError);
      expect((e as SmtpResponseError).code).toBe(500);
      expect((e as SmtpResponseError).reply.message).toBe('Line too long.');
    }
    expect(() => parse(`${long}\r\n`)).toThrow(/longer than 8192/);
    // 8 192 exactly is fine.
    expect(parse(`250 ${'y'.repeat(8188)}\r\n`)[0]!.message.length).toBe(8188);
  });

  it('refuses a reply that never ends (too many continuation lines)', () => {
    const p = createReplyParser(() => undefined);
    expect(() => {
      for (let i = 0; i < 10_000; i++) p.push(Buffer.from('250-more\r\n'));
    }).toThrow(/reply too long/);
  });

  it('honours custom limits', () => {
    const out: SmtpReply[] = [];
    const p = createReplyParser((r) => out.push(r), { maxLineLength: 10, maxReplyLength: 100, maxReplyLines: 2 });
    expect(() => p.push(Buffer.from('250 0123456789\r\n'))).toThrow(SmtpResponseError);
    const q = createReplyParser((r) => out.push(r), { maxLineLength: 100, maxReplyLength: 1000, maxReplyLines: 2 });
    expect(() => q.push(Buffer.from('250-a\r\n250-b\r\n250 c\r\n'))).toThrow(/reply too long/);
  });

  it('reset() forgets a partial reply (after STARTTLS nothing buffered is trusted)', () => {
    const out: SmtpReply[] = [];
    const p = createReplyParser((r) => out.push(r));
    p.push(Buffer.from('250-injected\r\n250 PIPE'));
    expect(p.pending).toBeGreaterThan(0);
    p.reset();
    p.push(Buffer.from('220 fresh\r\n'));
    expect(out).toEqual([{ code: 220, lines: ['fresh'], message: 'fresh' }]);
  });
});
