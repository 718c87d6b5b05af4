/**
 * Generated files: the published JSON Schema and the option tables of
 * docs/config.md and the plugin READMEs come from the option schemas. These
 * tests fail when a committed file is stale (regenerate: `npm run build -w
 * @heimdall/app` for the schema, `npm run docs` for the docs).
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { options, Type } from '@heimdall/core';
import { describe, expect, it } from 'vitest';
import { HELP } from './args.js';
import { appConfigSchema } from './config.js';
import { optionRows, optionTable, pluginDir, renderConfigDoc, renderReadme, replaceBetween } from './docs.js';
import { BUILTIN_PLUGINS } from './plugins/registry.js';
import { builtinPluginInfo, type PluginSchemaInfo, publishedSchema, renderSchema } from './schema.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const read = (path: string): string => readFileSync(`${REPO}${path}`, 'utf8');

type Json = Record<string, any>;

describe('published JSON Schema', () => {
  const geo = options({
    ttl: Type.Integer({ minimum: 0, maximum: 86_400, default: 60, description: 'TTL' }),
    database: Type.String({ minLength: 1 }),
    nested: options({ on: Type.Boolean({ default: true }) }),
  });
  const plugins: PluginSchemaInfo[] = [
    { name: 'geo', pkg: '@acme/heimdall-geo', schema: geo, description: 'Geo answers' },
    { name: 'old-one', pkg: '@acme/old' },
  ];
  const schema = publishedSchema(plugins) as Json;

  it("is the app's schema, plugin entries checked per plugin with if/then", () => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(Object.keys(schema.properties)).toEqual(Object.keys(appConfigSchema.properties));
    expect(schema.properties.plugins.items).toEqual({ $ref: '#/definitions/pluginEntry' });
    const entry = schema.definitions.pluginEntry;
    expect(entry.required).toEqual(['use']);
    expect(entry.properties.use.examples).toEqual(['geo', 'old-one']);
    expect(entry.allOf.map((branch: Json) => [branch.if, branch.then])).toEqual([
      [{ properties: { use: { const: 'geo' } }, required: ['use'] }, { properties: { options: { $ref: '#/definitions/geoOptions' } } }],
      [{ properties: { use: { const: 'old-one' } }, required: ['use'] }, { properties: { options: { $ref: '#/definitions/oldOneOptions' } } }],
    ]);
    expect(schema.definitions.geoOptions).toMatchObject({
      type: 'object',
      additionalProperties: false,
      description: 'Geo answers',
      properties: { ttl: { minimum: 0, maximum: 86_400, default: 60 } },
    });
    // a plugin without a schema: any object
    expect(schema.definitions.oldOneOptions).toMatchObject({ type: 'object' });
    expect(schema.definitions.oldOneOptions.properties).toBeUndefined();
  });

  it('lists as required only what has no default (what a person must write)', () => {
    expect(schema.required).toBeUndefined();
    expect(schema.properties.tcp.required).toBeUndefined();
    expect(schema.definitions.geoOptions.required).toEqual(['database', 'nested']); // nested has no default of its own
    expect(schema.definitions.geoOptions.properties.nested.required).toBeUndefined();
  });

  it('names every built-in plugin', async () => {
    const info = await builtinPluginInfo();
    expect(info.map((p) => p.name)).toEqual([
      'metrics',
      'query-log',
      'stats',
      'acl',
      'ratelimit',
      'rrl',
      'special-use',
      'blocking',
      'cache',
      'persistence',
      'redis',
      'dedup',
      'upstream',
      'rewrite',
    ]);
    expect(Object.keys(BUILTIN_PLUGINS)).toEqual(info.map((p) => p.name));
    const published = publishedSchema(info) as Json;
    expect(published.definitions.metricsOptions.properties.buckets.items).toEqual({ exclusiveMinimum: 0, type: 'number' });
    expect(published.definitions.queryLogOptions.properties.sampleRate).toMatchObject({ minimum: 0, maximum: 1, default: 1 });
  });

  it('schema/heimdall.schema.json is up to date (npm run build -w @heimdall/app)', async () => {
    expect(read('apps/heimdall/schema/heimdall.schema.json'), 'stale: run npm run build -w @heimdall/app').toBe(renderSchema(await builtinPluginInfo()));
  });
});

describe('generated option tables', () => {
  it('flattens nested objects, lists of objects, maps and unions into rows with type, default and bounds', () => {
    const schema = options({
      mode: Type.Union([Type.Literal('a'), Type.Literal('b')], { default: 'a', description: 'Mode | pipe' }),
      ratio: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 1 }),
      lists: Type.Array(options({ source: Type.String({ minLength: 1, maxLength: 64, description: 'Where' }) }), { maxItems: 8, default: [] }),
      groups: Type.Record(Type.String(), options({ block: Type.Array(Type.String({ minLength: 1 }), { default: [] }) })),
      prefetch: Type.Union([Type.Boolean(), options({ amount: Type.Integer({ minimum: 1, default: 1 }) })], { default: false }),
      name: Type.String({ pattern: '^[a-z]+$', errorMessage: 'must be lower-case letters' }),
    });
    expect(optionRows(schema)).toEqual([
      { field: 'mode', type: '"a" | "b"', default: '"a"', bounds: '', description: 'Mode | pipe' },
      { field: 'ratio', type: 'number', default: '1', bounds: '> 0, ≤ 1', description: '' },
      { field: 'lists', type: 'object[]', default: '[]', bounds: '≤ 8 items', description: '' },
      { field: 'lists[].source', type: 'string', default: 'required', bounds: '1..64 chars', description: 'Where' },
      { field: 'groups', type: '{ [name]: object }', default: 'required', bounds: '', description: '' },
      { field: 'groups.<name>.block', type: 'string[]', default: '[]', bounds: 'each non-empty', description: '' },
      { field: 'prefetch', type: 'boolean | object', default: 'false', bounds: '', description: '' },
      { field: 'prefetch.amount', type: 'integer', default: '1', bounds: '≥ 1', description: '' },
      { field: 'name', type: 'string', default: 'required', bounds: 'lower-case letters', description: '' },
    ]);
    expect(optionTable(schema).split('\n')[2]).toBe('| `mode` | "a" \\| "b" | `"a"` |  | Mode \\| pipe |');
    expect(optionTable(options({}))).toBe('_No options._');
  });

  it('replaces text between markers only', () => {
    const text = 'a\n<!-- options:start -->\nold\n<!-- options:end -->\nb\n';
    expect(replaceBetween(text, 'options', 'new')).toBe('a\n<!-- options:start -->\nnew\n<!-- options:end -->\nb\n');
    expect(() => replaceBetween('no markers', 'options', 'x')).toThrow('markers');
    expect(renderReadme('no markers', { name: 'x', pkg: 'x', schema: options({}) })).toBe('no markers');
  });

  it('docs/config.md is up to date (npm run docs)', async () => {
    const doc = read('docs/config.md');
    expect(doc, 'stale: run npm run docs').toBe(renderConfigDoc(doc, await builtinPluginInfo()));
  });

  it("docs/config.md's flags table has a row for every flag `heimdall --help` prints", () => {
    const doc = read('docs/config.md');
    const table = doc.slice(doc.indexOf('## Command-line flags'), doc.indexOf('## Top-level fields'));
    const flags = [...new Set([...HELP.matchAll(/(?:^|\s)(--[a-z][a-z-]+)/g)].map((m) => m[1]!))];
    expect(flags.length).toBeGreaterThan(15);
    const missing = flags.filter((f) => !new RegExp(`\`[^\`]*${f}\\b[^\`]*\``).test(table));
    expect(missing, 'add these flags to the table in docs/config.md').toEqual([]);
  });

  it('the option tables of plugin READMEs are up to date (npm run docs)', async () => {
    for (const plugin of await builtinPluginInfo()) {
      const dir = pluginDir(plugin.pkg);
      if (dir === undefined || !existsSync(`${REPO}${dir}/README.md`)) continue;
      const readme = read(`${dir}/README.md`);
      expect(readme, `${dir}/README.md is stale: run npm run docs`).toBe(renderReadme(readme, plugin));
    }
  });
});
