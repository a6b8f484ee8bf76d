import { describe, expect, it } from 'vitest';
import { checkArgument, encodeCommand } from '../../core/protocol/command.js';
import { authMechanisms, parseCapabilities, sizeLimit } from '../../core/protocol/capabilities.js';
import { envelopeAddress, formatPath, needsSmtpUtf8 } from '../../core/protocol/address.js';
import { decodeXtext, encodeXtext } from '../../core/protocol/xtext.js';
import { SmtpInvalidInputError } from '../../core/errors.js';

const reply = (...lines: string[]) => ({ code: 250, lines, message: lines.join('\n') });

describe('command encoding and the injection guard', () => {
  it('encodes a verb and its argument with CRLF', () => {
    expect(encodeCommand('NOOP')).toBe('NOOP\r\n');
    expect(encodeCommand('VRFY', 'alice')).toBe('VRFY alice\r\n');
  });

  it.each([
    ['CR', 'a\rb'], ['LF', 'a\nb'], ['CRLF', 'x@y\r\nRCPT TO:<evil@z>'], ['NUL', 'a\0b'], ['TAB', 'a\tb'], ['ESC', 'a\x1bb'], ['DEL', 'a\x7fb'],
  ])('refuses %s in an argument, naming the field', (_name, value) => {
    expect(() => checkArgument('to', value)).toThrow(SmtpInvalidInputError);
    try {
      checkArgument('to', value);
    } catch (e) {
      expect((e as SmtpInvalidInputError).field).toBe('to');
      expect((e as Error).message).toMatch(/^to: /);
    }
  });

  it('refuses a bad verb in the command() escape hatch', () => {
    expect(() => encodeCommand('NOOP\r\nQUIT')).toThrow(/not an SMTP verb/);
    expect(() => encodeCommand('')).toThrow(SmtpInvalidInputError);
    expect(() => encodeCommand('X-CUSTOM', 'ok')).not.toThrow();
  });

  it('allows UTF-8 in arguments (SMTPUTF8 addresses)', () => {
    expect(checkArgument('to', 'jörg@bücher.example')).toBe('jörg@bücher.example');
  });
});

describe('EHLO capabilities', () => {
  it('stores keywords lower-case with their parameters, skipping the greeting line', () => {
    const f = parseCapabilities(reply('mx.example Hello', 'PIPELINING', 'SIZE 10240000', 'AUTH PLAIN LOGIN', 'DSN', 'X-EXT a b'));
    expect([...f.keys()]).toEqual(['pipelining', 'size', 'auth', 'dsn', 'x-ext']);
    expect(f.get('size')).toBe('10240000');
    expect(f.get('x-ext')).toBe('a b');
    expect(f.has('mx.example')).toBe(false);
  });

  it('merges the old AUTH= form into auth', () => {
    const f = parseCapabilities(reply('mx', 'AUTH=LOGIN', 'AUTH PLAIN CRAM-MD5', 'auth=xoauth2'));
    expect(authMechanisms(f)).toEqual(['LOGIN', 'PLAIN', 'CRAM-MD5', 'XOAUTH2']);
  });

  it('skips smtp-sink\'s empty last line and junk', () => {
    const f = parseCapabilities(reply('sink', 'PIPELINING', '8BITMIME', '', ' '));
    expect([...f.keys()]).toEqual(['pipelining', '8bitmime']);
  });

  it('reads the SIZE limit (0 or none = no limit)', () => {
    expect(sizeLimit(parseCapabilities(reply('x', 'SIZE 1000')))).toBe(1000);
    expect(sizeLimit(parseCapabilities(reply('x', 'SIZE 0')))).toBeUndefined();
    expect(sizeLimit(parseCapabilities(reply('x', 'SIZE')))).toBeUndefined();
    expect(sizeLimit(parseCapabilities(reply('x')))).toBeUndefined();
  });
});

describe('envelope addresses', () => {
  it.each([
    ['alice@example.org', 'alice@example.org'],
    ['<alice@example.org>', 'alice@example.org'],
    ['Alice <alice@example.org>', 'alice@example.org'],
    ['"Smith, Alice" <alice@example.org>', 'alice@example.org'],
    ['  alice@example.org  ', 'alice@example.org'],
    ['<@relay.example:alice@example.org>', 'alice@example.org'],
    ['"john doe"@example.org', '"john doe"@example.org'],
    ['', ''],
    ['<>', ''],
  ])('%j → %j', (input, bare) => {
    expect(envelopeAddress(input, 'from')).toBe(bare);
  });

  it('refuses malformed addresses and injection, naming the field', () => {
    expect(() => envelopeAddress('a b@example.org', 'to')).toThrow(/^to: /);
    expect(() => envelopeAddress('<a@example.org', 'to')).toThrow(/unbalanced/);
    expect(() => envelopeAddress('a@example.org>\r\nRCPT TO:<b@x>', 'to')).toThrow(SmtpInvalidInputError);
  });

  it('formats paths and detects SMTPUTF8 needs', () => {
    expect(formatPath('')).toBe('<>');
    expect(formatPath('a@b')).toBe('<a@b>');
    expect(needsSmtpUtf8('a@b')).toBe(false);
    expect(needsSmtpUtf8('jörg@example.org')).toBe(true);
    expect(needsSmtpUtf8('a@bücher.example')).toBe(true);
  });
});

describe('xtext (RFC 3461)', () => {
  it('encodes + and = and everything outside 33-126 as +XX', () => {
    expect(encodeXtext('alice@example.org')).toBe('alice@example.org');
    expect(encodeXtext('a+b=c d')).toBe('a+2Bb+3Dc+20d');
    expect(encodeXtext('é')).toBe('+C3+A9');
    expect(encodeXtext('\x7f~!')).toBe('+7F~!');
  });

  it('round-trips', () => {
    for (const s of ['plain', 'with space', 'uni✓code', '+=+=', 'x\x01y']) expect(decodeXtext(encodeXtext(s))).toBe(s);
  });
});
