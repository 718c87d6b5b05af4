/**
 * The environment for running a benchmark with `node --import tsx` from the
 * repository root: tsx reads `bench/tsconfig.json`, whose `include` covers
 * the workspace sources the benchmarks import. The root `tsconfig.json`
 * lists no files, and tsx applies a tsconfig's options (here
 * `experimentalDecorators`, for the plugins' `@inject` parameters) only to
 * the files it includes: without this, importing a plugin's source fails
 * with "Parameter decorators only work when experimental decorators are
 * enabled".
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const benchTsconfig = join(dirname(fileURLToPath(import.meta.url)), '../tsconfig.json');

export function tsxEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...env, TSX_TSCONFIG_PATH: benchTsconfig };
}
