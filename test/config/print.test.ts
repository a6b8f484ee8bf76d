import { describe, expect, it } from 'vitest';
import { env, formatConfig, resolveConfig } from '../../core/config/index.js';

describe('formatConfig', () => {
  const loaded = resolveConfig(
    {
      plugins: [{ name: 'auth-plain' }],
      transport: { host: 'smtp.example.com', port: 587, tls: 'required', pool: true },
      auth: { user: 'app', pass: env('SMTP_PASS') },
      message: { headers: { 'X-Mailer': 'mailstage' } },
      environments: { production: { debug: 1 } },
    },
    { env: 'production', filepath: '/srv/app/mailstage.config.ts', processEnv: { SMTP_PASS: 'hunter2-hunter2' } },
  );

  it('renders readable text with a header, plugins by name and secrets masked', () => {
    expect(formatConfig(loaded)).toBe(
      [
        '# mailstage config: /srv/app/mailstage.config.ts',
        '# environment: production',
        'plugins:',
        '  - "auth-plain"',
        'transport:',
        '  host: "smtp.example.com"',
        '  port: 587',
        '  tls: "required"',
        '  pool:',
        '    maxConnections: 5',
        '    maxMessages: 100',
        'auth:',
        '  user: "app"',
        '  pass: "****"',
        'message:',
        '  headers:',
        '    X-Mailer: "mailstage"',
        'debug: 1',
      ].join('\n'),
    );
  });

  it('renders JSON that parses back to the masked config', () => {
    expect(JSON.parse(formatConfig(loaded, { json: true }))).toEqual({
      plugins: ['auth-plain'],
      transport: { host: 'smtp.example.com', port: 587, tls: 'required', pool: { maxConnections: 5, maxMessages: 100 } },
      auth: { user: 'app', pass: '****' },
      message: { headers: { 'X-Mailer': 'mailstage' } },
      debug: 1,
    });
  });

  it('renders an empty config and Buffers', () => {
    expect(formatConfig(resolveConfig({}, { processEnv: {} }))).toBe('# mailstage config\n# environment: (base)\n{}');
    const withCa = resolveConfig({ transport: { tlsOptions: { ca: Buffer.from('abc') } } }, { processEnv: {} });
    expect(formatConfig(withCa)).toContain('ca: "<Buffer 3 bytes>"');
  });
});
