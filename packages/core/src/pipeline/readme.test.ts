import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as core from '../index.js';

// The README's pipeline example is a test: it is extracted and run against core.
describe('README pipeline example', () => {
  it('runs', async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const block = /<!-- pipeline-example:start -->\s*```ts\n([\s\S]*?)```\s*<!-- pipeline-example:end -->/.exec(readme);
    expect(block).not.toBeNull();
    const code = (block as RegExpExecArray)[1]
      .split('\n')
      .filter((l) => !l.startsWith('import '))
      .join('\n');
    const names = Object.keys(core);
    const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (...a: unknown[]) => Promise<void>;
    const run = new AsyncFunction(...names, 'assert', code);
    await run(...names.map((n) => (core as Record<string, unknown>)[n]), assert);
  });
});
