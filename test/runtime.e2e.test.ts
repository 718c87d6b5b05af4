/**
 * What the app does to its own process at start, seen from inside it by a
 * preload (`NODE_OPTIONS=--import`) that records two calls:
 *
 * - `v8.setFlagsFromString`: the app turns off V8's allocation-site
 *   pretenuring first thing (`tuneV8()` in cli.ts). V8's flags cannot be read
 *   back, so the call and its argument are what can be checked, and that this
 *   Node's V8 knows the flag (an unknown one only prints a line to stderr).
 * - `module.register`: Node's module hooks run on a thread of their own, a
 *   second V8 isolate whose idle GC ran on the resolver's core. The app
 *   registers them (to share its packages with third-party plugins) only
 *   when a third-party plugin is loaded; a chain of built-ins starts none.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { pluginDir, writeCounterPlugin } from './fixture-plugins.js';
import { freePort, startApp } from './helpers.js';

const dir = mkdtempSync(join(os.tmpdir(), 'heimdall-runtime-'));
const plugins = pluginDir();
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(plugins, { recursive: true, force: true });
});

const preload = join(dir, 'probe.mjs');
writeFileSync(
  preload,
  `import module, { syncBuiltinESMExports } from 'node:module';
import v8 from 'node:v8';
import { appendFileSync } from 'node:fs';
const out = process.env.HEIMDALL_PROBE_OUT;
const note = (line) => appendFileSync(out, line + '\\n');
const setFlags = v8.setFlagsFromString;
v8.setFlagsFromString = (flags) => { note('flags ' + flags); return setFlags(flags); };
const register = module.register;
module.register = (...args) => { note('register ' + String(args[0])); return register(...args); };
syncBuiltinESMExports();
`,
);

/** Starts the app with `plugins` under the probe; returns what the probe recorded and the app's output. */
async function probe(name: string, chain: unknown[]): Promise<{ calls: string[]; output: string }> {
  const out = join(dir, `${name}.log`);
  writeFileSync(out, '');
  const port = await freePort();
  const app = await startApp({ listen: [`127.0.0.1:${port}`], admin: { enabled: false }, logLevel: 'info', plugins: chain }, [], {
    NODE_OPTIONS: `--import=${pathToFileURL(preload).href}`,
    HEIMDALL_PROBE_OUT: out,
  });
  const code = await app.stop();
  expect(code, app.output()).toBe(0);
  return { calls: readFileSync(out, 'utf8').split('\n').filter(Boolean), output: app.output() };
}

describe('the app process at start', () => {
  it('turns off allocation-site pretenuring, a flag this Node knows', () => {
    const options = spawnSync(process.execPath, ['--v8-options'], { encoding: 'utf8' }).stdout;
    expect(options).toMatch(/--allocation-site-pretenuring\b/);
  });

  it('a chain of built-ins: the flag set, no module hooks registered (no second isolate)', async () => {
    const { calls, output } = await probe('builtins', [{ use: 'metrics' }, { use: 'stats' }, { use: 'special-use' }, { use: 'cache' }]);
    expect(calls).toContain('flags --no-allocation-site-pretenuring');
    expect(calls.filter((c) => c.startsWith('register'))).toEqual([]);
    expect(output).not.toMatch(/unrecognized flag/);
  }, 30_000);

  it('a third-party plugin in the chain: the hooks are registered, once', async () => {
    const file = writeCounterPlugin(plugins);
    const { calls } = await probe('third-party', [{ use: 'metrics' }, { use: file }, { use: 'special-use' }]);
    expect(calls).toContain('flags --no-allocation-site-pretenuring');
    expect(calls.filter((c) => c.startsWith('register'))).toHaveLength(1);
  }, 30_000);
});
