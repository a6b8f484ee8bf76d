import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, findConfig, loadConfig, SEARCH_PLACES } from '../../core/config/index.js';
import { defineImport, fixture, linkNodeModules, removeFixtures, thrown } from './helpers.js';

afterAll(removeFixtures);

const noEnv = {}; // keep the runner's NODE_ENV/MAILSTAGE_ENV out of these tests

describe('discovery', () => {
  it('loads mailstage.config.ts that imports a local module and uses defineConfig/env', async () => {
    const dir = await fixture({});
    await fs.writeFile(path.join(dir, 'settings.ts'), `export const port: number = 2526;\nexport const host = 'smtp.local';\n`);
    await fs.writeFile(
      path.join(dir, 'mailstage.config.ts'),
      `import { defineConfig, env } from '${defineImport(dir)}';
import { host, port } from './settings';
export default defineConfig({ transport: { host, port, tls: 'none' }, auth: { user: 'app', pass: env('FIXTURE_PASS') } });
`,
    );
    const loaded = await loadConfig({ cwd: dir, processEnv: { FIXTURE_PASS: 'from-env' } });
    expect(loaded.filepath).toBe(path.join(dir, 'mailstage.config.ts'));
    expect(loaded.config.transport).toEqual({ host: 'smtp.local', port: 2526, tls: 'none' });
    expect(loaded.config.auth?.pass).toBe('from-env');
  });

  it('lets a TypeScript config import an installed package', async () => {
    const dir = await fixture({
      'mailstage.config.ts': `import { z } from 'zod';\nexport default { transport: { port: z.number().parse(2600) } };\n`,
    });
    await linkNodeModules(dir);
    expect((await loadConfig({ cwd: dir, processEnv: noEnv })).config.transport?.port).toBe(2600);
  });

  const kinds: readonly (readonly [string, string])[] = [
    ['mailstage.config.mts', `export default { transport: { port: 1001 } };\n`],
    ['mailstage.config.cts', `module.exports = { transport: { port: 1001 } };\n`],
    ['mailstage.config.js', `export default { transport: { port: 1001 } };\n`],
    ['mailstage.config.mjs', `export default { transport: { port: 1001 } };\n`],
    ['mailstage.config.cjs', `module.exports = { transport: { port: 1001 } };\n`],
    ['mailstage.config.json', `{ "transport": { "port": 1001 } }\n`],
    ['mailstage.config.yaml', `transport:\n  port: 1001\n`],
    ['mailstage.config.yml', `transport:\n  port: 1001\n`],
    ['.mailstagerc', `transport:\n  port: 1001\n`],
    ['.mailstagerc.json', `{ "transport": { "port": 1001 } }\n`],
    ['.mailstagerc.yaml', `transport:\n  port: 1001\n`],
    ['.mailstagerc.yml', `transport:\n  port: 1001\n`],
    ['.mailstagerc.js', `export default { transport: { port: 1001 } };\n`],
    ['.mailstagerc.ts', `const port: number = 1001;\nexport default { transport: { port } };\n`],
    ['.mailstagerc.mjs', `export default { transport: { port: 1001 } };\n`],
  ];
  it.each(kinds)('finds %s', async (name, content) => {
    const dir = await fixture({ [name]: content });
    const loaded = await loadConfig({ cwd: dir, processEnv: noEnv });
    expect(loaded.filepath).toBe(path.join(dir, name));
    expect(loaded.config.transport?.port).toBe(1001);
  });

  it('finds package.json#mailstage', async () => {
    const dir = await fixture({ 'package.json': JSON.stringify({ name: 'x', mailstage: { transport: { port: 1002 } } }) });
    const loaded = await loadConfig({ cwd: dir, processEnv: noEnv });
    expect(loaded.filepath).toBe(path.join(dir, 'package.json'));
    expect(loaded.config.transport?.port).toBe(1002);
  });

  it('prefers mailstage.config.* over .mailstagerc and package.json', async () => {
    const dir = await fixture({
      'package.json': JSON.stringify({ name: 'x', mailstage: { transport: { port: 3 } } }),
      '.mailstagerc.json': '{ "transport": { "port": 2 } }',
      'mailstage.config.mjs': 'export default { transport: { port: 1 } };',
    });
    expect((await loadConfig({ cwd: dir, processEnv: noEnv })).config.transport?.port).toBe(1);
  });

  it('walks up from a subfolder to the project root', async () => {
    const dir = await fixture({ 'mailstage.config.json': '{ "debug": 1 }', 'src/deep/.keep': '' });
    const loaded = await loadConfig({ cwd: path.join(dir, 'src/deep'), processEnv: noEnv });
    expect(loaded.filepath).toBe(path.join(dir, 'mailstage.config.json'));
    expect(loaded.config.debug).toBe(1);
  });

  it('loads an explicit file relative to cwd, whatever its name', async () => {
    const dir = await fixture({ 'conf/other.config.ts': 'export default { debug: 2 };', 'mailstage.config.json': '{ "debug": 1 }' });
    const loaded = await loadConfig({ cwd: dir, file: 'conf/other.config.ts', processEnv: noEnv });
    expect(loaded.config.debug).toBe(2);
    expect(loaded.filepath).toBe(path.join(dir, 'conf/other.config.ts'));
  });

  it('re-reads a changed config (no module cache)', async () => {
    const dir = await fixture({ 'mailstage.config.ts': 'export default { debug: 1 };' });
    expect((await loadConfig({ cwd: dir, processEnv: noEnv })).config.debug).toBe(1);
    await fs.writeFile(path.join(dir, 'mailstage.config.ts'), 'export default { debug: 2 };');
    expect((await loadConfig({ cwd: dir, processEnv: noEnv })).config.debug).toBe(2);
  });

  it('treats an empty config file as an empty config', async () => {
    const dir = await fixture({ 'mailstage.config.yaml': '' });
    const loaded = await loadConfig({ cwd: dir, processEnv: noEnv });
    expect(loaded.config).toEqual({});
    expect(loaded.filepath).toBe(path.join(dir, 'mailstage.config.yaml'));
  });

  it('says where it looked when there is no config; findConfig returns undefined', async () => {
    const dir = await fixture({ 'src/.keep': '' });
    const cwd = path.join(dir, 'src');
    const error = await thrown(() => loadConfig({ cwd, processEnv: noEnv }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain('No mailstage config found');
    expect(error.message).toContain(cwd);
    expect(error.message).toContain(dir);
    for (const place of SEARCH_PLACES) expect(error.message).toContain(place);
    expect(error.message).toContain('package.json ("mailstage" key)');
    expect(await findConfig({ cwd, processEnv: noEnv })).toBeUndefined();
  });

  it('ignores a package.json without a mailstage key', async () => {
    const dir = await fixture({ 'package.json': '{ "name": "x" }' });
    expect(await findConfig({ cwd: dir, processEnv: noEnv })).toBeUndefined();
  });

  it('reports an explicit file that does not exist, even from findConfig', async () => {
    const dir = await fixture({});
    const error = await thrown(() => findConfig({ cwd: dir, file: 'nope.config.ts', processEnv: noEnv }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toBe(`Config file not found: ${path.join(dir, 'nope.config.ts')}`);
  });

  it('turns a config that fails to load into a ConfigError naming the file', async () => {
    const dir = await fixture({ 'mailstage.config.ts': 'export default { debug: 1 ;\n' });
    const error = await thrown(() => loadConfig({ cwd: dir, processEnv: noEnv }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toMatch(/^Cannot load config .*mailstage\.config\.ts(:\d+:\d+)?: /);
    expect(error.message).not.toMatch(/\n\s+at /);
  });

  it('turns a config whose import is missing into a ConfigError', async () => {
    const dir = await fixture({ 'mailstage.config.ts': "import { x } from './missing.js';\nexport default { debug: x };\n" });
    const error = await thrown(() => loadConfig({ cwd: dir, processEnv: noEnv }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain('missing');
  });

  it('validates a discovered config (bad JSON values are reported with the file)', async () => {
    const dir = await fixture({ '.mailstagerc.json': '{ "transport": { "port": 0 } }' });
    const error = await thrown(() => loadConfig({ cwd: dir, processEnv: noEnv }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toBe(
      `Invalid config in ${path.join(dir, '.mailstagerc.json')}:\n  transport.port: expected an integer between 1 and 65535, got 0`,
    );
  });
});
