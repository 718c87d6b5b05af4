import { definePlugin, options, type Resolver, RecordType, Type } from '@heimdall/core';
import { decode, encode } from '@heimdall/core/packet';
import { afterEach, describe, expect, it } from 'vitest';
import * as self from './index.js';
import { specialUseOptionsSchema } from './options.js';
import { readmeExamples as examplesOf, runExample } from '@heimdall/testing';

const readmeExamples = (): string[] => examplesOf(new URL('../README.md', import.meta.url));

// Every TypeScript example of the README runs here, as written. The upstream
// plugin is not a dependency of this package: a stand-in answers A 192.0.2.53.
const upstreamStandIn = definePlugin({
  name: 'upstream',
  options: options({ servers: Type.Array(Type.String(), { minItems: 1 }) }),
  setup: () => ({ middleware: () => (ctx) => ctx.answer([{ name: ctx.query.qname, type: RecordType.A, ttl: 60, data: '192.0.2.53' }]) }),
});
const modules = {
  '@heimdall/core': await import('@heimdall/core'),
  '@heimdall/plugin-special-use': self,
  '@heimdall/plugin-upstream': { default: upstreamStandIn },
};

const [defaultsExample, resolverExample] = readmeExamples();
let started: Resolver | undefined;
afterEach(async () => {
  await started?.stop();
  started = undefined;
});

describe('README examples', () => {
  it('has the two examples', () => {
    expect(readmeExamples()).toHaveLength(2);
  });

  it('the options block states every default the schema has', async () => {
    const { defaults } = await runExample(defaultsExample!, modules);
    const plugin = defaults as ReturnType<typeof self.specialUse>;
    expect(plugin.options).toEqual(self.specialUse().options);
    expect(Object.keys(plugin.options as object).sort()).toEqual(Object.keys(specialUseOptionsSchema.properties).sort());
  });

  it('the resolver example answers special names and lets the excluded zone through', async () => {
    const { resolver } = await runExample(resolverExample!, modules);
    started = resolver as Resolver;
    const ask = async (name: string, type: number) => decode((await started!.handle(encode({ id: 3, rd: true, questions: [{ name, type }] })))!);
    expect((await ask('printer.local', RecordType.A)).rcode).toBe(3);
    expect((await ask('5.1.168.192.in-addr.arpa', RecordType.PTR)).answers[0]?.data).toBe('192.0.2.53');
    expect((await ask('5.1.0.10.in-addr.arpa', RecordType.PTR)).rcode).toBe(3);
    expect((await ask('example.com', RecordType.A)).answers[0]?.data).toBe('192.0.2.53');
  });
});
