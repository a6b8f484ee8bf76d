/**
 * The list-unsubscribe plugin: the two header fields (RFC 2369, RFC 8058) as they come out of the
 * transform, the recipient a token is for, and the token itself — round trip, tampering, another
 * secret, another recipient.
 */
import { createHmac } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { env } from '../../index.js';
import listUnsubscribe, { ListUnsubscribeError, unsubscribeToken, verifyUnsubscribeToken } from '../../plugins/list-unsubscribe/index.js';
import { readAll } from './dkim-helpers.js';

const SECRET = 'a-secret-of-32-characters-long!!';
const body = () => Readable.from([Buffer.from('Hi\r\n')], { objectMode: false });
const ctx = (to: string[], extra: Record<string, unknown> = {}) => ({ envelope: { from: 'news@example.com', to }, ...extra });

async function run(options: Parameters<typeof listUnsubscribe>[0], to: string[] = ['bob@example.org'], extra: Record<string, unknown> = {}, headers = ['From: news@example.com']) {
  const plugin = listUnsubscribe(options);
  const out = await plugin.transforms![0]!.built!({ headers: [...headers], body: body() }, ctx(to, extra));
  return { headers: out.headers, body: (await readAll(out.body)).toString() };
}

describe('list-unsubscribe headers', () => {
  it('mailto and one-click URL with the recipient\'s token, and List-Unsubscribe-Post; the body untouched', async () => {
    const out = await run({ url: 'https://example.com/unsubscribe/{token}', mailto: 'unsubscribe@example.com', secret: SECRET });
    const token = unsubscribeToken('bob@example.org', SECRET);
    expect(out.headers).toEqual([
      'From: news@example.com',
      `List-Unsubscribe: <mailto:unsubscribe@example.com>,\r\n <https://example.com/unsubscribe/${token}>`,
      'List-Unsubscribe-Post: List-Unsubscribe=One-Click',
    ]);
    expect(out.body).toBe('Hi\r\n');
    expect(verifyUnsubscribeToken(token, SECRET)).toEqual({ recipient: 'bob@example.org', list: undefined });
  });

  it('mailto alone: no List-Unsubscribe-Post (there is nothing to POST to); {token} may go in the mailto', async () => {
    const out = await run({ mailto: 'mailto:leave@example.com?subject=leave%20{token}', secret: SECRET, list: 'weekly' });
    const token = unsubscribeToken('bob@example.org', SECRET, 'weekly');
    expect(out.headers.slice(1)).toEqual([`List-Unsubscribe: <mailto:leave@example.com?subject=leave%20${token}>`]);
  });

  it('the batch row\'s recipient wins over the envelope; the list may come from the row', async () => {
    const out = await run(
      { url: 'https://example.com/u/{token}', secret: SECRET, list: (c) => String(c.row?.['list']) },
      ['bob@example.org', 'boss@example.org'],
      { recipient: 'bob@example.org', row: { list: 'news-de' } },
    );
    const token = /\/u\/([^>]+)>/.exec(out.headers[1]!)![1]!;
    expect(verifyUnsubscribeToken(token, SECRET)).toEqual({ recipient: 'bob@example.org', list: 'news-de' });
  });

  it('several recipients and no row: refused, since one token cannot speak for several people', async () => {
    await expect(run({ url: 'https://example.com/u/{token}', secret: SECRET }, ['a@example.org', 'b@example.org']))
      .rejects.toThrow(/recipient: the message has 2 recipients and no batch row recipient/);
    await expect(run({ url: 'https://example.com/u/{token}', secret: SECRET }, [])).rejects.toThrow(/no recipient/);
  });

  it('a message that already has List-Unsubscribe is refused rather than given two', async () => {
    const b = body();
    const plugin = listUnsubscribe({ url: 'https://example.com/u/{token}', secret: SECRET });
    const error = (() => {
      try {
        plugin.transforms![0]!.built!({ headers: ['From: a@example.com', 'list-unsubscribe: <mailto:x@example.com>'], body: b }, ctx(['b@example.org']));
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ListUnsubscribeError);
    expect((error as Error).message).toMatch(/^list-unsubscribe: the message already has one/);
    expect(b.destroyed).toBe(true);
  });

  it('reads an env() secret when first needed', async () => {
    const options = { url: 'https://example.com/u/{token}', secret: env('UNSUB_SECRET'), environ: { UNSUB_SECRET: SECRET } };
    const out = await run(options);
    expect(verifyUnsubscribeToken(/\/u\/([^>]+)>/.exec(out.headers[1]!)![1]!, SECRET)?.recipient).toBe('bob@example.org');
    await expect(run({ ...options, environ: {} })).rejects.toThrow(/listUnsubscribe\.secret: environment variable UNSUB_SECRET is not set/);
    // Without the option, the environment the config loader hands over through configure().
    const plugin = listUnsubscribe({ url: 'https://example.com/u/{token}', secret: env('UNSUB_SECRET') });
    plugin.configure({ environ: { UNSUB_SECRET: SECRET } });
    const configured = await plugin.transforms[0]!.built!({ headers: ['From: a@example.com'], body: body() }, ctx(['bob@example.org']));
    expect(verifyUnsubscribeToken(/\/u\/([^>]+)>/.exec(configured.headers[1]!)![1]!, SECRET)?.recipient).toBe('bob@example.org');
  });

  it.each([
    [{ secret: SECRET }, /needs url \(one-click, RFC 8058\) or mailto/],
    [{ url: 'https://example.com/unsubscribe', secret: SECRET }, /url: must contain \{token\}/],
    [{ url: 'http://example.com/{token}', secret: SECRET }, /url: must be https \(RFC 8058 §3\), got http/],
    [{ url: 'https://example.com/{token}>, <https://evil', secret: SECRET }, /url: not a URL that can stand in a header/],
    [{ url: 'https://example.com/{token}\r\nBcc: x', secret: SECRET }, /url: not a URL that can stand in a header/],
    [{ mailto: 'not an address', secret: SECRET }, /mailto: not an address/],
    [{ mailto: 'nobody', secret: SECRET }, /mailto: expected an address like/],
    [{ mailto: 'u@example.com', secret: 'short' }, /secret: must be at least 16 bytes \(got 5\)/],
    [{ mailto: 'u@example.com' }, /secret: required/],
    [{ mailto: 'u@example.com', secret: SECRET, list: 'a\nb' }, /list: expected a list id/],
    [{ mailto: 'u@example.com', secret: SECRET, urls: [] }, /listUnsubscribe\.urls: unknown option/],
  ])('bad options are refused when the plugin is made: %j', (options, message) => {
    expect(() => listUnsubscribe(options as never)).toThrow(message);
  });
});

describe('unsubscribe tokens', () => {
  it('round trip, with and without a list; URL-safe', () => {
    for (const list of [undefined, 'weekly', 'liste-\u00e9t\u00e9']) {
      const token = unsubscribeToken('J\u00f6rg+tag@example.org', SECRET, list);
      expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
      expect(verifyUnsubscribeToken(token, SECRET)).toEqual({ recipient: 'J\u00f6rg+tag@example.org', list });
    }
  });

  it('a tampered token, a token for another recipient spliced in, or another secret: null', () => {
    const token = unsubscribeToken('bob@example.org', SECRET, 'weekly');
    const [payload, mac] = token.split('.') as [string, string];
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    expect(verifyUnsubscribeToken(`${flip(payload, 3)}.${mac}`, SECRET)).toBeNull();
    expect(verifyUnsubscribeToken(`${payload}.${flip(mac, 10)}`, SECRET)).toBeNull();
    const other = unsubscribeToken('eve@example.org', SECRET, 'weekly');
    expect(verifyUnsubscribeToken(`${other.split('.')[0]}.${mac}`, SECRET)).toBeNull();
    expect(verifyUnsubscribeToken(other, SECRET)?.recipient).toBe('eve@example.org');
    expect(verifyUnsubscribeToken(token, 'another-secret-of-32-characters!')).toBeNull();
    // The payload alone says who it is for, but without the right MAC it counts for nothing.
    const forged = `${Buffer.from(JSON.stringify(['eve@example.org'])).toString('base64url')}.${mac}`;
    expect(verifyUnsubscribeToken(forged, SECRET)).toBeNull();
  });

  it('garbage from the web is null, never an exception', () => {
    for (const bad of [undefined, 42, '', '.', 'a.b.c', 'abc', 'a b.c', `${'A'.repeat(5000)}.x`, `${Buffer.from('{"r":1}').toString('base64url')}.x`]) {
      expect(verifyUnsubscribeToken(bad, SECRET)).toBeNull();
    }
    // A valid MAC over a payload that is not the expected JSON shape is still refused.
    const signed = (json: string) => {
      const payload = Buffer.from(json).toString('base64url');
      return `${payload}.${createHmac('sha256', SECRET).update('mailstage-unsubscribe-v1\0').update(payload).digest('base64url')}`;
    };
    expect(verifyUnsubscribeToken(signed('["x"]'), SECRET)).toEqual({ recipient: 'x', list: undefined }); // the format, spelled out
    for (const json of ['{"recipient":"x"}', '[]', '["a","b","c"]', '[1]', 'not json']) {
      expect(verifyUnsubscribeToken(signed(json), SECRET)).toBeNull();
    }
  });

  it('a secret too short to be a key is refused on both sides', () => {
    expect(() => unsubscribeToken('a@example.org', 'short')).toThrow(/at least 16 bytes/);
    expect(() => verifyUnsubscribeToken('x.y', 'short')).toThrow(/at least 16 bytes/);
  });
});
