import { readFileSync } from 'node:fs';
import { definePlugin, options, RecordType, type Resolver, Type } from '@heimdall/core';
import { decodeResponse, query } from '@heimdall/testing';
import { afterEach, describe, expect, it } from 'vitest';
import * as self from './index.js';
import { rrlOptionsSchema } from './options.js';
import { readmeExamples as examplesOf, runExample } from '@heimdall/testing';

const readmeExamples = (): string[] => examplesOf(new URL('../README.md', import.meta.url));

// The README's examples run here as written; a stand-in replaces the upstream plugin.
const upstreamStandIn = definePlugin({
  name: 'upstream',
  options: options({ servers: Type.Array(Type.String(), { minItems: 1 }) }),
  setup: () => ({ middleware: () => (ctx) => ctx.answer([{ name: ctx.query.qname, type: RecordType.A, ttl: 60, data: '192.168.1.20' }]) }),
});
const modules = { '@heimdall/core': await import('@heimdall/core'), '@heimdall/plugin-rrl': self, '@heimdall/plugin-upstream': { default: upstreamStandIn } };
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

let started: Resolver | undefined;
afterEach(async () => {
  await started?.stop();
  started = undefined;
});

describe('README', () => {
  it('the example drops the 11th identical answer to a /24 and slips the 12th; exempt clients get all', async () => {
    const { resolver } = await runExample(readmeExamples()[0]!, modules);
    started = resolver as Resolver;
    const outcomes = async (address: string, n: number) => {
      const out: string[] = [];
      for (let i = 0; i < n; i++) {
        const res = await started!.handle(query('www.example.com'), { address, transport: 'udp' });
        out.push(res === null ? 'dropped' : decodeResponse(res).tc ? 'slipped' : 'sent');
      }
      return out;
    };
    expect((await outcomes('198.51.100.7', 12)).slice(9)).toEqual(['sent', 'dropped', 'slipped']);
    expect(new Set(await outcomes('10.1.2.3', 30))).toEqual(new Set(['sent']));
  });

  it('the config example is valid', () => {
    const config = JSON.parse(/```json\n([\s\S]*?)```/.exec(readme)![1]!) as { plugins: { use: string; options: unknown }[] };
    expect(self.rrl(config.plugins[0]!.options as never).options).toMatchObject({ responsesPerSecond: 10, logOnly: true });
  });

  it('the options table lists every option with its default', () => {
    const table = readme.slice(readme.indexOf('<!-- options:start -->'), readme.indexOf('<!-- options:end -->'));
    for (const [name, schema] of Object.entries(rrlOptionsSchema.properties)) {
      expect(table).toContain(`| \`${name}\` |`);
      if ('default' in schema) expect(table).toContain(`\`${JSON.stringify(schema.default)}\``);
    }
  });
});
