import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import * as kit from './index.js';

// The README's runnable examples (the blocks that import from '@heimdall/testing') run here.
test('README examples run', async () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((b) => b.startsWith('import') && b.includes("from '@heimdall/testing'") && b.split('\n').length > 4);
  expect(blocks.length).toBeGreaterThan(0);
  for (const block of blocks) {
    const body = block.replace(/^import[\s\S]*?from '@heimdall\/testing';\n/m, '');
    const names = Object.keys(kit);
    const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (...a: unknown[]) => Promise<void>;
    await new AsyncFunction(...names, body)(...names.map((n) => (kit as Record<string, unknown>)[n]));
  }
});
