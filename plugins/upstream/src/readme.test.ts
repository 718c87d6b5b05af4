import { readFileSync } from 'node:fs';
import { definePlugin, type Resolver } from '@heimdall/core';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { UpstreamClient } from './client.js';
import * as self from './index.js';
import { upstream } from './plugin.js';
import { parseUpstreamUrl } from './url.js';

// The README's examples run here as written. The cache plugin is not a
// dependency of this package: a pass-through stand-in takes its place.
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const examples = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
const modules: Record<string, object> = {
  '@heimdall/core': await import('@heimdall/core'),
  '@heimdall/plugin-upstream': self,
  '@heimdall/plugin-cache': { default: definePlugin({ name: 'cache', setup: () => ({ middleware: () => (_ctx, next) => next() }) }) },
};

const IMPORT = /^import\s+(?:(\w+)\s*,?\s*)?(?:\{([^}]*)\})?\s*from\s*'([^']+)';\s*$/;
const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (m: object) => Promise<Record<string, unknown>>;

/** Runs one example (plain JavaScript) with its imports bound to `modules`; returns its top-level constants. */
function run(code: string): Promise<Record<string, unknown>> {
  const prologue: string[] = [];
  const body: string[] = [];
  for (const line of code.split('\n')) {
    const m = IMPORT.exec(line);
    if (m === null) {
      body.push(line);
      continue;
    }
    const [, def, named, from] = m;
    if (!(from! in modules)) throw new Error(`the README imports '${from}', which the test does not provide`);
    const ref = `__m[${JSON.stringify(from)}]`;
    if (def !== undefined) prologue.push(`const ${def} = ${ref}.default;`);
    for (const name of (named ?? '').split(',').map((s) => s.trim())) if (name) prologue.push(`const ${name} = ${ref}[${JSON.stringify(name)}];`);
  }
  const declared = [...code.matchAll(/^const\s+(\w+)/gm)].map((m) => m[1]);
  return new AsyncFunction('__m', [...prologue, ...body, `return { ${declared.join(', ')} };`].join('\n'))(modules);
}

const started: Resolver[] = [];
afterEach(async () => {
  while (started.length) await started.pop()!.stop();
});

describe('README', () => {
  it('has the examples this test runs', () => {
    expect(examples).toHaveLength(3);
  });

  it('the first example builds and starts a resolver (port 5353 → 0 so that the test never collides)', async () => {
    const { resolver } = await run(examples[0]!.replaceAll('port: 5353', 'port: 0'));
    started.push(resolver as Resolver);
    expect((resolver as Resolver).chain).toEqual(['cache', 'upstream']);
    expect((resolver as Resolver).addresses()).toHaveLength(2);
  });

  it('the split-routing example routes lan and corp.example to the LAN instance, the rest on', async () => {
    const { split } = await run(examples[1]!);
    const r = split as Resolver;
    expect(r.chain).toEqual(['upstream-lan', 'upstream']);
    const lan = r.scope('upstream-lan').get(UpstreamClient);
    expect(lan.routeName('nas.lan')).not.toBeNull();
    expect(lan.routeName('git.corp.example')).not.toBeNull();
    expect(lan.routeName('example.com')).toBeNull();
    expect(r.scope('upstream').get(UpstreamClient).routeName('example.com')).not.toBeNull();
  });

  it('the DI example gets the forwarder and the health report', async () => {
    const { forwarder, health } = await run(examples[2]!);
    expect(typeof (forwarder as { resolve: unknown }).resolve).toBe('function');
    expect((health as { upstream: string; state: string }[]).map((h) => [h.upstream, h.state])).toEqual([
      ['udp://9.9.9.9:53', 'up'],
      ['tls://1.1.1.1:853#cloudflare-dns.com', 'up'],
    ]);
  });

  it('every YAML plugin entry is a valid configuration', () => {
    const entries = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)]
      .flatMap((m) => (parse(m[1]!) as { plugins: { use: string; name?: string; options: unknown }[] }).plugins)
      .filter((p) => p.use === '@heimdall/plugin-upstream');
    expect(entries).toHaveLength(3);
    for (const e of entries) expect(upstream(e.options as never, e.name ? { name: e.name } : {}).name).toBe(e.name ?? 'upstream');
  });

  it('every URL in the URL table parses', () => {
    const table = readme.slice(readme.indexOf('## Upstream URLs'), readme.indexOf('UDP and TCP upstreams must be'));
    const urls = [...table.matchAll(/^\| (.+?) \|/gm)].flatMap((m) => [...m[1]!.matchAll(/`([^`]+)`/g)].map((x) => x[1]!));
    expect(urls.length).toBeGreaterThan(8);
    for (const u of urls) {
      // Optional parts are written in brackets: `tls://1.1.1.1[:853]#…` → try with and without.
      for (const variant of u.includes('[:') ? [u.replace(/\[(:\d+)\]/, '$1'), u.replace(/\[:\d+\]/, '')] : [u]) {
        expect(() => parseUpstreamUrl(variant), variant).not.toThrow();
        expect(() => upstream({ servers: [variant] }), variant).not.toThrow();
      }
    }
  });

  it('states the defaults the schema has', () => {
    const o = upstream({ servers: ['9.9.9.9'] }).options as Record<string, unknown>;
    for (const key of ['timeout', 'maxAttempts', 'budget', 'deadlineMargin', 'maxInFlight', 'maxInFlightPerUpstream'] as const) {
      expect(readme).toContain(`| \`${key}\` | integer | \`${o[key]}\``);
    }
  });
});
