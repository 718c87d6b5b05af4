/**
 * The README's examples are tests: its TypeScript blocks run, in order, as one
 * script (imports resolved for real; the example URL, paths and cache
 * directory pointed at a local list server and a temp directory), and its
 * tables of metrics and admin actions must match what the plugin registers.
 */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN_ACTIONS, type AdminActions, METRICS, type Registry } from '@heimdall/core';
import { testResolver } from '@heimdall/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blocking } from './plugin.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);

let server: Server;
let base = '';
let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'heimdall-blocking-readme-'));
  await mkdir(join(dir, 'lists'));
  await writeFile(join(dir, 'lists', 'my-block.txt'), '0.0.0.0 tracker.example\n');
  await writeFile(join(dir, 'lists', 'adult.txt'), 'adult.example\n');
  server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('0.0.0.0 ads.example\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

/** The README's TS blocks as one async function: imports become parameters, top-level consts are returned. */
async function script(): Promise<{ names: string[]; values: unknown[]; body: string }> {
  const names: string[] = [];
  const values: unknown[] = [];
  let body = '';
  for (const block of blocks) {
    for (const line of block.split('\n')) {
      const m = /^import\s+(?:(\w+)|\{([^}]*)\})\s+from\s+'([^']+)';$/.exec(line);
      if (m === null) {
        body += `${line}\n`;
        continue;
      }
      const mod = (await import(m[3]!)) as Record<string, unknown>;
      const bindings: [string, string][] =
        m[1] !== undefined
          ? [[m[1], 'default']]
          : m[2]!
              .split(',')
              .map((s) => s.trim())
              .filter((s) => s !== '' && !s.startsWith('type '))
              .map((s) => {
                const [from, as] = s.split(/\s+as\s+/);
                return [as ?? from!, from!];
              });
      for (const [local, exported] of bindings) {
        if (names.includes(local)) continue;
        expect(mod[exported], `${m[3]} exports ${exported}`).toBeDefined();
        names.push(local);
        values.push(mod[exported]);
      }
    }
  }
  const consts = [...body.matchAll(/^const (\w+)/gm)].map((m) => m[1]!);
  body = body
    .replaceAll('https://lists.example/', base)
    .replaceAll('./lists/', `${join(dir, 'lists')}/`)
    .replaceAll('/var/cache/heimdall/lists', join(dir, 'cache'));
  const esbuild = (await import('esbuild' as string)) as { transform(code: string, o: object): Promise<{ code: string }> };
  const wrapped = `const __readme = async () => {\n${body}\nreturn { ${consts.join(', ')} };\n};`;
  const js = (await esbuild.transform(wrapped, { loader: 'ts', target: 'node20' })).code;
  return { names, values, body: `${js}\nreturn __readme();` };
}

describe('README', () => {
  it('its TypeScript examples run, in order, and do what they say', async () => {
    expect(blocks.length).toBeGreaterThanOrEqual(4);
    const { names, values, body } = await script();
    const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (...a: unknown[]) => Promise<Record<string, unknown>>;
    const out = await new AsyncFunction(...names, body)(...values);
    const status = out.status as { enabled: boolean; lists: { name: string; entries: number; lastError: string | null }[] };
    expect(status.enabled).toBe(true);
    expect(status.lists.map((l) => [l.name, l.entries])).toEqual([
      [`${base}hosts.txt`, 1],
      [join(dir, 'lists', 'my-block.txt'), 1],
      ['ads.allow[0]', 2],
      [join(dir, 'lists', 'adult.txt'), 1],
    ]);
    expect((out.lists as { lastError: string | null }[]).every((l) => l.lastError === null)).toBe(true);
    expect(out.seen).toEqual([{ group: 'ads', list: 'mine', reason: 'list', name: 'www.ads.example', rule: 'ads.example' }]);
  });

  it('keeps the generated options table markers', () => {
    expect(readme).toMatch(/<!-- options:start -->\n[\s\S]*<!-- options:end -->/);
  });

  it('lists exactly the metrics and admin actions the plugin registers', async () => {
    const r = testResolver([blocking({ groups: { ads: { block: [{ inline: 'ads.example' }] } } })]);
    await r.start();
    const registered = (await r.get<Registry>(METRICS).getMetricsAsJSON()).map((m) => m.name).filter((n) => n.startsWith('heimdall_blocking_'));
    const documented = [...readme.matchAll(/^\| `(heimdall_blocking_\w+)` \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(registered.sort());
    const actions = r.container.getAll<AdminActions>(ADMIN_ACTIONS).find((g) => g.plugin === 'blocking')!.actions;
    const rows = [...readme.matchAll(/^\| `(\w+)` \| (GET|POST) \| .* \| (first|all|sum) \|/gm)].map((m) => [m[1], m[2], m[3]]);
    expect(rows).toEqual(actions.map((a) => [a.name, a.method, a.combine]));
    await r.stop();
  });
});
