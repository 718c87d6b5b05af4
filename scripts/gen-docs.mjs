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
 * `npm run docs:source` reads the TypeScript sources instead of a build.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const root = new URL('../', import.meta.url);
// --source: from the TypeScript sources, without a build (`npm run docs:source`: node with tsx and the
// "source" export condition); also writes the published JSON Schema, which the app's build writes otherwise.
const source = process.argv.includes('--source');
const from = (name) => new URL(source ? `apps/heimdall/src/${name}.ts` : `apps/heimdall/dist/${name}.js`, root).href;
const { builtinPluginInfo, renderSchema } = await import(from('schema'));
const { pluginDir, renderConfigDoc, renderReadme } = await import(from('docs'));

const check = process.argv.includes('--check');
const plugins = await builtinPluginInfo();
const files = [['docs/config.md', (text) => renderConfigDoc(text, plugins)]];
if (source) files.push(['apps/heimdall/schema/heimdall.schema.json', () => renderSchema(plugins)]);
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
