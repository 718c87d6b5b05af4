/**
 * A small reader for plugin options: every getter checks one field and
 * throws `ConfigError` naming its full path, and `done()` rejects unknown
 * keys (a typo must not silently do nothing).
 */
import { ConfigError } from '../errors.js';

/** Bounds of a numeric option. */
export interface NumberBounds<D extends number | undefined = number> {
  readonly default?: D;
  readonly min?: number;
  readonly max?: number;
}

/**
 * Reads and checks a plugin's options object.
 *
 * @example
 * export default function geo(options: GeoOptions = {}): HeimdallPlugin {
 *   const o = new OptionsReader('geo', options);
 *   const database = o.string('database');                       // required
 *   const ttl = o.integer('ttl', { default: 300, min: 0, max: 86400 });
 *   const mode = o.oneOf('mode', ['strict', 'loose'] as const, 'strict');
 *   o.done();                                                    // unknown keys → ConfigError
 *   …
 * }
 */
export class OptionsReader {
  private readonly seen = new Set<string>();
  private readonly values: Record<string, unknown>;

  /**
   * @param path where these options live (`geo`, `plugins[2].options`), the prefix of every error
   * @param options the value to read; `undefined`/`null` read as `{}`
   */
  constructor(
    readonly path: string,
    options: unknown,
  ) {
    if (options === undefined || options === null) options = {};
    if (typeof options !== 'object' || Array.isArray(options)) throw new ConfigError(path, 'options must be an object', options);
    this.values = options as Record<string, unknown>;
  }

  private take(key: string): unknown {
    this.seen.add(key);
    return this.values[key];
  }

  private at(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  /** The raw value of `key` (marked as known), unchecked. */
  raw(key: string): unknown {
    return this.take(key);
  }

  /** An integer in bounds; required unless a default is given. */
  integer(key: string, bounds?: NumberBounds<number>): number;
  integer(key: string, bounds: NumberBounds<undefined>): number | undefined;
  integer(key: string, bounds: NumberBounds<number | undefined> = {}): number | undefined {
    const v = this.number(key, bounds as NumberBounds<number>);
    if (v !== undefined && !Number.isInteger(v)) throw new ConfigError(this.at(key), 'must be an integer', v);
    return v;
  }

  /** A finite number in bounds; required unless a default is given. */
  number(key: string, bounds?: NumberBounds<number>): number;
  number(key: string, bounds: NumberBounds<undefined>): number | undefined;
  number(key: string, bounds: NumberBounds<number | undefined> = {}): number | undefined {
    const v = this.take(key);
    if (v === undefined) {
      if ('default' in bounds) return bounds.default;
      throw new ConfigError(this.at(key), 'is required');
    }
    const { min = Number.NEGATIVE_INFINITY, max = Number.POSITIVE_INFINITY } = bounds;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      const range = Number.isFinite(min) || Number.isFinite(max) ? ` in ${Number.isFinite(min) ? min : '-∞'}..${Number.isFinite(max) ? max : '∞'}` : '';
      throw new ConfigError(this.at(key), `must be a number${range}`, v);
    }
    return v;
  }

  /** A string (non-empty unless `allowEmpty`); required unless a default is given. */
  string(key: string, options?: { default?: string; allowEmpty?: boolean; pattern?: RegExp; maxLength?: number }): string;
  string(key: string, options: { default: undefined; allowEmpty?: boolean; pattern?: RegExp; maxLength?: number }): string | undefined;
  string(key: string, options: { default?: string; allowEmpty?: boolean; pattern?: RegExp; maxLength?: number } = {}): string | undefined {
    const v = this.take(key);
    if (v === undefined) {
      if ('default' in options) return options.default;
      throw new ConfigError(this.at(key), 'is required');
    }
    if (typeof v !== 'string') throw new ConfigError(this.at(key), 'must be a string', v);
    if (v === '' && !options.allowEmpty) throw new ConfigError(this.at(key), 'must not be empty', v);
    if (options.maxLength !== undefined && v.length > options.maxLength) throw new ConfigError(this.at(key), `must be at most ${options.maxLength} characters`, v);
    if (options.pattern !== undefined && !options.pattern.test(v)) throw new ConfigError(this.at(key), `must match ${options.pattern}`, v);
    return v;
  }

  /** A boolean; `def` when absent. */
  boolean(key: string, def: boolean): boolean {
    const v = this.take(key);
    if (v === undefined) return def;
    if (typeof v !== 'boolean') throw new ConfigError(this.at(key), 'must be true or false', v);
    return v;
  }

  /** One of `choices`; `def` when absent (required when `def` is undefined). */
  oneOf<T extends string>(key: string, choices: readonly T[], def?: T): T {
    const v = this.take(key);
    if (v === undefined) {
      if (def !== undefined) return def;
      throw new ConfigError(this.at(key), `is required (one of ${choices.map((c) => `'${c}'`).join(', ')})`);
    }
    if (!choices.includes(v as T)) throw new ConfigError(this.at(key), `must be one of ${choices.map((c) => `'${c}'`).join(', ')}`, v);
    return v as T;
  }

  /**
   * An array, each item checked by `item(value, path)` (which throws
   * `ConfigError`); `def` when absent. At most `maxItems` items (default 100 000).
   */
  array<T>(key: string, item: (value: unknown, path: string) => T, options: { default?: T[]; maxItems?: number } = {}): T[] {
    const v = this.take(key);
    if (v === undefined) {
      if (options.default !== undefined) return options.default;
      throw new ConfigError(this.at(key), 'is required');
    }
    if (!Array.isArray(v)) throw new ConfigError(this.at(key), 'must be an array', v);
    const max = options.maxItems ?? 100_000;
    if (v.length > max) throw new ConfigError(this.at(key), `must have at most ${max} items`, v.length);
    return v.map((x, i) => item(x, `${this.at(key)}[${i}]`));
  }

  /** A nested options object, read with its own reader (call `done()` on it too). */
  object(key: string): OptionsReader {
    return new OptionsReader(this.at(key), this.take(key));
  }

  /** Throws `ConfigError` for the first key no getter asked for. */
  done(): void {
    for (const key of Object.keys(this.values)) {
      if (!this.seen.has(key) && this.values[key] !== undefined) throw new ConfigError(this.at(key), 'unknown option', this.values[key]);
    }
  }
}
