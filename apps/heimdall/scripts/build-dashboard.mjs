#!/usr/bin/env node
// Builds the web dashboard (dashboard/) into dist/dashboard: one minified
// ES module and one stylesheet with content hashes in their names (served
// as immutable by the admin server) and index.html pointing at them.
// Run by the app's `build` (the workspace build); no CDN, no network.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const app = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(app, 'dist/dashboard');
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });

const result = await build({
  entryPoints: [join(app, 'dashboard/src/main.tsx')],
  bundle: true,
  format: 'esm',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  minify: true,
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: join(out, 'assets'),
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = outputs.find((f) => f.endsWith('.js'));
const css = outputs.find((f) => f.endsWith('.css'));
if (!js || !css) throw new Error(`dashboard build: expected a .js and a .css output, got ${outputs.join(', ')}`);
const html = readFileSync(join(app, 'dashboard/index.html'), 'utf8').replace('%JS%', `/assets/${js}`).replace('%CSS%', `/assets/${css}`);
writeFileSync(join(out, 'index.html'), html);
const size = (f) => readFileSync(join(out, 'assets', f)).length;
console.log(`dashboard: assets/${js} (${(size(js) / 1024).toFixed(1)} KiB), assets/${css} (${(size(css) / 1024).toFixed(1)} KiB)`);
