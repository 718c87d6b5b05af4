import { expect, test } from 'vitest';
import * as kit from './index.js';
import { readmeExamples, runExample } from './readme.js';

// The README's runnable examples (the blocks that import from '@heimdall/testing') run here.
test('README examples run', async () => {
  const blocks = readmeExamples(new URL('../README.md', import.meta.url)).filter(
    (b) => b.startsWith('import') && b.includes("from '@heimdall/testing'") && b.split('\n').length > 4,
  );
  expect(blocks.length).toBeGreaterThan(0);
  for (const block of blocks) await runExample(block, { '@heimdall/testing': kit });
});

test('runExample binds imports, returns top-level values, and refuses unknown modules', async () => {
  expect(await runExample("import { a } from 'm';\nconst b = a + 1;", { m: { a: 41 } })).toEqual({ b: 42 });
  await expect(runExample("import { a } from 'other';", { m: {} })).rejects.toThrow(/imports 'other'/);
});
