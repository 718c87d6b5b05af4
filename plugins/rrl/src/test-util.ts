/**
 * Test helper (not built): runs the TypeScript examples of the README.
 */
import { readFileSync } from 'node:fs';

/** The ```ts blocks of the package's README, in order. */
export function readmeExamples(): string[] {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  return [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

const IMPORT = /^import\s+(?:(\w+)\s*,?\s*)?(?:\{([^}]*)\})?\s*from\s*'([^']+)';\s*$/;
const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (...a: unknown[]) => Promise<Record<string, unknown>>;

/**
 * Runs one README example as written, its `import` lines bound to `modules`
 * (an import of anything else fails the test), and returns the values of its
 * top-level `const`/`let` declarations. Examples are plain JavaScript (no
 * type annotations), so they run without a compiler.
 */
export function runExample(code: string, modules: Record<string, object>): Promise<Record<string, unknown>> {
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
