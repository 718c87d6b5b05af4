import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { upstream } from './plugin.js';
import { parseUpstreamUrl } from './url.js';

// The README's examples stay valid: its YAML config and every URL in its URL table are accepted.
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it('YAML example is a valid plugin config', () => {
    const block = /```yaml\n([\s\S]*?)```/.exec(readme)![1]!;
    const config = parse(block) as { plugins: { use: string; options: unknown }[] };
    const entry = config.plugins.find((p) => p.use === '@heimdall/plugin-upstream')!;
    expect(upstream(entry.options as never).name).toBe('upstream');
  });

  it('TypeScript example options are valid', () => {
    const block = /upstream\((\{[\s\S]*?\})\),\n {2}\],/.exec(readme)![1]!;
    // The block is a JS object literal with single-quoted strings: evaluate it as such.
    const options = new Function(`return (${block});`)() as object;
    expect(upstream(options as never).name).toBe('upstream');
  });

  it('every URL in the URL table parses', () => {
    const table = readme.slice(readme.indexOf('## Upstream URLs'), readme.indexOf('UDP and TCP upstreams must be'));
    const urls = [...table.matchAll(/^\| (.+?) \|/gm)].flatMap((m) => [...m[1]!.matchAll(/`([^`]+)`/g)].map((x) => x[1]!));
    expect(urls.length).toBeGreaterThan(8);
    for (const u of urls) {
      // Optional parts are written in brackets: `tls://1.1.1.1[:853]#…` → try with and without.
      for (const variant of u.includes('[:') ? [u.replace(/\[(:\d+)\]/, '$1'), u.replace(/\[:\d+\]/, '')] : [u]) {
        expect(() => parseUpstreamUrl(variant), variant).not.toThrow();
      }
    }
  });
});
