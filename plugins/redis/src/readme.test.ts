import { readFileSync } from 'node:fs';
import { CACHE_TIERS, type CacheTier, type Resolver } from '@heimdall/core';
import { MessageReader } from '@heimdall/core/packet';
import { answeringStandIn, query, readmeExamples, runExample } from '@heimdall/testing';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import * as self from './index.js';
import { redisOptionsSchema } from './options.js';
import { RedisStats } from './stats.js';
import { cleanup, haveRedis, miniCache, RedisServer, waitFor } from './test-util.js';

// The README's examples run here as written, against a real redis-server.
// The cache and upstream plugins are not dependencies of this package:
// stand-ins with their names and option shapes take their place.
const modules = {
  '@heimdall/core': await import('@heimdall/core'),
  '@heimdall/plugin-redis': self,
  '@heimdall/plugin-cache': { default: miniCache },
  '@heimdall/plugin-upstream': { default: answeringStandIn('upstream', '192.0.2.7', 300) },
};

const README_URL = new URL('../README.md', import.meta.url);
const README = readFileSync(README_URL, 'utf8');
const examples = readmeExamples(README_URL);

let started: Resolver | undefined;
afterEach(async () => {
  await started?.stop();
  started = undefined;
});
afterAll(cleanup);

describe('README', () => {
  it.runIf(haveRedis())('the TypeScript example starts a resolver that answers and writes through to Redis', async () => {
    expect(examples).toHaveLength(1);
    const server = await RedisServer.start();
    process.env.REDIS_URL = server.url;
    try {
      const { resolver } = await runExample(examples[0]!, modules);
      started = resolver as Resolver;
    } finally {
      delete process.env.REDIS_URL;
    }
    expect(started.container.getAll<CacheTier>(CACHE_TIERS).map((t) => t.name)).toEqual(['redis']);
    const res = await started.handle(query('readme.example'));
    expect(new MessageReader(res!).ancount).toBe(1);
    const stats = started.scope('redis').get(RedisStats);
    await waitFor(() => stats.writes === 1, 'the answer to reach Redis');
    await server.stop();
  });

  it('the YAML config options are valid', () => {
    const m = /- use: redis\n\s+options: (\{[^\n]*\})/.exec(README);
    expect(m).not.toBeNull();
    // A YAML flow mapping of plain keys, URLs, paths and numbers: quote the URLs and paths and read it as JS.
    const js = m![1]!.replace(/(:\s*)((?:[a-z+]+:\/\/|\/)[^,}\s]+)/g, "$1'$2'");
    const parsed: unknown = new Function(`return (${js});`)();
    expect(self.redis(parsed as never).options).toMatchObject({
      url: 'rediss://redis.internal:6380/0',
      passwordFile: '/run/secrets/redis',
      tls: { caFile: '/etc/ssl/redis-ca.pem', rejectUnauthorized: true },
      timeoutMs: 20,
    });
  });

  it('the generated options table names every option with its default', () => {
    const table = /<!-- options:start -->([\s\S]*?)<!-- options:end -->/.exec(README)![1]!;
    const walk = (schema: { properties?: Record<string, unknown> }, prefix: string): string[] =>
      Object.entries(schema.properties ?? {}).flatMap(([k, v]) => [`${prefix}${k}`, ...walk(v as { properties?: Record<string, unknown> }, `${prefix}${k}.`)]);
    const names = walk(redisOptionsSchema as never, '');
    expect(names.length).toBeGreaterThan(20);
    for (const n of names) expect(table, n).toContain(`| \`${n}\` |`);
    expect(table).toContain('| `timeoutMs` | integer | `20` |');
    expect(table).toContain('| `keyPrefix` | string | `"heimdall:"` |');
  });
});
