import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CACHE_DEFAULTS } from './options.js';
import { cache } from './plugin.js';

// README examples are tests: every options block in the README must be accepted.
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README examples', () => {
  it('the YAML config options are valid', () => {
    const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => parse(m[1]));
    const specs = blocks.flatMap((b) => b.plugins).filter((p: any) => p.use === '@heimdall/plugin-cache');
    expect(specs.length).toBeGreaterThan(0);
    for (const spec of specs) expect(() => cache(spec.options)).not.toThrow();
  });

  it('the TypeScript example options are valid', () => {
    const m = readme.match(/cache\((\{[^\n]*\})\)/);
    expect(m).not.toBeNull();
    // The example's options object is plain data: evaluate it as JSON-like JS.
    const options = new Function(`return (${m![1]});`)();
    expect(() => cache(options)).not.toThrow();
  });

  it('states the defaults the code uses', () => {
    for (const [k, v] of Object.entries(CACHE_DEFAULTS)) {
      if (typeof v === 'number') expect(readme).toContain(`| \`${k}\` | \`${v}\``);
      else if (typeof v === 'string') expect(readme).toContain(`| \`${k}\` | \`'${v}'\``);
      else for (const [kk, vv] of Object.entries(v)) expect(readme).toContain(`| \`${k}.${kk}\` | \`${vv}\``);
    }
  });
});
