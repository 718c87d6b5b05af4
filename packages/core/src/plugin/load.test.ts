import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ConfigError, PluginLoadError } from '../errors.js';
import { loadPlugin, loadPlugins } from './load.js';

let dir: string;

function pkg(name: string, packageJson: object, files: Record<string, string>): void {
  const root = path.join(dir, 'node_modules', name);
  mkdirSync(root, { recursive: true });
  writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name, type: 'module', ...packageJson }));
  for (const [f, body] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    writeFileSync(path.join(root, f), body);
  }
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'heimdall-load-'));
  pkg(
    '@acme/heimdall-geo',
    { exports: { '.': { types: './x.d.ts', import: './dist/index.js' } } },
    {
      'dist/index.js': `export default function geo(options) {
      if (typeof options.country !== 'string') throw new TypeError('geo.country: must be a string');
      return { name: '@acme/geo', middleware: () => (ctx, next) => next(), country: options.country };
    }`,
    },
  );
  pkg(
    'named-plugin',
    { main: 'lib/main.js' },
    {
      'lib/main.js': `export function plugin(options) { return { name: 'named', options }; }`,
    },
  );
  pkg('object-plugin', { exports: './p.js' }, { 'p.js': `export default { name: 'object' };` });
  pkg('not-a-plugin', { exports: './p.js' }, { 'p.js': `export const answer = 42;` });
  pkg('bad-factory', { exports: './p.js' }, { 'p.js': `export default () => ({ nom: 'x' });` });
  pkg('async-factory', { exports: './p.js' }, { 'p.js': `export default async () => ({ name: 'x' });` });
  pkg('broken-import', { exports: './p.js' }, { 'p.js': `throw new Error('top-level failure');` });
  pkg('missing-dep', { exports: './p.js' }, { 'p.js': `import 'no-such-dependency-xyz';\nexport default () => ({ name: 'x' });` });
  mkdirSync(path.join(dir, 'config', 'plugins'), { recursive: true });
  writeFileSync(path.join(dir, 'config', 'plugins', 'local.mjs'), `export default (o) => ({ name: 'local', ttl: o.ttl ?? 0 });`);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loadPlugin', () => {
  test('loads a scoped package through its exports (import condition) and passes options', async () => {
    const p = await loadPlugin({ use: '@acme/heimdall-geo', options: { country: 'SE' } }, { baseDir: dir });
    expect(p.name).toBe('@acme/geo');
    expect((p as unknown as { country: string }).country).toBe('SE');
    expect(typeof p.middleware).toBe('function');
  });

  test('resolves from a nested baseDir upwards, via main, and named `plugin` exports', async () => {
    const p = await loadPlugin({ use: 'named-plugin', options: { a: 1 } }, { baseDir: path.join(dir, 'config') });
    expect(p).toEqual({ name: 'named', options: { a: 1 } });
  });

  test('accepts a default-exported plugin object only without options', async () => {
    expect((await loadPlugin({ use: 'object-plugin' }, { baseDir: dir })).name).toBe('object');
    await expect(loadPlugin({ use: 'object-plugin', options: { x: 1 } }, { baseDir: dir, path: 'plugins[4]' })).rejects.toThrow(
      /plugins\[4\]\.options: plugin 'object-plugin' exports a plugin object/,
    );
  });

  test('loads a local file relative to the config directory', async () => {
    const p = await loadPlugin({ use: './plugins/local.mjs', options: { ttl: 5 } }, { baseDir: path.join(dir, 'config') });
    expect(p).toMatchObject({ name: 'local', ttl: 5 });
  });

  test('clear errors: missing, not a plugin, bad factory result, async factory, import failure, bad spec', async () => {
    const at = { baseDir: dir, path: 'plugins[2]' };
    await expect(loadPlugin({ use: '@acme/nope' }, at)).rejects.toMatchObject({
      code: 'PLUGIN_LOAD',
      message: expect.stringMatching(/plugins\[2\]\.use: cannot find plugin '@acme\/nope'.*is it installed/),
    });
    await expect(loadPlugin({ use: 'not-a-plugin' }, at)).rejects.toMatchObject({
      code: 'PLUGIN_INVALID',
      message: expect.stringMatching(/does not export a plugin factory/),
    });
    await expect(loadPlugin({ use: 'bad-factory' }, at)).rejects.toMatchObject({
      code: 'PLUGIN_INVALID',
      message: expect.stringMatching(/did not return a plugin/),
    });
    await expect(loadPlugin({ use: 'async-factory' }, at)).rejects.toMatchObject({
      code: 'PLUGIN_INVALID',
      message: expect.stringMatching(/returned a Promise/),
    });
    // Found, but one of its own imports is missing: that error, not "cannot find plugin".
    await expect(loadPlugin({ use: 'missing-dep' }, at)).rejects.toMatchObject({
      code: 'PLUGIN_LOAD',
      message: expect.stringMatching(/failed to import: .*no-such-dependency-xyz/),
    });
    await expect(loadPlugin({ use: 'broken-import' }, at)).rejects.toMatchObject({
      code: 'PLUGIN_LOAD',
      message: expect.stringMatching(/failed to import: top-level failure/),
    });
    await expect(loadPlugin({ use: '@acme/heimdall-geo', options: {} }, at)).rejects.toMatchObject({
      message: expect.stringMatching(/factory of '@acme\/heimdall-geo' threw: geo.country/),
    });
    await expect(loadPlugin({ use: '' }, at)).rejects.toThrow(/plugins\[2\]\.use: must be a package name/);
    await expect(loadPlugin(null as never, at)).rejects.toBeInstanceOf(ConfigError);
    await expect(loadPlugin({ use: './missing.js' }, at)).rejects.toBeInstanceOf(PluginLoadError);
  });

  test('a ConfigError from the factory keeps its field path, prefixed with the spec', async () => {
    const importer = async () => ({
      default: () => {
        throw new ConfigError('geo.database', 'must be a file path', 3);
      },
    });
    await expect(loadPlugin({ use: '@acme/geo', options: {} }, { importer, path: 'plugins[0]' })).rejects.toMatchObject({
      code: 'CONFIG',
      message: 'plugins[0] (@acme/geo): geo.database: must be a file path',
    });
  });

  test('loadPlugins keeps order and names indexes', async () => {
    const ps = await loadPlugins([{ use: 'object-plugin' }, { use: 'named-plugin' }], { baseDir: dir });
    expect(ps.map((p) => p.name)).toEqual(['object', 'named']);
    await expect(loadPlugins([{ use: 'object-plugin' }, { use: 'nope' }], { baseDir: dir })).rejects.toThrow(/plugins\[1\]\.use/);
    await expect(loadPlugins({} as never)).rejects.toThrow(/plugins: must be an array/);
  });
});
