/**
 * Plugin options, declared once: a TypeBox schema gives the TypeScript type
 * (`Static<typeof schema>`), the JSON Schema the app publishes for `--check`
 * and editors, the documentation tables, and — through {@link parseOptions} —
 * the one validator every plugin uses, with one vocabulary of errors that
 * name the field path (`cache.maxTtl: must be an integer in 0..604800`).
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { type ValueError, ValueErrorType } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';
import { ConfigError } from '../errors.js';

export { Type };
export type { Static, TSchema };

/** Options as callers may write them: every field optional (defaults fill them in), checked at run time. */
export type OptionsInput<T> = T extends readonly (infer E)[]
  ? readonly OptionsInput<E>[]
  : T extends (...args: never[]) => unknown
    ? T
    : T extends object
      ? { [K in keyof T]?: OptionsInput<T[K]> }
      : T;

/** Turns a JSON pointer (`/lists/2/source`) into a config path (`lists[2].source`). */
function toPath(prefix: string, pointer: string): string {
  let out = prefix;
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(part)) out += `[${part}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}

function typeName(s: Record<string, unknown>): string {
  if ('const' in s) return JSON.stringify(s.const);
  if (Array.isArray(s.enum)) return s.enum.map((v) => JSON.stringify(v)).join(', ');
  if (s.type === 'integer') return 'an integer';
  if (s.type === 'object') return 'an object';
  if (s.type === 'array') return 'an array';
  if (s.type === 'boolean') return 'true or false';
  if (s.type === 'string') return 'a string';
  if (s.type === 'number') return 'a number';
  if (s.type === 'null') return 'null';
  return 'a value of another form';
}

function jsType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function accepts(s: Record<string, unknown>, v: unknown): boolean {
  const t = jsType(v);
  if ('const' in s) return s.const === v;
  if (s.type === 'number') return t === 'number' || t === 'integer';
  return s.type === t;
}

function range(s: Record<string, unknown>, integer: boolean): string {
  const what = integer ? 'an integer' : 'a number';
  const min = s.minimum ?? s.exclusiveMinimum;
  const max = s.maximum ?? s.exclusiveMaximum;
  if (typeof s.minimum === 'number' && typeof s.maximum === 'number') return `must be ${what} in ${s.minimum}..${s.maximum}`;
  if (typeof s.exclusiveMinimum === 'number' && max === undefined) return `must be ${what} greater than ${s.exclusiveMinimum}`;
  if (typeof s.exclusiveMaximum === 'number' && min === undefined) return `must be ${what} less than ${s.exclusiveMaximum}`;
  if (min !== undefined && max !== undefined) return `must be ${what} in ${min}..${max} (bounds ${s.minimum === undefined ? 'excluded' : 'included'})`;
  if (typeof s.minimum === 'number') return `must be ${what} of at least ${s.minimum}`;
  if (typeof s.maximum === 'number') return `must be ${what} of at most ${s.maximum}`;
  return `must be ${what}`;
}

/** One wording per kind of mistake, whatever the plugin. */
function describe(e: ValueError): string {
  const s = e.schema as Record<string, unknown>;
  if (e.type === ValueErrorType.ObjectRequiredProperty) return 'is required';
  if (typeof s.errorMessage === 'string') return s.errorMessage;
  switch (e.type) {
    case ValueErrorType.Integer:
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.IntegerExclusiveMinimum:
    case ValueErrorType.IntegerExclusiveMaximum:
      return range(s, true);
    case ValueErrorType.Number:
    case ValueErrorType.NumberMinimum:
    case ValueErrorType.NumberMaximum:
    case ValueErrorType.NumberExclusiveMinimum:
    case ValueErrorType.NumberExclusiveMaximum:
      return range(s, false);
    case ValueErrorType.String:
      return 'must be a string';
    case ValueErrorType.StringMinLength:
      return s.minLength === 1 ? 'must not be empty' : `must be at least ${s.minLength} characters long`;
    case ValueErrorType.StringMaxLength:
      return `must be at most ${s.maxLength} characters long`;
    case ValueErrorType.StringPattern:
      return `must match ${s.pattern}`;
    case ValueErrorType.Boolean:
      return 'must be true or false';
    case ValueErrorType.Array:
      return 'must be an array';
    case ValueErrorType.ArrayMinItems:
      return s.minItems === 1 ? 'must not be empty' : `must have at least ${s.minItems} items`;
    case ValueErrorType.ArrayMaxItems:
      return `must have at most ${s.maxItems} items`;
    case ValueErrorType.ArrayUniqueItems:
      return 'must not repeat an item';
    case ValueErrorType.Object:
      return 'must be an object';
    case ValueErrorType.Literal:
      return `must be ${typeName(s)}`;
    case ValueErrorType.Union: {
      const members = (s.anyOf ?? []) as Record<string, unknown>[];
      return `must be ${[...new Set(members.map(typeName))].join(' or ')}`;
    }
    default:
      return e.message.replace(/^Expected /, 'must be ');
  }
}

/** The first error of `value` against `schema`, descending into the union member that fits the value's type. */
function firstError(schema: TSchema, value: unknown, pointer = ''): { pointer: string; message: string } | undefined {
  const e = Value.Errors(schema, value).First();
  if (e === undefined) return undefined;
  const at = pointer + e.path;
  if (e.type === ValueErrorType.ObjectAdditionalProperties) {
    const props = Object.keys(((e.schema as { properties?: object }).properties ?? {}) as object);
    return { pointer: at, message: `unknown option${props.length > 0 ? ` (known: ${props.join(', ')})` : ''}` };
  }
  if (e.type === ValueErrorType.Union) {
    const members = ((e.schema as { anyOf?: TSchema[] }).anyOf ?? []) as TSchema[];
    const fitting = members.filter((m) => accepts(m as Record<string, unknown>, e.value) && !('const' in m));
    const best = fitting.length === 1 ? fitting[0] : closestObject(fitting, e.value);
    if (best !== undefined) {
      const inner = firstError(best, e.value, at);
      if (inner !== undefined) return inner;
    }
  }
  return { pointer: at, message: describe(e) };
}

/** Among object schemas, the one whose properties best match the value's keys (for a useful error). */
function closestObject(members: TSchema[], value: unknown): TSchema | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || members.length === 0) return undefined;
  const keys = Object.keys(value);
  let best: TSchema | undefined;
  let bestScore = -Infinity;
  for (const m of members) {
    const props = (m as { properties?: Record<string, unknown> }).properties;
    if (props === undefined) continue;
    const score = keys.reduce((n, k) => n + (k in props ? 1 : -1), 0);
    if (score > bestScore) {
      best = m;
      bestScore = score;
    }
  }
  return best;
}

/**
 * Fills defaults where a value is missing, descending only where the value
 * has the schema's shape (TypeBox's `Value.Default` turns a wrong-typed
 * value into the default, which would hide the mistake).
 */
function fillDefaults(schema: TSchema, value: unknown): unknown {
  const s = schema as Record<string, unknown>;
  if (value === undefined) {
    if (!('default' in s)) return undefined;
    return fillDefaults(schema, structuredClone(s.default));
  }
  if (Array.isArray(s.anyOf)) {
    const fitting = (s.anyOf as TSchema[]).filter((m) => accepts(m as Record<string, unknown>, value) && !('const' in m));
    const member = fitting.length === 1 ? fitting[0] : closestObject(fitting, value);
    return member === undefined ? value : fillDefaults(member, value);
  }
  if (s.type === 'object' && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const props = (s.properties ?? {}) as Record<string, TSchema>;
    const obj = value as Record<string, unknown>;
    for (const [k, ps] of Object.entries(props)) {
      const v = fillDefaults(ps, obj[k]);
      if (v !== undefined) obj[k] = v;
    }
    // Records (`Type.Record`): every value present gets its schema's defaults.
    const patterns = Object.entries((s.patternProperties ?? {}) as Record<string, TSchema>).map(([re, ps]) => [new RegExp(re), ps] as const);
    const rest = typeof s.additionalProperties === 'object' ? (s.additionalProperties as TSchema) : undefined;
    if (patterns.length > 0 || rest !== undefined) {
      for (const k of Object.keys(obj)) {
        if (k in props) continue;
        const ps = patterns.find(([re]) => re.test(k))?.[1] ?? rest;
        if (ps !== undefined) obj[k] = fillDefaults(ps, obj[k]);
      }
    }
    return obj;
  }
  if (s.type === 'array' && Array.isArray(value) && typeof s.items === 'object' && s.items !== null) {
    for (let i = 0; i < value.length; i++) value[i] = fillDefaults(s.items as TSchema, value[i]);
  }
  return value;
}

/**
 * Validates `input` against `schema` and returns a new value with defaults
 * filled in (the input is not modified). `undefined` and `null` read as `{}`.
 * Throws {@link ConfigError} for the first problem, its path prefixed with
 * `path` (`cache`, `plugins[2].options`). Unknown keys are rejected when the
 * object schema says `additionalProperties: false` (as {@link options} does).
 *
 * @example
 * const o = parseOptions(Type.Object({ ttl: Type.Integer({ minimum: 0, default: 300 }) }), { ttl: -1 }, 'geo');
 * // ConfigError: geo.ttl: must be an integer of at least 0
 */
export function parseOptions<S extends TSchema>(schema: S, input: unknown, path: string): Static<S> {
  const value = fillDefaults(schema, input === undefined || input === null ? {} : Value.Clone(input));
  const error = firstError(schema, value);
  if (error !== undefined) {
    const at = toPath(path, error.pointer);
    throw new ConfigError(at, error.message, valueAt(value, error.pointer));
  }
  return value as Static<S>;
}

function valueAt(root: unknown, pointer: string): unknown {
  let v = root;
  for (const part of pointer.split('/').slice(1)) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/**
 * An options object schema: `Type.Object(properties)` that rejects unknown
 * keys (a typo must not silently do nothing).
 *
 * @example
 * const schema = options({ ttl: Type.Integer({ minimum: 0, maximum: 86_400, default: 300, description: 'TTL of answers (s)' }) });
 */
export function options<P extends Parameters<typeof Type.Object>[0]>(properties: P, meta: { description?: string; default?: object } = {}) {
  return Type.Object(properties, { additionalProperties: false, ...meta });
}

/** The plain JSON Schema of a TypeBox schema (TypeBox's symbol keys dropped), for publishing. */
export function toJsonSchema(schema: TSchema): Record<string, unknown> {
  return JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
}
