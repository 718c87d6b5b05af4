/**
 * The public surface stays small and unambiguous: core's root entry point
 * holds at most 30 runtime values (the rest lives under subpaths), and no
 * two packages' root entry points export the same name.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { REPO } from './helpers.js';

const PACKAGES = ['packages', 'plugins', 'apps'].flatMap((group) =>
  readdirSync(join(REPO, group)).map((dir) => `@heimdall/${group === 'packages' ? dir : group === 'plugins' ? `plugin-${dir}` : 'app'}`),
);

test('core: at most 30 runtime values at the root', async () => {
  const core = await import('@heimdall/core');
  const values = Object.keys(core).filter((k) => k !== 'default');
  expect(values.length, values.join(', ')).toBeLessThanOrEqual(30);
  for (const expected of [
    'createResolver',
    'definePlugin',
    'options',
    'Type',
    'DnsContext',
    'StateKey',
    'ConfigError',
    'UPSTREAM',
    'ADMIN_ACTIONS',
    'RecordType',
  ]) {
    expect(values).toContain(expected);
  }
});

test('no runtime name is exported by two packages', async () => {
  const owners = new Map<string, string[]>();
  for (const name of PACKAGES) {
    const mod = (await import(name)) as Record<string, unknown>;
    for (const key of Object.keys(mod)) {
      if (key === 'default') continue;
      owners.set(key, [...(owners.get(key) ?? []), name]);
    }
  }
  const shared = [...owners].filter(([, pkgs]) => pkgs.length > 1).map(([k, pkgs]) => `${k}: ${pkgs.join(', ')}`);
  expect(shared).toEqual([]);
});
