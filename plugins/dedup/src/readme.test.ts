import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { dedup } from './plugin.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README examples', () => {
  it('the example options are valid', () => {
    const m = readme.match(/dedup\((\{[^\n]*?\})\)/);
    expect(m).not.toBeNull();
    expect(() => dedup(new Function(`return (${m![1]});`)())).not.toThrow();
  });
});
