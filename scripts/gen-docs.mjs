#!/usr/bin/env node
/**
 * `npm run docs`: writes the option tables generated from the schemas —
 * the app's fields and every built-in plugin's options into docs/config.md,
 * and each plugin's options into its README when it has the
 * `<!-- options:start -->` … `<!-- options:end -->` markers. Reads the built
 * app (apps/heimdall/dist; `npm run docs` builds it first). A test
 * (apps/heimdall/src/generated.test.ts) fails when a committed file is stale.
 *
 * `node scripts/gen-docs.mjs --check` writes nothing and exits 1 when a file would change.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const root = new URL('../', import.meta.url);
const { builtinPluginInfo } = await import(new URL('apps/heimdall/dist/schema.js', root).href);
const { pluginDir, renderConfigDoc, renderReadme } = await import(new URL('apps/heimdall/dist/docs.js', root).href);

const check = process.argv.includes('--check');
const plugins = await builtinPluginInfo();
const files = [['docs/config.md', (text) => renderConfigDoc(text, plugins)]];
for (const plugin of plugins) {
  const dir = pluginDir(plugin.pkg);
  if (dir !== undefined) files.push([`${dir}/README.md`, (text) => renderReadme(text, plugin)]);
}

let stale = 0;
for (const [path, render] of files) {
  const url = new URL(path, root);
  if (!existsSync(url)) continue;
  const before = readFileSync(url, 'utf8');
  const after = render(before);
  if (after === before) continue;
  stale++;
  if (check) process.stdout.write(`${path} is stale\n`);
  else {
    writeFileSync(url, after);
    process.stdout.write(`${path} updated\n`);
  }
}
if (check && stale > 0) process.exit(1);
