import { readFileSync } from 'node:fs';
import { CACHE_TIERS, type CacheTier, definePlugin, options, type Resolver, STATE_STORE, type StateStore, Type } from '@heimdall/core';
import { afterEach, describe, expect, it } from 'vitest';
import * as self from './index.js';
import { readmeExamples as examplesOf, runExample } from '@heimdall/testing';
import { cleanupDirs, tempDir } from './test-util.js';

const readmeExamples = (): string[] => examplesOf(new URL('../README.md', import.meta.url));

// The README's examples run here as written. The cache and upstream plugins
// are not dependencies of this package: stand-ins with their names and
// option shapes take their place.
const cacheStandIn = definePlugin({ name: 'cache', setup: () => ({ middleware: () => (_ctx, next) => next() }) });
const upstreamStandIn = definePlugin({
  name: 'upstream',
  options: options({ servers: Type.Array(Type.String(), { minItems: 1 }) }),
  setup: () => ({ middleware: () => () => undefined }),
});
const modules = {
  '@heimdall/core': await import('@heimdall/core'),
  '@heimdall/plugin-persistence': self,
  '@heimdall/plugin-cache': { default: cacheStandIn },
  '@heimdall/plugin-upstream': { default: upstreamStandIn },
};

let started: Resolver | undefined;
afterEach(async () => {
  await started?.stop();
  started = undefined;
  cleanupDirs();
});

describe('README examples', () => {
  it('the TypeScript example starts a resolver whose container holds the disk tier and the state store', async () => {
    const examples = readmeExamples();
    expect(examples).toHaveLength(1);
    const dir = tempDir();
    process.env.CACHE_DIR = dir;
    try {
      const { resolver } = await runExample(examples[0]!, modules);
      started = resolver as Resolver;
    } finally {
      delete process.env.CACHE_DIR;
    }
    const tiers = started.container.getAll<CacheTier>(CACHE_TIERS);
    expect(tiers.map((t) => t.name)).toEqual(['disk']);
    const state = started.container.get<StateStore>(STATE_STORE);
    state.set('readme', { ok: true });
    expect(state.get('readme')).toEqual({ ok: true });
    expect(readFileSync(`${dir}/data.mdb`).length).toBeGreaterThan(0);
  });

  it('the YAML config options are valid', () => {
    const text = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const m = /- use: persistence\n\s+options: (\{[^\n]*\})/.exec(text);
    expect(m).not.toBeNull();
    // A YAML flow mapping of plain keys, a path and numbers: quote the path and read it as JS.
    const parsed: unknown = new Function(`return (${m![1]!.replace(/dir: ([^,}]+)/, "dir: '$1'")});`)();
    expect(self.persistence(parsed as never).options).toEqual({
      dir: '/var/cache/heimdall',
      maxSizeMb: 512,
      batchSize: 1000,
      flushIntervalMs: 100,
      maxPendingWrites: 10_000,
      sweepIntervalMs: 10_000,
      sweepBatch: 2000,
      statePollMs: 1000,
    });
  });

  it('options are checked by the schema, naming the field', () => {
    expect(() => self.persistence({} as never)).toThrow(/persistence\.dir: is required/);
    expect(() => self.persistence({ dir: '/x', maxSizeMb: 1 })).toThrow(/persistence\.maxSizeMb: must be an integer in 8\.\.1048576/);
    expect(() => self.persistence({ dir: '/x', nope: 1 } as never)).toThrow(/nope/);
  });
});
