/**
 * Loading third-party plugins by package name (or file path) from a config:
 * `{ "use": "@acme/heimdall-geo", "options": { … } }`. No fork, no rebuild.
 */
import process from 'node:process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { register } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, PluginLoadError } from '../errors.js';
import { type HeimdallPlugin, isHeimdallPlugin, type PluginFactory, type PluginSpec } from './types.js';

/** Options of {@link loadPlugin}. */
export interface LoadPluginOptions {
  /** Directory that package names and relative paths resolve from (the config file's directory). Default `process.cwd()`. */
  readonly baseDir?: string;
  /** Path of the spec in the config, for error messages. Default `plugins[?]`. */
  readonly path?: string;
  /** Module loader; default native `import()`. Tests and bundlers can replace it. */
  readonly importer?: (url: string) => Promise<unknown>;
}

const nativeImport = (url: string): Promise<unknown> => import(url);

/**
 * Imports a plugin package (or file) and builds the plugin with its options.
 *
 * Accepted module shapes, in order: a default-exported factory
 * `(options) => HeimdallPlugin`; a named export `plugin` that is such a
 * factory; a default-exported plugin object (only when no options are given).
 *
 * Errors: `ConfigError` for a bad spec or options the factory rejects (the
 * message names the spec's path and the package), `PluginLoadError` with code
 * `PLUGIN_LOAD` when the module cannot be found or fails to import, and
 * `PLUGIN_INVALID` when it exports no factory or the factory returns
 * something that is not a plugin.
 *
 * @example
 * const geo = await loadPlugin({ use: '@acme/heimdall-geo', options: { database: './geo.mmdb' } }, { baseDir: configDir });
 */
export async function loadPlugin(spec: PluginSpec, options: LoadPluginOptions = {}): Promise<HeimdallPlugin> {
  const where = options.path ?? 'plugins[?]';
  if (typeof spec !== 'object' || spec === null) throw new ConfigError(where, 'must be an object { use, options? }', spec);
  const use = spec.use;
  if (typeof use !== 'string' || use.trim() === '') throw new ConfigError(`${where}.use`, 'must be a package name or a file path', use);
  const baseDir = path.resolve(options.baseDir ?? process.cwd());
  const importer = options.importer ?? nativeImport;

  let mod: unknown;
  const url = resolveSpecifier(use, baseDir);
  try {
    mod = await importer(url ?? use);
  } catch (e) {
    const code = (e as { code?: string })?.code;
    // "Cannot find" only when the plugin itself is missing: when it was found
    // (url resolved) and one of *its* imports failed, show that error.
    const notFound = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' || code === 'ERR_PACKAGE_PATH_NOT_EXPORTED';
    const missing = notFound && (url === undefined ? String((e as Error)?.message ?? '').includes(`'${use}'`) : !existsSync(fileOf(url)));
    const msg = missing
      ? `${where}.use: cannot find plugin '${use}' (resolved from ${baseDir}); is it installed?`
      : `${where}.use: plugin '${use}' failed to import: ${(e as Error)?.message ?? e}`;
    throw new PluginLoadError('PLUGIN_LOAD', use, msg, { cause: e });
  }

  const m = (mod ?? {}) as { default?: unknown; plugin?: unknown };
  let factory: PluginFactory | undefined;
  if (typeof m.default === 'function') factory = m.default as PluginFactory;
  else if (typeof m.plugin === 'function') factory = m.plugin as PluginFactory;
  else if (typeof (m.default as { default?: unknown })?.default === 'function')
    factory = (m.default as { default: PluginFactory }).default; // CJS interop
  else if (isHeimdallPlugin(m.default)) {
    if (spec.options !== undefined) throw new ConfigError(`${where}.options`, `plugin '${use}' exports a plugin object, which takes no options`, spec.options);
    return m.default;
  }
  if (factory === undefined) {
    throw new PluginLoadError('PLUGIN_INVALID', use, `${where}.use: '${use}' does not export a plugin factory (default export or named export 'plugin')`);
  }

  let plugin: unknown;
  try {
    const instance = spec.name === undefined ? { path: `${where}.options` } : { name: spec.name, path: `${where}.options` };
    plugin = factory(spec.options === undefined ? {} : spec.options, instance);
  } catch (e) {
    // By code, not instanceof: a plugin may have been built against another copy of core.
    if ((e as { code?: unknown })?.code === 'CONFIG' && typeof (e as ConfigError).path === 'string') {
      const ce = e as ConfigError;
      // definePlugin factories already name the config path; older ones name their own.
      if (ce.path.startsWith(where)) throw e;
      throw new ConfigError(`${where} (${use})`, ce.message, ce.value);
    }
    throw new PluginLoadError('PLUGIN_INVALID', use, `${where}: plugin factory of '${use}' threw: ${(e as Error)?.message ?? e}`, { cause: e });
  }
  if (plugin instanceof Promise) {
    throw new PluginLoadError(
      'PLUGIN_INVALID',
      use,
      `${where}: the factory of '${use}' returned a Promise; it must return the plugin synchronously (do async work in start())`,
    );
  }
  if (!isHeimdallPlugin(plugin)) {
    throw new PluginLoadError(
      'PLUGIN_INVALID',
      use,
      `${where}: the factory of '${use}' did not return a plugin (an object with a non-empty name and optional module/middleware/start/stop)`,
    );
  }
  return plugin;
}

