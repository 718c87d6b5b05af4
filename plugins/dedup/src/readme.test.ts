import { definePlugin, options, RecordType, type Resolver, Type } from '@heimdall/core';
import { decode } from '@heimdall/core/packet';
import { query } from '@heimdall/testing';
import { afterEach, describe, expect, it } from 'vitest';
import * as self from './index.js';
import { readmeExamples as examplesOf, runExample } from '@heimdall/testing';

const readmeExamples = (): string[] => examplesOf(new URL('../README.md', import.meta.url));

// The README's examples run here as written. The cache and upstream plugins
// are not dependencies of this package: stand-ins take their place (a
// pass-through cache, an upstream that answers after a few milliseconds and
// counts its queries).
let upstreamQueries = 0;
const cacheStandIn = definePlugin({ name: 'cache', setup: () => ({ middleware: () => (_ctx, next) => next() }) });
const upstreamStandIn = definePlugin({
  name: 'upstream',
  options: options({ servers: Type.Array(Type.String(), { minItems: 1 }) }),
  setup: () => ({
    middleware: () => async (ctx) => {
      upstreamQueries++;
      await new Promise((r) => setTimeout(r, 5));
      ctx.answer([{ name: ctx.query.qname, type: RecordType.A, ttl: 60, data: '192.0.2.53' }]);
    },
  }),
});
const modules = {
  '@heimdall/core': await import('@heimdall/core'),
  '@heimdall/plugin-dedup': self,
  '@heimdall/plugin-cache': { default: cacheStandIn },
  '@heimdall/plugin-upstream': { default: upstreamStandIn },
};
const readme = readmeExamples();

let started: Resolver | undefined;
afterEach(async () => {
  await started?.stop();
  started = undefined;
});

describe('README examples', () => {
  it('the TypeScript example coalesces 100 identical queries into one upstream query', async () => {
    expect(readme).toHaveLength(1);
    const { resolver } = await runExample(readme[0]!, modules);
    started = resolver as Resolver;
    upstreamQueries = 0;
    const out = await Promise.all(Array.from({ length: 100 }, (_, i) => started!.handle(query(i % 3 ? 'www.example.com' : 'WWW.example.COM', 'A', { id: i }))));
    expect(upstreamQueries).toBe(1);
    out.forEach((r, i) => {
      const m = decode(r!);
      expect(m.id).toBe(i);
      expect(m.questions[0]!.name).toBe(i % 3 ? 'www.example.com' : 'WWW.example.COM');
      expect(m.answers[0]!.data).toBe('192.0.2.53');
    });
  });

  it('the YAML config options are valid', async () => {
    const { readFileSync } = await import('node:fs');
    const text = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const m = /- use: '@heimdall\/plugin-dedup'\n\s+options: (\{[^\n]*\})/.exec(text);
    expect(m).not.toBeNull();
    // A YAML flow mapping of plain keys and numbers reads the same as a JS object literal.
    const parsed: unknown = new Function(`return (${m![1]});`)();
    expect(self.dedup(parsed as never).options).toEqual({ maxWaiters: 1024, maxInFlight: 65_536 });
  });
});
