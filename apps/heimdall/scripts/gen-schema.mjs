#!/usr/bin/env node
/**
 * Writes schema/heimdall.schema.json from the built app (dist/) and the
 * built-in plugins' schemas. Run by `npm run build` after tsc; the file is
 * committed, and a test (src/schema.test.ts) fails when it is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';

const { builtinPluginInfo, renderSchema } = await import('../dist/schema.js');

const file = new URL('../schema/heimdall.schema.json', import.meta.url);
const plugins = await builtinPluginInfo();
const text = renderSchema(plugins);
let before = '';
try {
  before = readFileSync(file, 'utf8');
} catch {
  // first run
}
if (text !== before) {
  writeFileSync(file, text);
  process.stdout.write('schema/heimdall.schema.json updated\n');
}
const missing = plugins.filter((p) => p.schema === undefined).map((p) => p.name);
if (missing.length > 0) process.stdout.write(`gen-schema: no option schema (yet) for: ${missing.join(', ')} (any object accepted there)\n`);