/**
 * Loads a config's whole `plugins` list, in order. Errors name the index
 * (`plugins[2].use: cannot find plugin …`).
 */
export async function loadPlugins(specs: readonly PluginSpec[], options: Omit<LoadPluginOptions, 'path'> & { path?: string } = {}): Promise<HeimdallPlugin[]> {
  const base = options.path ?? 'plugins';
  if (!Array.isArray(specs)) throw new ConfigError(base, 'must be an array', specs);
  const out: HeimdallPlugin[] = [];
  for (let i = 0; i < specs.length; i++) out.push(await loadPlugin(specs[i], { ...options, path: `${base}[${i}]` }));
  return out;
}

/**
 * Turns `use` into a file URL: paths relative to `baseDir`; package names by
 * looking for `node_modules/<name>` from `baseDir` upwards and reading its
 * `exports` (conditions `import`, `node`, `default`) or `main`. Returns
 * undefined when a package is not found there (then native resolution from
 * core's own location is tried).
 */
function resolveSpecifier(use: string, baseDir: string): string | undefined {
  if (use.startsWith('file:')) return use;
  if (use.startsWith('./') || use.startsWith('../') || path.isAbsolute(use)) {
    return pathToFileURL(path.resolve(baseDir, use)).href;
  }
  if (use.startsWith('node:')) return undefined;
  const parts = use.split('/');
  const pkgName = use.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
  const subpath = `.${use.slice(pkgName.length)}`;
  let dir = baseDir;
  for (let depth = 0; depth < 64; depth++) {
    const pkgDir = path.join(dir, 'node_modules', pkgName);
    const file = entryOf(pkgDir, subpath);
    if (file !== undefined) return pathToFileURL(file).href;
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return undefined;
}

function entryOf(pkgDir: string, subpath: string): string | undefined {
  let pkg: { exports?: unknown; main?: string; module?: string };
  try {
    pkg = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  } catch {
    return undefined;
  }
  if (pkg.exports !== undefined) {
    let target: unknown = pkg.exports;
    if (typeof target === 'object' && target !== null && !Array.isArray(target)) {
      const keys = Object.keys(target);
      if (keys.some((k) => k.startsWith('.'))) target = (target as Record<string, unknown>)[subpath];
      else if (subpath !== '.') target = undefined;
    } else if (subpath !== '.') target = undefined;
    const rel = pickCondition(target);
    return rel === undefined ? undefined : path.resolve(pkgDir, rel);
  }
  if (subpath !== '.') return path.resolve(pkgDir, subpath);
  const main = pkg.main ?? 'index.js';
  const candidate = path.resolve(pkgDir, main);
  try {
    if (statSync(candidate).isDirectory()) return path.join(candidate, 'index.js');
  } catch {
    // fall through: let import() report the missing file
  }
  return candidate;
}

function pickCondition(target: unknown, depth = 0): string | undefined {
  if (depth > 8) return undefined;
  if (typeof target === 'string') return target;
  if (Array.isArray(target)) {
    for (const t of target) {
      const r = pickCondition(t, depth + 1);
      if (r !== undefined) return r;
    }
    return undefined;
  }
  if (typeof target === 'object' && target !== null) {
    const t = target as Record<string, unknown>;
    for (const cond of ['import', 'node', 'default']) {
      if (cond in t) {
        const r = pickCondition(t[cond], depth + 1);
        if (r !== undefined) return r;
      }
    }
  }
  return undefined;
}

function fileOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return url;
  }
}

let shared = false;

/**
 * Makes `@heimdall/*` imports of plugins loaded later resolve to the copies
 * the host (`parentURL`, usually `import.meta.url` of the host's entry)
 * depends on: a plugin installed next to a config, with `@heimdall/core` as
 * an optional peer dependency, then runs against the app's own core. Call
 * it before loading the first such plugin (later calls do nothing). Node
 * runs module hooks in a thread of its own for the rest of the process (its
 * own heap, garbage collections on the resolver's cores), so a host that
 * loads only plugins it depends on itself should not call it: the reference
 * app calls it on its first third-party plugin. A no-op under runners with
 * their own module graph (vitest), where the hook file is TypeScript.
 */
export function shareHostPackages(parentURL: string): void {
  if (shared) return;
  const hook = new URL('./resolve-hook.js', import.meta.url);
  if (!import.meta.url.endsWith('.js')) return;
  register(hook, { data: { parentURL } });
  shared = true;
}
