import { readFileSync } from 'node:fs';
import { definePlugin, options, RecordType, type Resolver, Type } from '@heimdall/core';
import { decodeResponse, query } from '@heimdall/testing';
import { afterEach, describe, expect, it } from 'vitest';
import * as self from './index.js';
import { aclOptionsSchema } from './options.js';
import { readmeExamples as examplesOf, runExample } from '@heimdall/testing';

const readmeExamples = (): string[] => examplesOf(new URL('../README.md', import.meta.url));

// The README's examples run here as written; a stand-in replaces the upstream plugin.
const upstreamStandIn = definePlugin({
  name: 'upstream',
  options: options({ servers: Type.Array(Type.String(), { minItems: 1 }) }),
  setup: () => ({ middleware: () => (ctx) => ctx.answer([{ name: ctx.query.qname, type: RecordType.A, ttl: 60, data: '192.168.1.20' }]) }),
});
const modules = { '@heimdall/core': await import('@heimdall/core'), '@heimdall/plugin-acl': self, '@heimdall/plugin-upstream': { default: upstreamStandIn } };
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

let started: Resolver | undefined;
afterEach(async () => {
  await started?.stop();
  started = undefined;
});

describe('README', () => {
  it('the example decides as its comment says', async () => {
    const { resolver } = await runExample(readmeExamples()[0]!, modules);
    started = resolver as Resolver;
    const ask = async (address: string, name: string, transport: 'udp' | 'https' = 'udp') => {
      const res = await started!.handle(query(name), { address, transport });
      return res === null ? 'drop' : decodeResponse(res).rcode === 5 ? 'refuse' : 'allow';
    };
    expect(await ask('203.0.113.9', 'db.internal.example')).toBe('allow');
    expect(await ask('192.168.1.5', 'db.internal.example')).toBe('refuse');
    expect(await ask('192.168.1.5', 'db.internal.example', 'https')).toBe('allow');
    expect(await ask('192.168.1.5', 'www.example.com')).toBe('allow');
    expect(await ask('192.168.66.5', 'www.example.com')).toBe('drop');
    expect(await ask('10.0.0.5', 'www.example.com')).toBe('allow');
    expect(await ask('198.51.100.5', 'www.example.com')).toBe('refuse');
  });

  it('the config example is valid', () => {
    const config = JSON.parse(/```json\n([\s\S]*?)```/.exec(readme)![1]!) as { plugins: { use: string; options: unknown }[] };
    expect(self.acl(config.plugins[0]!.options as never).options).toEqual({
      rules: [{ action: 'refuse', from: ['*'], names: ['internal.example'] }],
      preset: 'none',
    });
  });

  it('the options table lists every option with its default', () => {
    const table = readme.slice(readme.indexOf('<!-- options:start -->'), readme.indexOf('<!-- options:end -->'));
    for (const [name, schema] of Object.entries(aclOptionsSchema.properties)) {
      expect(table).toContain(`| \`${name}\` |`);
      if ('default' in schema) expect(table).toContain(`\`${JSON.stringify(schema.default)}\``);
    }
  });
});
