/**
 * docs/plugin-authoring.md opens with the hello plugin and its test: its
 * first two ```ts blocks must be docs/examples/hello/hello.ts and
 * hello.test.ts byte for byte (those files run in the suite), and the line
 * counts the page gives must be theirs.
 */
import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';

const read = (path: string) => readFileSync(new URL(path, import.meta.url), 'utf8');

test("the authoring guide's first two code blocks are the hello example's files, byte for byte", () => {
  const guide = read('../plugin-authoring.md');
  const blocks = [...guide.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
  const files = ['hello/hello.ts', 'hello/hello.test.ts'];
  expect(blocks.slice(0, 2)).toEqual(files.map((f) => read(f)));
  for (const f of files) {
    const lines = read(f).trimEnd().split('\n').length;
    expect(guide).toContain(`[examples/${f}](examples/${f}), ${lines} lines)`);
  }
});
