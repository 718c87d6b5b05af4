/**
 * The error registry stays one registry: every first-party code is
 * registered at exactly one place in the sources, the registry at run time
 * holds exactly those (so the scan below misses nothing), and
 * docs/architecture.md's code table lists each of them with its status and
 * nothing else.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorCodes } from '@heimdall/core/errors';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === 'node_modules' || name === 'dist' || name === 'dashboard') continue;
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.includes('.test-')) out.push(p);
  }
  return out;
}

function srcDirs(parent: string): string[] {
  return readdirSync(join(root, parent))
    .map((n) => join(root, parent, n, 'src'))
    .filter((d) => {
      try {
        return statSync(d).isDirectory();
      } catch {
        return false;
      }
    });
}

/** Every code registered in the sources, with the places that register it. */
function registeredInSources(): Map<string, string[]> {
  const sites = new Map<string, string[]>();
  const add = (code: string, where: string) => sites.set(code, [...(sites.get(code) ?? []), where]);
  for (const file of [...srcDirs('packages'), ...srcDirs('plugins'), ...srcDirs('apps')].flatMap(sources)) {
    // Comments (doc examples) register nothing.
    const text = readFileSync(file, 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/^\s*\/\/.*$/gm, '');
    const where = relative(root, file);
    for (const m of text.matchAll(/\bcreateError(?:<[^>]*>)?\(\s*'([A-Z][A-Z0-9_]*)'/g)) add(m[1]!, where);
    if (where === 'packages/core/src/errors.ts') for (const m of text.matchAll(/^register\('([A-Z][A-Z0-9_]*)'/gm)) add(m[1]!, where);
    for (const m of text.matchAll(/\bregisterErrorCodes\(\s*([A-Z][A-Z0-9_]*)\b/g)) {
      const body = new RegExp(`const ${m[1]} = \\{([\\s\\S]*?)\\n\\}`).exec(text);
      if (body === null) throw new Error(`${where}: registerErrorCodes(${m[1]}) without a 'const ${m[1]} = {…}' literal`);
      for (const k of body[1]!.matchAll(/^\s+([A-Z][A-Z0-9_]*):/gm)) add(k[1]!, where);
    }
  }
  return sites;
}

/** Rows of the code table in docs/architecture.md: code → status. */
function documented(): Map<string, number> {
  const doc = readFileSync(join(root, 'docs/architecture.md'), 'utf8');
  const rows = new Map<string, number>();
  for (const m of doc.matchAll(/^\s*\| `([A-Z][A-Z0-9_]*)` \| (\d{3}) \|/gm)) {
    if (rows.has(m[1]!)) throw new Error(`docs/architecture.md lists ${m[1]} twice`);
    rows.set(m[1]!, Number(m[2]));
  }
  return rows;
}

describe('error registry', () => {
  it('registers every first-party code at exactly one place', () => {
    const sites = registeredInSources();
    expect(sites.size).toBeGreaterThan(30);
    const twice = [...sites].filter(([, at]) => at.length > 1).map(([code, at]) => `${code}: ${at.join(', ')}`);
    expect(twice).toEqual([]);
  });

  it('holds at run time exactly the codes found in the sources, each listed in docs/architecture.md with its status', async () => {
    // Loading every first-party package registers its codes.
    await import('@heimdall/core/packet');
    for (const dir of srcDirs('plugins')) {
      const pkg = JSON.parse(readFileSync(join(dir, '../package.json'), 'utf8')) as { name: string };
      await import(pkg.name);
    }
    const runtime = new Map(errorCodes().map((c) => [c.code, c.statusCode]));
    const inSources = [...registeredInSources().keys()].sort();
    expect([...runtime.keys()].filter((c) => !c.startsWith('TEST_')).sort()).toEqual(inSources);
    const docs = documented();
    expect([...docs.keys()].sort()).toEqual(inSources);
    for (const [code, status] of docs) expect(`${code} ${runtime.get(code)}`).toBe(`${code} ${status}`);
  });
});
