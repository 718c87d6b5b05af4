import { readFileSync } from 'node:fs';
import { definePlugin, options, RecordType, type Resolver, Type } from '@heimdall/core';
import { decode } from '@heimdall/core/packet';
import { query } from '@heimdall/testing';
import { afterEach, describe, expect, it } from 'vitest';
import * as self from './index.js';
import { readmeExamples as examplesOf, runExample } from '@heimdall/testing';

const readmeExamples = (): string[] => examplesOf(new URL('../README.md', import.meta.url));

// The README's examples run here as written. The upstream plugin is not a
// dependency of this package: a stand-in answers the name it is asked.
const asked: string[] = [];
const upstreamStandIn = definePlugin({
  name: 'upstream',
  options: options({ servers: Type.Array(Type.String(), { minItems: 1 }) }),
  setup: () => ({
    middleware: () => (ctx) => {
      asked.push(ctx.query.qname);
      ctx.answer([{ name: ctx.query.qname, type: RecordType.A, ttl: 60, data: '192.168.1.20' }]);
    },
  }),
});
const modules = {
  '@heimdall/core': await import('@heimdall/core'),
  '@heimdall/plugin-rewrite': self,
  '@heimdall/plugin-upstream': { default: upstreamStandIn },
};
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const [example, excerpt] = readmeExamples();

let started: Resolver | undefined;
afterEach(async () => {
  await started?.stop();
  started = undefined;
});

async function askThrough(resolver: Resolver, name: string) {
  asked.length = 0;
  const m = decode((await resolver.handle(query(name, 'A', { id: 77 })))!);
  return { asked: [...asked], question: m.questions[0]!.name, owner: m.answers[0]?.name };
}

describe('README examples', () => {
  it('the resolver example rewrites as its comment says', async () => {
    const { resolver } = await runExample(example!, modules);
    started = resolver as Resolver;
    expect(await askThrough(started, 'NAS.lan')).toEqual({ asked: ['NAS.home.arpa'], question: 'NAS.lan', owner: 'NAS.lan' });
    expect(await askThrough(started, 'printer.example')).toEqual({ asked: ['nas.home.arpa'], question: 'printer.example', owner: 'printer.example' });
    expect(await askThrough(started, 'example.com')).toEqual({ asked: ['example.com'], question: 'example.com', owner: 'example.com' });
  });

  it('the excerpt is the plugin source, verbatim', () => {
    expect(excerpt!.startsWith('// src/index.ts\n')).toBe(true);
    const source = readFileSync(new URL('./index.ts', import.meta.url), 'utf8');
    expect(source).toContain(excerpt!.slice('// src/index.ts\n'.length));
    expect(source.split('\n').filter((l) => l !== '').length).toBeLessThanOrEqual(40);
  });

  it('the config file example is valid', () => {
    const block = /```json\n([\s\S]*?)```/.exec(readme);
    expect(block).not.toBeNull();
    const config = JSON.parse(block![1]!) as { plugins: { use: string; options: unknown }[] };
    const spec = config.plugins.find((p) => p.use === '@heimdall/plugin-rewrite');
    expect(spec).toBeDefined();
    expect(self.rewrite(spec!.options as never).options).toEqual({ rules: [{ suffix: '.lan', to: '.home.arpa' }] });
  });
});
