/**
 * `heimdall --print-schema [--config FILE]`: the published schema, plus the
 * options of every third-party plugin the config names, loaded as the app
 * loads them (a fixture package installed next to the config).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCli } from './args.js';
import { builtinPluginInfo, configPluginInfo, renderSchema } from './schema.js';

const APP = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(os.tmpdir(), 'heimdall-print-schema-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The config directory's files: path (relative to it) → text. */
const files: Record<string, string> = {
  // @acme/heimdall-geo, installed next to the config with @heimdall/core as its peer (linked below).
  'node_modules/@acme/heimdall-geo/package.json': JSON.stringify({
    name: '@acme/heimdall-geo',
    type: 'module',
    exports: './index.js',
    peerDependencies: { '@heimdall/core': '*' },
  }),
  'node_modules/@acme/heimdall-geo/index.js': `import { definePlugin, options, Type } from '@heimdall/core';
export default definePlugin({
  name: 'geo',
  description: 'Answers from a GeoIP database',
  options: options({
    database: Type.String({ minLength: 1, description: 'Path of the GeoIP database.' }),
    ttl: Type.Integer({ minimum: 0, maximum: 86400, default: 60 }),
  }),
  setup: () => ({ middleware: () => (ctx, next) => next() }),
});
`,
  // The same plugin's shape without imports, for the in-process test (vitest cannot hand a plain
  // Node import the workspace's TypeScript sources): a factory with a JSON Schema and a description.
  'plain-geo.mjs': `const schema = {
  type: 'object',
  properties: {
    database: { type: 'string', minLength: 1, description: 'Path of the GeoIP database.' },
    ttl: { type: 'integer', minimum: 0, maximum: 86400, default: 60 },
  },
  required: ['database', 'ttl'],
  additionalProperties: false,
};
const geo = (options = {}) => {
  if (typeof options.database !== 'string') throw new Error('database is required');
  return { name: 'geo', middleware: () => (ctx, next) => next() };
};
export default Object.assign(geo, { pluginName: 'geo', schema, description: 'Answers from a GeoIP database' });
`,
  // Options the plugin refuses (database missing): the schema is printed all the same.
  'heimdall.json': JSON.stringify({ plugins: [{ use: 'cache' }, { use: '@acme/heimdall-geo', options: {} }] }),
  'missing.json': JSON.stringify({ plugins: [{ use: '@acme/not-installed' }] }),
};
for (const [path, text] of Object.entries(files)) {
  mkdirSync(dirname(join(dir, path)), { recursive: true });
  writeFileSync(join(dir, path), text);
}
mkdirSync(join(dir, 'node_modules/@heimdall'), { recursive: true });
symlinkSync(join(APP, '../../packages/core'), join(dir, 'node_modules/@heimdall/core'), 'dir');
const config = join(dir, 'heimdall.json');
const missing = join(dir, 'missing.json');

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    // The CLI from its TypeScript sources (workspace packages through their "source" export condition).
    execFile(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', join(APP, 'src/cli.ts'), ...args],
      // Every built-in plugin loads: tsx needs the base config's decorator settings for all of them.
      { cwd: APP, timeout: 60_000, maxBuffer: 16 << 20, env: { ...process.env, TSX_TSCONFIG_PATH: resolve(APP, '../../tsconfig.base.json') } },
      (err, stdout, stderr) => res({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

type Json = Record<string, any>;

describe('--print-schema', () => {
  it('parses as a flag of its own', () => {
    expect(parseCli(['--print-schema', '--config', 'x.json'])).toMatchObject({ printSchema: true, check: false, config: 'x.json' });
    expect(parseCli([]).printSchema).toBe(false);
  });

  it("adds a third-party plugin's options to the schema, under its `use`", async () => {
    const schema = JSON.parse(renderSchema(await configPluginInfo([{ use: 'cache' }, { use: './plain-geo.mjs', options: {} }], dir))) as Json;
    const geo = schema.definitions.PlainGeoMjsOptions;
    expect(geo.description).toBe('Answers from a GeoIP database');
    expect(geo.properties.database).toMatchObject({ type: 'string', minLength: 1, description: 'Path of the GeoIP database.' });
    expect(geo.required).toEqual(['database']); // ttl has a default: optional for people writing a file
    // Under its `use` as written in the file (a relative path here).
    const branch = schema.definitions.pluginEntry.allOf.find((b: Json) => b.if.properties.use.const === './plain-geo.mjs');
    expect(branch.then.properties.options).toEqual({ $ref: '#/definitions/PlainGeoMjsOptions' });
    expect(schema.definitions.pluginEntry.properties.use.examples).toContain('./plain-geo.mjs');
    // The built-in plugins are all still there.
    expect(schema.definitions.cacheOptions).toBeDefined();
  });

  it('prints it from the CLI; without a config it prints the published schema; a plugin that is not installed is an error', async () => {
    const [withConfig, plain, bad] = await Promise.all([
      cli('--print-schema', '--config', config),
      cli('--print-schema'),
      cli('--print-schema', '--config', missing),
    ]);
    expect(withConfig.stderr).toBe('');
    expect(withConfig.code).toBe(0);
    // The package's definePlugin schema, loaded on the app's own @heimdall/core.
    const geo = JSON.parse(withConfig.stdout).definitions.AcmeHeimdallGeoOptions;
    expect(geo).toMatchObject({ description: 'Answers from a GeoIP database', required: ['database'] });
    expect(geo.properties.database).toMatchObject({ type: 'string', minLength: 1 });
    expect(plain.code).toBe(0);
    // What scripts/gen-schema.mjs publishes (from the same sources; generated.test.ts compares the committed file).
    expect(plain.stdout).toBe(renderSchema(await builtinPluginInfo()));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("plugins[0].use: cannot find plugin '@acme/not-installed'");
  }, 90_000);
});
