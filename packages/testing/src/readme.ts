/**
 * Running a README's TypeScript examples as tests, so documentation cannot
 * rot: `readmeExamples(url)` extracts the ```ts blocks, `runExample(code,
 * modules)` runs one with its `import` lines bound to the modules you give
 * (an import of anything else fails) and returns its top-level `const`/`let`
 * values. Examples are plain JavaScript in TypeScript clothing: no type
 * annotations, so they run without a compiler.
 *
 * @example
 * import * as cache from './index.js';
 * const [example] = readmeExamples(new URL('../README.md', import.meta.url));
 * const { resolver } = await runExample(example, { '@heimdall/plugin-cache': cache, '@heimdall/core': core });
 */
import { readFileSync } from 'node:fs';
import { definePlugin, options, RecordType, type Resolver, Type } from '@heimdall/core';

/** The ```ts blocks of a README (a file URL or path), in order. */
export function readmeExamples(readme: URL | string): string[] {
  const text = readFileSync(readme, 'utf8');
  return [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

const IMPORT = /^import\s+(?:(\w+)\s*,?\s*)?(?:\{([^}]*)\})?\s*from\s*'([^']+)';\s*$/;
const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (...a: unknown[]) => Promise<Record<string, unknown>>;

/**
 * Runs one README example as written, its `import` lines bound to `modules`
 * (an import of anything else fails the test), and returns the values of its
 * top-level `const`/`let` declarations. Examples are plain JavaScript (no
 * type annotations), so they run without a compiler.
 */
export async function runExample(code: string, modules: Record<string, object>): Promise<Record<string, unknown>> {
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
      if (part === '') continue;
      const [name, alias] = part.split(/\s+as\s+/);
      prologue.push(`const ${alias ?? name} = ${ref}[${JSON.stringify(name)}];`);
    }
  }
  const declared = [...code.matchAll(/^(?:const|let)\s+(\w+)/gm)].map((m) => m[1]);
  return new AsyncFunction('__modules', [...prologue, ...body, `return { ${declared.join(', ')} };`].join('\n'))(modules);
}

/**
 * A stand-in for a plugin a README example uses but the package does not
 * depend on (typically `upstream`): it registers as `name`, accepts the
 * upstream option shape (`{ servers: string[] }`, at least one) and answers
 * every query with one A record `data` (TTL `ttl`, default 60).
 *
 * @example
 * const modules = { '@heimdall/plugin-upstream': { default: answeringStandIn('upstream', '192.168.1.20') } };
 */
export function answeringStandIn(name: string, data: string, ttl = 60) {
  return definePlugin({
    name,
    options: options({ servers: Type.Array(Type.String(), { minItems: 1 }) }),
    setup: () => ({ middleware: () => (ctx) => ctx.answer([{ name: ctx.query.qname, type: RecordType.A, ttl, data }]) }),
  });
}

/**
 * What the README's options table (between `<!-- options:start -->` and
 * `<!-- options:end -->`) lacks of `schema`'s top-level options: a row per
 * option (its name in code, first column) and, for an option with a default, the
 * default as inline JSON code. Empty when the table is complete, so any
 * runner can assert it.
 */
export function optionsTableGaps(readme: string, schema: { properties: Record<string, object> }): string[] {
  const table = readme.slice(readme.indexOf('<!-- options:start -->'), readme.indexOf('<!-- options:end -->'));
  const gaps: string[] = [];
  for (const [name, option] of Object.entries(schema.properties)) {
    if (!table.includes(`| \`${name}\` |`)) gaps.push(`row of \`${name}\``);
    if ('default' in option && !table.includes(`\`${JSON.stringify(option.default)}\``)) gaps.push(`default of \`${name}\``);
  }
  return gaps;
}

/**
 * A README's examples with the lifecycle of the resolver they build: `text`
 * is the README, `run(i)` runs example `i` (default the first) with `modules`
 * and returns its `resolver`, `stop()` (for `afterEach`) stops the last one
 * started, and `config()` parses the first ```json block.
 */
export function readmeHarness(readme: URL, modules: Record<string, object>) {
  const text = readFileSync(readme, 'utf8');
  let started: Resolver | undefined;
  return {
    text,
    async run(index = 0): Promise<Resolver> {
      const { resolver } = await runExample(readmeExamples(readme)[index]!, modules);
      started = resolver as Resolver;
      return started;
    },
    async stop(): Promise<void> {
      await started?.stop();
      started = undefined;
    },
    config(): { plugins: { use: string; options: unknown }[] } {
      return JSON.parse(/```json\n([\s\S]*?)```/.exec(text)![1]!);
    },
  };
}
