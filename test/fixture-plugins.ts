/**
 * Third-party plugins for the end-to-end tests, written as a plugin author
 * would ship them: a plain ES module (no build step) default-exporting a
 * `definePlugin` factory, loaded by path from the config. They import the
 * built core by file URL (the same module the app loads, so the DI tokens
 * are the same).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO } from './helpers.js';

const CORE = pathToFileURL(join(REPO, 'packages/core/dist/index.js')).href;
const DI = pathToFileURL(join(REPO, 'packages/core/dist/di.js')).href;

/** A directory for plugin files (removed by the caller). */
export function pluginDir(): string {
  return mkdtempSync(join(os.tmpdir(), 'heimdall-plugin-'));
}

/**
 * `counter`: contributes admin actions only (no middleware), in every
 * process that runs it:
 * - `POST bump` (`by`: integer 1..1000, default 1; combine `sum`) → `{ hits, by }`
 * - `GET stats` (combine `sum`) → `{ hits, reloads }`
 * - `GET whoami` (combine `all`) → `{ pid }`
 * - `POST reload` (combine `all`) → `{ reloads }` (SIGHUP runs it too)
 */
export function writeCounterPlugin(dir: string): string {
  const file = join(dir, 'counter.mjs');
  writeFileSync(
    file,
    `import { ADMIN_ACTIONS, definePlugin, options, Type } from '${CORE}';
import { ContainerModule } from '${DI}';

let hits = 0;
let reloads = 0;

export default definePlugin({
  name: 'counter',
  setup: (_options, instance) => ({
    module: new ContainerModule(({ bind }) => {
      bind('admin').toConstantValue({
        plugin: instance.name,
        actions: [
          {
            name: 'bump',
            method: 'POST',
            description: 'adds to the counter',
            combine: 'sum',
            args: options({ by: Type.Integer({ minimum: 1, maximum: 1000, default: 1 }) }),
            run: ({ by }) => ({ hits: (hits += by), by }),
          },
          { name: 'stats', method: 'GET', description: 'the counters', combine: 'sum', run: () => ({ hits, reloads }) },
          { name: 'whoami', method: 'GET', description: 'the process', combine: 'all', run: () => ({ pid: process.pid }) },
          { name: 'reload', method: 'POST', description: 'counts reloads', combine: 'all', run: () => ({ reloads: ++reloads }) },
        ],
      });
    }),
    provides: [{ token: ADMIN_ACTIONS, use: 'admin' }],
  }),
});
`,
  );
  return file;
}

/**
 * `slow-start`: its `start` prints `{"msg":"slow-start waiting"}` and waits
 * until the file `gate` exists (at most 20 s), so a test can signal the
 * process while it is starting.
 */
export function writeSlowStartPlugin(dir: string): string {
  const file = join(dir, 'slow-start.mjs');
  writeFileSync(
    file,
    `import { existsSync } from 'node:fs';
import { definePlugin, options, Type } from '${CORE}';

export default definePlugin({
  name: 'slow-start',
  options: options({ gate: Type.String({ minLength: 1 }) }),
  setup: ({ gate }) => ({
    async start() {
      process.stdout.write(JSON.stringify({ msg: 'slow-start waiting', pid: process.pid }) + '\\n');
      const deadline = Date.now() + 20000;
      while (!existsSync(gate) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    },
  }),
});
`,
  );
  return file;
}

/**
 * `crash-when`: once started, the process exits with code 3 after 100 ms
 * when the file `marker` exists (a worker that keeps dying).
 */
export function writeCrashPlugin(dir: string): string {
  const file = join(dir, 'crash-when.mjs');
  writeFileSync(
    file,
    `import { existsSync } from 'node:fs';
import { definePlugin, options, Type } from '${CORE}';

export default definePlugin({
  name: 'crash-when',
  options: options({ marker: Type.String({ minLength: 1 }) }),
  setup: ({ marker }) => ({
    start() {
      if (existsSync(marker)) setTimeout(() => process.exit(3), 100);
    },
  }),
});
`,
  );
  return file;
}

/** Waits until `cond()` holds, polling every 25 ms; throws after `ms`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`${what} not met in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
