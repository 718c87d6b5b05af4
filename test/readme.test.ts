/**
 * The TypeScript examples of the root README and the app's README run here,
 * imports bound to the workspace packages, so the first code a newcomer
 * reads cannot rot. Ports are turned into 0 (free ports) and the examples'
 * resolvers are stopped afterwards.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import * as app from '@heimdall/app';
import * as core from '@heimdall/core';
import * as blocking from '@heimdall/plugin-blocking';
import * as cache from '@heimdall/plugin-cache';
import * as dedup from '@heimdall/plugin-dedup';
import * as specialUse from '@heimdall/plugin-special-use';
import * as upstream from '@heimdall/plugin-upstream';
import * as pino from 'pino';
import { readmeExamples, runExample } from '@heimdall/testing';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { REPO } from './helpers.js';

const MODULES: Record<string, object> = {
  '@heimdall/app': app,
  '@heimdall/core': core,
  '@heimdall/plugin-blocking': blocking,
  '@heimdall/plugin-cache': cache,
  '@heimdall/plugin-dedup': dedup,
  '@heimdall/plugin-special-use': specialUse,
  '@heimdall/plugin-upstream': upstream,
  pino,
};

const examples = (file: string): string[] => readmeExamples(join(REPO, file));

let dir: string;
let cwd: string;
beforeAll(() => {
  cwd = process.cwd();
  dir = mkdtempSync(join(os.tmpdir(), 'heimdall-readme-'));
  process.chdir(dir);
  writeFileSync('heimdall.yaml', 'admin:\n  enabled: false\nplugins:\n  - use: special-use\n');
  process.env.XDG_CACHE_HOME = join(dir, 'cache');
});
afterAll(() => {
  process.chdir(cwd);
  rmSync(dir, { recursive: true, force: true });
});

test('root README: the assembled resolver starts (port 5353 → a free port)', async () => {
  const [block] = examples('README.md');
  expect(block).toContain('createResolver');
  const { resolver } = (await runExample(block!.replaceAll('port: 5353', 'port: 0'), MODULES)) as { resolver: core.Resolver };
  try {
    expect(resolver.chain).toEqual(['special-use', 'blocking', 'cache', 'dedup', 'upstream']);
    expect(resolver.addresses().every((a) => a.port > 0)).toBe(true);
  } finally {
    await resolver.stop();
  }
});

test('app README: the library example starts and stops the app', async () => {
  const [block] = examples('apps/heimdall/README.md');
  expect(block).toContain('startApp');
  await runExample(
    block!.replace('console.log(app.resolver.addresses());', 'if (app.resolver.addresses().length === 0) throw new Error("not listening");'),
    MODULES,
  );
});
