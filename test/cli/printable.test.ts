import { describe, expect, it } from 'vitest';
import { printable } from '../../core/printable.js';

describe('printable: what reaches a terminal', () => {
  it('leaves clean text (UTF-8 included) as it is', () => {
    expect(printable('250 2.0.0 Ok: queued as 8FE — café ✓')).toBe('250 2.0.0 Ok: queued as 8FE — café ✓');
  });
  it('escapes ESC, CSI, OSC and BEL so no sequence reaches the terminal', () => {
    const hostile = '220 mx\x1b[2J\x1b]0;owned\x07\x1b]52;c;cm0gLXJmIH4=\x07 ready';
    const out = printable(hostile);
    expect(out).toBe('220 mx\\x1B[2J\\x1B]0;owned\\x07\\x1B]52;c;cm0gLXJmIH4=\\x07 ready');
    expect(out).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
  });
  it('escapes CR, LF, TAB, NUL and DEL unless asked to keep line breaks or tabs', () => {
    expect(printable('a\rb\nc\td\0e\x7f')).toBe('a\\rb\\nc\\td\\x00e\\x7F');
    expect(printable('a\nb\tc\r', { newlines: true, tabs: true })).toBe('a\nb\tc\\r');
  });
  it('escapes C1 controls (8-bit CSI) and bidi overrides', () => {
    expect(printable('x\u009b2Jy\u202egnp.exe\u2066')).toBe('x\\x9B2Jy\\u202Egnp.exe\\u2066');
  });
  it('takes any value', () => {
    expect(printable(42)).toBe('42');
    expect(printable(new Error('e\x1b'))).toBe('Error: e\\x1B');
  });
});
