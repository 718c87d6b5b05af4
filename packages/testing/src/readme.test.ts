import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
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

test('optionsTableGaps names the missing rows and defaults', () => {
  const schema = { properties: { a: { default: 1 }, b: {}, c: { default: 'x' } } };
  const readme = '<!-- options:start -->\n| `a` | integer | `1` |\n| `c` | string | `"y"` |\n<!-- options:end -->\n| `b` |';
  expect(kit.optionsTableGaps(readme, schema)).toEqual(['row of `b`', 'default of `c`']);
});

test('answeringStandIn answers every query with its address; readmeHarness runs and stops an example', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'heimdall-testing-readme-'));
  const url = pathToFileURL(join(dir, 'README.md'));
  await writeFile(
    url,
    [
      '```ts',
      "import { createResolver } from '@heimdall/core';",
      "import upstream from '@heimdall/plugin-upstream';",
      "const resolver = createResolver({ plugins: [upstream({ servers: ['192.0.2.1'] })] });",
      'await resolver.start();',
      '```',
      '```json',
      '{ "plugins": [{ "use": "upstream", "options": { "servers": ["192.0.2.1"] } }] }',
      '```',
    ].join('\n'),
  );
  const readme = kit.readmeHarness(url, {
    '@heimdall/core': await import('@heimdall/core'),
    '@heimdall/plugin-upstream': { default: kit.answeringStandIn('upstream', '198.51.100.4') },
  });
  try {
    expect(readme.config().plugins[0]!.use).toBe('upstream');
    const resolver = await readme.run();
    const res = kit.decodeResponse(await resolver.handle(kit.query('a.example'), { address: '192.0.2.10', transport: 'udp' }));
    expect(res.answers[0]).toMatchObject({ data: '198.51.100.4', ttl: 60 });
    expect(() => kit.answeringStandIn('upstream', '198.51.100.4')({ servers: [] } as never)).toThrow();
  } finally {
    await readme.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
