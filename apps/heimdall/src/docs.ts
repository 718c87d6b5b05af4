/**
 * Option tables generated from the schemas (field, type, default, bounds,
 * description), written between markers into docs/config.md
 * (`<!-- options:app:start -->`, `<!-- options:plugins:start -->`) and
 * into each plugin README that has `<!-- options:start -->` … `<!-- options:end -->`.
 * `npm run docs` (scripts/gen-docs.mjs) writes them; a test fails when a
 * committed file is stale.
 */
import type { TSchema } from '@heimdall/core';
import { toJsonSchema } from '@heimdall/core/pipeline';
import { appConfigSchema } from './config.js';
import type { PluginSchemaInfo } from './schema.js';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** One row of an option table. */
export interface OptionRow {
  /** `tcp.idleTimeoutMs`, `lists[].source`, `groups.<name>.block`. */
  readonly field: string;
  readonly type: string;
  /** JSON of the default, `required`, or empty. */
  readonly default: string;
  readonly bounds: string;
  readonly description: string;
}

function typeOf(s: Json): string {
  if ('const' in s) return JSON.stringify(s.const);
  if (Array.isArray(s.enum)) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  const union = (s.anyOf ?? s.oneOf) as Json[] | undefined;
  if (Array.isArray(union)) return [...new Set(union.map(typeOf))].join(' | ');
  if (s.type === 'array' && isObject(s.items)) {
    const item = typeOf(s.items);
    return item.includes(' | ') ? `(${item})[]` : `${item}[]`;
  }
  if (s.type === 'object' && isObject(s.patternProperties)) {
    const value = Object.values(s.patternProperties)[0];
    return isObject(value) && Object.keys(value).length > 0 ? `{ [name]: ${typeOf(value)} }` : 'object';
  }
  if (Array.isArray(s.type)) return s.type.join(' | ');
  return typeof s.type === 'string' ? s.type : 'any';
}

function numberBounds(s: Json): string {
  const num = (k: string): number | undefined => (typeof s[k] === 'number' ? (s[k] as number) : undefined);
  const [lo, hi, xlo, xhi] = [num('minimum'), num('maximum'), num('exclusiveMinimum'), num('exclusiveMaximum')];
  const parts: string[] = [];
  if (lo !== undefined && hi !== undefined) parts.push(`${lo}..${hi}`);
  else if (lo !== undefined) parts.push(`≥ ${lo}`);
  if (xlo !== undefined) parts.push(`> ${xlo}`);
  if (hi !== undefined && lo === undefined) parts.push(`≤ ${hi}`);
  if (xhi !== undefined) parts.push(`< ${xhi}`);
  return parts.join(', ');
}

function range(lo: unknown, hi: unknown, unit: string): string {
  if (typeof lo === 'number' && typeof hi === 'number') return lo === hi ? `${lo} ${unit}` : `${lo}..${hi} ${unit}`;
  if (typeof lo === 'number') return lo === 1 ? 'non-empty' : `≥ ${lo} ${unit}`;
  if (typeof hi === 'number') return `≤ ${hi} ${unit}`;
  return '';
}

function boundsOf(s: Json): string {
  const union = (s.anyOf ?? s.oneOf) as Json[] | undefined;
  if (Array.isArray(union))
    return union
      .map(boundsOf)
      .filter((b) => b !== '')
      .join('; ');
  const parts: string[] = [];
  const n = numberBounds(s);
  if (n !== '') parts.push(n);
  const len = range(s.minLength, s.maxLength, 'chars');
  if (len !== '') parts.push(len);
  if (typeof s.pattern === 'string' && typeof s.errorMessage === 'string') parts.push(s.errorMessage.replace(/^must be /, ''));
  const items = range(s.minItems, s.maxItems, 'items');
  if (items !== '') parts.push(items);
  if (s.uniqueItems === true) parts.push('unique');
  if (s.type === 'array' && isObject(s.items) && !isObject(s.items.properties)) {
    const each = boundsOf(s.items);
    if (each !== '') parts.push(`each ${each}`);
  }
  return parts.join(', ');
}

