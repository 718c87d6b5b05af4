/**
 * The published JSON Schema (`schema/heimdall.schema.json`), generated: the
 * app's {@link appConfigSchema} plus, for each built-in plugin, an
 * `if { use: NAME } then { options: <the plugin's schema> }` branch, so
 * editors complete and check plugin options. `scripts/gen-schema.mjs`
 * writes it at build time; a test fails when the committed file is stale.
 * `heimdall --print-schema --config FILE` prints the same schema with a
 * branch for each third-party plugin the file names too
 * ({@link configPluginInfo}).
 */
import { ConfigError, type TSchema } from '@heimdall/core';
import { toJsonSchema } from '@heimdall/core/pipeline';
import { appConfigSchema, type PluginEntry, pluginEntrySchema } from './config.js';
import { BUILTIN_PLUGINS, factoryOf, loadThirdParty } from './plugins/registry.js';

/** What the schema and the docs need of a plugin. */
export interface PluginSchemaInfo {
  /** Plugin name, as written in `use`. */
  readonly name: string;
  /** Package that holds it. */
  readonly pkg: string;
  /** One line about it, from `definePlugin`. */
  readonly description?: string;
  /** Its options schema; absent for a plugin not declared with `definePlugin` (then any object is accepted here and its factory checks). */
  readonly schema?: TSchema;
}

/**
 * Every built-in plugin with its schema, in registry order. A package this
 * build does not have (not installed yet) is listed without a schema; one
 * that fails to import throws (a broken build must not publish a schema
 * that silently accepts anything).
 */
export async function builtinPluginInfo(): Promise<PluginSchemaInfo[]> {
  const out: PluginSchemaInfo[] = [];
  for (const [name, builtin] of Object.entries(BUILTIN_PLUGINS)) {
    let mod: Record<string, unknown>;
    try {
      mod = await builtin.load();
    } catch (err) {
      const e = err as { code?: string; message?: string };
      if (e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes(builtin.pkg)) {
        out.push({ name, pkg: builtin.pkg });
        continue;
      }
      throw err;
    }
    const factory = factoryOf(mod);
    out.push({ name, pkg: builtin.pkg, description: factory?.description, schema: factory?.schema });
  }
  return out;
}

/**
 * Every plugin a config can name: the built-in ones, then each third-party
 * plugin (package name or file) its `plugins` list names, imported as the
 * app imports it ({@link loadThirdParty}: core's `loadPlugin` from the
 * config's directory, the host's `@heimdall/*` shared). A
 * third-party plugin's options in the file do not matter here: it is listed
 * with its factory's schema even when they are wrong (`--check` says that).
 * A plugin that cannot be imported, or exports no factory, throws the
 * loader's error, naming the entry (`plugins[2].use: cannot find plugin …`).
 */
export async function configPluginInfo(entries: readonly PluginEntry[], baseDir: string): Promise<PluginSchemaInfo[]> {
  const out = await builtinPluginInfo();
  const seen = new Set(out.map((p) => p.name));
  for (const [i, entry] of entries.entries()) {
    if (seen.has(entry.use)) continue;
    seen.add(entry.use);
    let mod: Record<string, unknown> | undefined;
    const importer = async (url: string) => {
      mod = (await import(url)) as Record<string, unknown>;
      return mod;
    };
    try {
      await loadThirdParty({ use: entry.use }, { baseDir, path: `plugins[${i}]`, importer });
    } catch (err) {
      // Imported, with a factory: only the options (none given here) were refused.
      if (mod === undefined || factoryOf(mod) === undefined) throw asConfigError(err, `plugins[${i}].use`, entry.use);
    }
    const factory = factoryOf(mod!);
    out.push({ name: entry.use, pkg: entry.use, description: factory?.description, schema: factory?.schema });
  }
  return out;
}

/** A loader error as a configuration error at `path` (exit 2, as `--check` reports it): not found, failed import, no factory. */
function asConfigError(err: unknown, path: string, use: string): ConfigError {
  if (err instanceof ConfigError) return err;
  const message = (err as Error).message;
  return new ConfigError(path, message.startsWith(`${path}: `) ? message.slice(path.length + 2) : message, use);
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Keywords whose value is a map of name → schema. */
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', 'definitions', '$defs']);
/** Keywords whose value is a schema or a list of schemas. */
const SUBSCHEMAS = new Set(['items', 'additionalProperties', 'anyOf', 'allOf', 'oneOf', 'not', 'if', 'then', 'else', 'contains', 'propertyNames']);

/**
 * Schemas as written for the validator list fields that have a default as
 * `required` (the validator fills defaults first). For people writing a
 * file, a field with a default is optional: drop it from `required`. Also
 * drops nested `$id`s, which would change how `$ref`s resolve.
 */
function forEditors(schema: unknown, root = true): unknown {
  if (Array.isArray(schema)) return schema.map((s) => forEditors(s, false));
  if (!isObject(schema)) return schema;
  const out: Json = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === '$id' && !root) continue;
    if (SCHEMA_MAPS.has(k) && isObject(v)) out[k] = Object.fromEntries(Object.entries(v).map(([name, s]) => [name, forEditors(s, false)]));
    else if (SUBSCHEMAS.has(k)) out[k] = forEditors(v, false);
    else out[k] = v;
  }
  if (Array.isArray(out.required) && isObject(out.properties)) {
    const props = out.properties;
    const required = (out.required as string[]).filter((name) => !(isObject(props[name]) && 'default' in props[name]));
    if (required.length > 0) out.required = required;
    else delete out.required;
  }
  return out;
}

/** `query-log` → `queryLogOptions`. */
function definitionName(plugin: string): string {
  return `${plugin.replace(/[^A-Za-z0-9]+([A-Za-z0-9])/g, (_, c: string) => c.toUpperCase())}Options`;
}

/** The published JSON Schema for these plugins. */
export function publishedSchema(plugins: readonly PluginSchemaInfo[]): Json {
  const app = toJsonSchema(appConfigSchema);
  const entry = toJsonSchema(pluginEntrySchema);
  const fields = entry.properties as Record<string, Json>;
  fields.use!.examples = plugins.map((p) => p.name);
  // Any object here; the `if`/`then` branches below give the built-in plugins' own schemas.
  fields.options = { type: 'object', description: fields.options!.description };
  const definitions: Json = { pluginEntry: entry };
  entry.allOf = plugins.map((p) => {
    const def = definitionName(p.name);
    definitions[def] =
      p.schema === undefined
        ? { type: 'object', description: `Options of ${p.name} (${p.pkg}), checked by its factory.` }
        : { ...toJsonSchema(p.schema), ...(p.description === undefined ? {} : { description: p.description }) };
    // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then keywords
    return { if: { properties: { use: { const: p.name } }, required: ['use'] }, then: { properties: { options: { $ref: `#/definitions/${def}` } } } };
  });
  (app.properties as Record<string, Json>).plugins!.items = { $ref: '#/definitions/pluginEntry' };
  return forEditors({
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'urn:heimdall:config:v1',
    title: 'Heimdall resolver configuration',
    description:
      'Configuration of the Heimdall reference resolver (JSON or YAML). Plugins run in the order of the `plugins` list. Generated from the option schemas; see docs/config.md.',
    ...app,
    definitions,
  }) as Json;
}

/** The file's text: {@link publishedSchema} as 2-space JSON with a final newline. */
export function renderSchema(plugins: readonly PluginSchemaInfo[]): string {
  return `${JSON.stringify(publishedSchema(plugins), null, 2)}\n`;
}
