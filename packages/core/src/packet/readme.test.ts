import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as codec from './index.js';

// The README's codec example is a test: it is extracted and run against this module.
describe('README codec example', () => {
  it('runs', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const block = /<!-- codec-example:start -->\s*```ts\n([\s\S]*?)```\s*<!-- codec-example:end -->/.exec(readme);
    expect(block).not.toBeNull();
    const code = (block as RegExpExecArray)[1]
      .split('\n')
      .filter((l) => !l.startsWith('import '))
      .join('\n');
    const names = Object.keys(codec);
    const run = new Function(...names, 'assert', code);
    run(...names.map((n) => (codec as Record<string, unknown>)[n]), assert);
  });
});
