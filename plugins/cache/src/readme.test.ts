import { readFileSync } from 'node:fs';
import * as core from '@heimdall/core';
import { CACHE_CONTROL, type CacheControl, definePlugin, options, RecordType, type Resolver, type TSchema, Type } from '@heimdall/core';
import * as di from '@heimdall/core/di';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import * as self from './index.js';
import { cacheOptionsSchema } from './options.js';
import { decode, makeQuery, ttlsOf } from './test-util.js';

// The README's examples run here as written (plain JavaScript in ```ts
// blocks: no type annotations). Stand-ins take the place of the plugins this
// package does not depend on, and listeners bind port 0.
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const examples = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);

let upstreamQueries = 0;
const upstreamStandIn = definePlugin({
  name: 'upstream',
  options: options({ servers: Type.Array(Type.String(), { minItems: 1 }) }),
  setup: () => ({
    middleware: () => (ctx) => {
      upstreamQueries++;
      ctx.answer([{ name: ctx.query.qname, type: RecordType.A, ttl: 300, data: '192.0.2.53' }]);
    },
  }),
});
const dedupStandIn = definePlugin({ name: 'dedup', setup: () => ({ middleware: () => (_ctx, next) => next() }) });
const created: Resolver[] = [];
const modules: Record<string, object> = {
  '@heimdall/core': {
    ...core,
    createResolver: (o: core.ResolverOptions) => {
      const r = core.createResolver({ ...o, listen: (o.listen ?? []).map((l) => ({ ...l, port: 0 })) });
      created.push(r);
      return r;
    },
  },
  '@heimdall/core/di': di,
  '@heimdall/plugin-cache': self,
  '@heimdall/plugin-dedup': { default: dedupStandIn },
  '@heimdall/plugin-upstream': { default: upstreamStandIn },
};

const IMPORT = /^import\s+(?:(\w+)\s*,?\s*)?(?:\{([^}]*)\})?\s*from\s*'([^']+)';\s*$/;
const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (...a: unknown[]) => Promise<Record<string, unknown>>;

/** Runs one example, its imports bound to `modules`; returns its top-level `const`s. */
function runExample(code: string): Promise<Record<string, unknown>> {
  const prologue: string[] = [];
  const body: string[] = [];
  for (const line of code.split('\n')) {
    const m = IMPORT.exec(line);
    if (m === null) {
      if (/^import\s/.test(line)) throw new Error(`cannot run README import: ${line}`);
      body.push(line);
      continue;
    }
    const [, def, named, from] = m;
    if (!(from! in modules)) throw new Error(`the README imports '${from}', which the test does not provide`);
    const ref = `__modules[${JSON.stringify(from)}]`;
    if (def !== undefined) prologue.push(`const ${def} = ${ref}.default;`);
    for (const part of (named ?? '').split(',').map((s) => s.trim())) {
      if (part !== '') prologue.push(`const ${part} = ${ref}[${JSON.stringify(part)}];`);
    }
  }
  const declared = [...code.matchAll(/^const\s+(\w+)/gm)].map((m) => m[1]);
  return new AsyncFunction('__modules', [...prologue, ...body, `return { ${declared.join(', ')} };`].join('\n'))(modules);
}

afterEach(async () => {
  for (const r of created.splice(0)) await r.stop();
});

describe('README examples', () => {
  it('the first example runs: a resolver with the cache answers a repeated question from it', async () => {
    const { resolver } = (await runExample(examples[0]!)) as { resolver: Resolver };
    upstreamQueries = 0;
    await resolver.handle(makeQuery('www.example.com'));
    const again = await resolver.handle(makeQuery('www.example.com', { id: 7 }));
    expect(upstreamQueries).toBe(1);
    expect(decode(again!).id).toBe(7);
    expect(ttlsOf(again!)).toEqual([300]);
  });

  it('the tier example runs: answers are written through to the tier, flushes reach it', async () => {
    expect(examples.length).toBe(2);
    const { resolver, shared, control } = (await runExample(examples[1]!)) as { resolver: Resolver; shared: Map<string, unknown>; control: CacheControl };
    await resolver.handle(makeQuery('tier.example'));
    expect(shared.size).toBe(1);
    expect(resolver.container.get<CacheControl>(CACHE_CONTROL)).toBe(control);
    control.flush({ all: true });
    expect([control.size, shared.size]).toEqual([0, 0]);
  });

  it('the YAML config options are valid', () => {
    const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => parse(m[1]!));
    const specs = blocks.flatMap((b) => b.plugins).filter((p: { use: string }) => p.use === '@heimdall/plugin-cache');
    expect(specs.length).toBe(1);
    expect(self.cache(specs[0].options).options).toMatchObject({ maxTtl: 86400, prefetch: { amount: 5, duration: 60000, percentage: 10 }, tiers: { timeoutMs: 20 } });
  });

  it('the options table between the markers states every option of the schema with its default', () => {
    const table = readme.slice(readme.indexOf('<!-- options:start -->'), readme.indexOf('<!-- options:end -->'));
    const rows = new Map([...table.matchAll(/^\| `([\w.]+)` \| `([^`]*)` \|/gm)].map((m) => [m[1]!, m[2]!]));
    const expected = new Map<string, string>();
    const walk = (schema: TSchema, prefix: string): void => {
      for (const [k, s] of Object.entries((schema as unknown as { properties: Record<string, TSchema & { default?: unknown; anyOf?: TSchema[] }> }).properties)) {
        const name = prefix + k;
        const object = s.anyOf?.find((m) => (m as { type?: string }).type === 'object') ?? ((s as { type?: string }).type === 'object' ? s : undefined);
        if (s.default !== undefined && (typeof s.default !== 'object' || s.default === null)) {
          expected.set(name, typeof s.default === 'string' ? `'${s.default}'` : String(s.default));
        }
        if (object !== undefined) walk(object, `${name}.`);
      }
    };
    walk(cacheOptionsSchema, '');
    expect(Object.fromEntries(rows)).toEqual(Object.fromEntries(expected));
  });
});
