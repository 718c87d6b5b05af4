import { readFileSync } from 'node:fs';
import { definePlugin, options, RecordType, type Resolver, Type } from '@heimdall/core';
import { decodeResponse, query } from '@heimdall/testing';
import { afterEach, describe, expect, it } from 'vitest';
import * as self from './index.js';
import { ratelimitOptionsSchema } from './options.js';
import { readmeExamples as examplesOf, runExample } from '@heimdall/testing';

const readmeExamples = (): string[] => examplesOf(new URL('../README.md', import.meta.url));

// The README's examples run here as written; a stand-in replaces the upstream plugin.
const upstreamStandIn = definePlugin({
  name: 'upstream',
  options: options({ servers: Type.Array(Type.String(), { minItems: 1 }) }),
  setup: () => ({ middleware: () => (ctx) => ctx.answer([{ name: ctx.query.qname, type: RecordType.A, ttl: 60, data: '192.168.1.20' }]) }),
});
const modules = {
  '@heimdall/core': await import('@heimdall/core'),
  '@heimdall/plugin-ratelimit': self,
  '@heimdall/plugin-upstream': { default: upstreamStandIn },
};
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

let started: Resolver | undefined;
afterEach(async () => {
  await started?.stop();
  started = undefined;
});

describe('README', () => {
  it('the example limits a /24 past its burst of 40 with TC=1 and never the allowlisted network', async () => {
    const { resolver } = await runExample(readmeExamples()[0]!, modules);
    started = resolver as Resolver;
    const count = async (address: string, n: number) => {
      let tc = 0;
      for (let i = 0; i < n; i++) if (decodeResponse(await started!.handle(query(`n${i}.example`), { address, transport: 'udp' })).tc) tc++;
      return tc;
    };
    expect(await count('198.51.100.7', 45)).toBeGreaterThanOrEqual(4); // 40 at once (a query or so of refill while the test runs)
    expect(await count('192.168.1.5', 100)).toBe(0);
  });

  it('the config example is valid', () => {
    const config = JSON.parse(/```json\n([\s\S]*?)```/.exec(readme)![1]!) as { plugins: { use: string; options: unknown }[] };
    expect(self.ratelimit(config.plugins[0]!.options as never).options).toMatchObject({ rate: 20, burst: 40, allow: ['192.168.0.0/16'] });
  });

  it('the options table lists every option with its default', () => {
    const table = readme.slice(readme.indexOf('<!-- options:start -->'), readme.indexOf('<!-- options:end -->'));
    for (const [name, schema] of Object.entries(ratelimitOptionsSchema.properties)) {
      expect(table).toContain(`| \`${name}\` |`);
      if ('default' in schema) expect(table).toContain(`\`${JSON.stringify(schema.default)}\``);
    }
  });
});
