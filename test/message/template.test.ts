import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SmtpError, SmtpInvalidInputError } from '../../core/errors.js';
import { compileTemplates, mimeBuilder, TemplateRenderError } from '../../core/message/index.js';

const dir = mkdtempSync(join(tmpdir(), 'mailstage-tpl-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('compileTemplates', () => {
  it('escapes html but not text or subject', () => {
    const t = compileTemplates({ subject: 'Hi {{name}} & co', text: 'Dear {{name}}, <{{email}}>', html: '<p>Dear {{name}}</p>{{{raw}}}' });
    const data = { name: 'Tom & <Jerry>', email: 'tom@example.com', raw: '<b>ok</b>' };
    expect(t.render(data)).toEqual({
      subject: 'Hi Tom & <Jerry> & co',
      text: 'Dear Tom & <Jerry>, <tom@example.com>',
      html: '<p>Dear Tom &amp; &lt;Jerry&gt;</p><b>ok</b>',
    });
  });

  it('is strict about missing variables, naming the variable, the part and the row', () => {
    const t = compileTemplates({ subject: 'Hello', text: 'Hi {{firstName}}' });
    let error: unknown;
    try { t.render({ lastName: 'X' }, { row: 17 }); } catch (e) { error = e; }
    expect(error).toBeInstanceOf(TemplateRenderError);
    expect(error).toBeInstanceOf(SmtpError);
    expect((error as Error).message).toBe('template text: missing variable "firstName" (row 17)');
    expect((error as TemplateRenderError).variable).toBe('firstName');
    expect((error as TemplateRenderError).row).toBe(17);
    expect(() => t.render({})).toThrow(/^template text: missing variable "firstName"$/);
    expect(() => compileTemplates({ html: '{{user.name}}' }).render({ user: {} }, { row: 2 })).toThrow('template html: missing variable "name" (row 2)');
  });

  it('treats present-but-empty values as present, and allows #if / default on missing ones', () => {
    const t = compileTemplates({ text: '{{#if nick}}{{nick}}{{else}}{{default alias "friend"}}{{/if}}|{{empty}}' });
    expect(t.render({ empty: '' }).text).toBe('friend|');
    expect(t.render({ nick: 'Bo', empty: 0 }).text).toBe('Bo|0');
  });

  it('has upper, lower, default and date helpers, and takes custom ones', () => {
    const t = compileTemplates(
      { text: '{{upper a}} {{lower b}} {{default c "none"}} {{date d}} {{shout a}}' },
      { helpers: { shout: (v: unknown) => `${String(v)}!` } },
    );
    expect(t.render({ a: 'x', b: 'Y', c: null, d: new Date('2026-11-03T12:00:00Z') }).text).toBe('X y none 2026-11-03 x!');
  });

  it('reads { path } sources once, at compile time', () => {
    const path = join(dir, 'body.hbs');
    writeFileSync(path, 'From file: {{v}}');
    const t = compileTemplates({ text: { path } });
    writeFileSync(path, 'changed {{other}}');
    expect(t.render({ v: 1 }).text).toBe('From file: 1');
    expect(() => compileTemplates({ html: { path: join(dir, 'nope.hbs') } })).toThrow(/template html: cannot read/);
  });

  it('reports syntax errors at compile time', () => {
    let error: unknown;
    try { compileTemplates({ subject: 'ok', html: '{{#if x}}unclosed' }); } catch (e) { error = e; }
    expect(error).toBeInstanceOf(SmtpInvalidInputError);
    expect((error as SmtpInvalidInputError).field).toBe('template html');
  });

  it('a rendered subject with a newline is still refused by the builder', async () => {
    const rendered = compileTemplates({ subject: 'Hi {{name}}', text: 'x' }).render({ name: 'a\r\nBcc: victim@example.com' });
    await expect(mimeBuilder().build({ from: 'a@example.com', to: 'b@example.com', ...rendered }, { hostname: 'h' })).rejects.toThrow(/^subject: CR, LF/);
  });
});