/** The object schema(s) below a field whose fields get rows of their own, with the path segment they add. */
function nested(s: Json): Array<{ schema: Json; suffix: string }> {
  const out: Array<{ schema: Json; suffix: string }> = [];
  if (isObject(s.properties) && Object.keys(s.properties).length > 0) out.push({ schema: s, suffix: '' });
  if (s.type === 'array' && isObject(s.items)) for (const n of nested(s.items)) out.push({ schema: n.schema, suffix: `[]${n.suffix}` });
  if (isObject(s.patternProperties)) {
    for (const value of Object.values(s.patternProperties))
      if (isObject(value)) for (const n of nested(value)) out.push({ schema: n.schema, suffix: `.<name>${n.suffix}` });
  }
  if (isObject(s.additionalProperties)) for (const n of nested(s.additionalProperties)) out.push({ schema: n.schema, suffix: `.<name>${n.suffix}` });
  const union = (s.anyOf ?? s.oneOf) as Json[] | undefined;
  if (Array.isArray(union)) for (const m of union) out.push(...nested(m));
  return out;
}

/** The rows of an object schema's fields, nested objects flattened (`tcp.idleTimeoutMs`). */
export function optionRows(schema: TSchema | Json, prefix = ''): OptionRow[] {
  const s = toJsonSchema(schema as TSchema);
  const rows: OptionRow[] = [];
  const required = new Set(Array.isArray(s.required) ? (s.required as string[]) : []);
  for (const [key, value] of Object.entries((s.properties ?? {}) as Record<string, Json>)) {
    const field = prefix === '' ? key : `${prefix}.${key}`;
    const def = 'default' in value ? JSON.stringify(value.default) : required.has(key) ? 'required' : '';
    rows.push({
      field,
      type: typeOf(value),
      default: def,
      bounds: boundsOf(value),
      description: typeof value.description === 'string' ? value.description : '',
    });
    for (const n of nested(value)) rows.push(...optionRows(n.schema, `${field}${n.suffix}`));
  }
  return rows;
}

const cell = (text: string): string => text.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
const code = (text: string): string => (text === '' ? '' : `\`${text}\``);

/** A Markdown table of {@link optionRows}. */
export function optionTable(schema: TSchema | Json): string {
  const rows = optionRows(schema);
  if (rows.length === 0) return '_No options._';
  const lines = ['| field | type | default | bounds | description |', '| --- | --- | --- | --- | --- |'];
  for (const r of rows) {
    const def = r.default === 'required' ? '**required**' : code(r.default);
    lines.push(`| ${cell(code(r.field))} | ${cell(r.type)} | ${cell(def)} | ${cell(r.bounds)} | ${cell(r.description)} |`);
  }
  return lines.join('\n');
}

/** Replaces what is between `<!-- NAME:start -->` and `<!-- NAME:end -->` with `content`. Throws when the markers are missing. */
export function replaceBetween(text: string, name: string, content: string): string {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const a = text.indexOf(start);
  const b = text.indexOf(end, a);
  if (a < 0 || b < 0) throw new Error(`markers ${start} … ${end} not found`);
  return `${text.slice(0, a + start.length)}\n${content}\n${text.slice(b)}`;
}

/** Whether `text` has the marker pair `NAME`. */
export function hasMarkers(text: string, name: string): boolean {
  return text.includes(`<!-- ${name}:start -->`) && text.includes(`<!-- ${name}:end -->`);
}

/** Repository-relative directory of a built-in plugin's package (`plugins/cache`), or undefined for the app's own. */
export function pluginDir(pkg: string): string | undefined {
  const m = /^@heimdall\/plugin-(.+)$/.exec(pkg);
  return m === null ? undefined : `plugins/${m[1]}`;
}

function pluginSection(p: PluginSchemaInfo): string {
  const dir = pluginDir(p.pkg);
  const where = dir === undefined ? 'Built into the app.' : `Package \`${p.pkg}\` ([README](../${dir}/README.md)).`;
  const about = p.description === undefined ? where : `${p.description}\n\n${where}`;
  const table = p.schema === undefined ? '_Options not declared as a schema yet: see the README._' : optionTable(p.schema);
  return `### \`${p.name}\`\n\n${about}\n\n${table}`;
}

/** docs/config.md with its generated tables (the app's fields, every built-in plugin's options) brought up to date. */
export function renderConfigDoc(markdown: string, plugins: readonly PluginSchemaInfo[]): string {
  let out = replaceBetween(markdown, 'options:app', optionTable(appConfigSchema));
  out = replaceBetween(out, 'options:plugins', plugins.map(pluginSection).join('\n\n'));
  return out;
}

/** A plugin README with its `options` table brought up to date (unchanged when it has no markers or the plugin no schema). */
export function renderReadme(markdown: string, plugin: PluginSchemaInfo): string {
  if (plugin.schema === undefined || !hasMarkers(markdown, 'options')) return markdown;
  return replaceBetween(markdown, 'options', optionTable(plugin.schema));
}
