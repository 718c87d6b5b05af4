/**
 * `definePlugin`: a plugin declared once — name, options schema, and how to
 * set it up — becomes a factory that validates options (one validator, one
 * error vocabulary) and carries its schema for the app's published JSON
 * Schema and the generated docs.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { ConfigError } from '../errors.js';
import { type OptionsInput, parseOptions } from './options.js';
import type { HeimdallPlugin, InstanceOptions, PluginFactory } from './types.js';

/** What `setup` returns: the plugin minus what `definePlugin` fills in. */
export type PluginParts = Omit<HeimdallPlugin, 'name' | 'kind' | 'options'>;

/** Declaration of a plugin. */
export interface PluginDefinition<S extends TSchema> {
  /** The plugin's name: default instance name, metrics prefix, admin path segment. */
  readonly name: string;
  /** One line about it (docs, `--help`). */
  readonly description?: string;
  /**
   * Metric name prefix of the instance named like the plugin (default
   * `heimdall_<name>_`). A plugin whose metrics are resolver-wide, such as
   * the app's `metrics` (`heimdall_requests_total`), sets `heimdall_`. Other
   * instances always get `heimdall_<instance>_`, so they never collide.
   */
  readonly metricsPrefix?: string;
  /** `observer` (metrics, logs) or `admission` (access control, rate limits): see `HeimdallPlugin.role`. */
  readonly role?: 'observer' | 'admission';
  /** Options schema; build it with `options({...})` so unknown keys are rejected. Default: no options. */
  readonly options?: S;
  /**
   * Called once per instance with the validated options (defaults filled
   * in), the instance name, and `path`, where the options live in a config
   * (`cache`, `plugins[2].options`): prefix a cross-field `ConfigError` with
   * it. Keep it synchronous and cheap: async work belongs in `start`.
   */
  setup(options: Static<S>, instance: { readonly name: string; readonly path: string }): PluginParts;
}

const NO_OPTIONS = Type.Object({}, { additionalProperties: false });

/**
 * Declares a plugin and returns its factory.
 *
 * @example
 * export const whoami = definePlugin({
 *   name: 'whoami',
 *   options: options({ ttl: Type.Integer({ minimum: 0, maximum: 86_400, default: 0 }) }),
 *   setup: ({ ttl }) => ({
 *     middleware: () => (ctx) => ctx.answer([{ name: ctx.query.qname, type: 'A', ttl, data: ctx.client.address }]),
 *   }),
 * });
 * whoami({ ttl: 60 });                 // instance named 'whoami'
 * whoami({ ttl: 60 }, { name: 'me' }); // a second one, named 'me'
 */
export function definePlugin<S extends TSchema = typeof NO_OPTIONS>(
  definition: PluginDefinition<S>,
): PluginFactory<OptionsInput<Static<S>>> & {
  readonly pluginName: string;
  readonly schema: S;
} {
  const { name: kind, setup } = definition;
  if (definition.metricsPrefix !== undefined && !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(definition.metricsPrefix)) {
    throw new TypeError(`definePlugin: metricsPrefix must be a valid Prometheus name prefix, got ${JSON.stringify(definition.metricsPrefix)}`);
  }
  if (typeof kind !== 'string' || !/^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*$/i.test(kind)) {
    throw new TypeError(`definePlugin: name must be a package-like name, got ${JSON.stringify(kind)}`);
  }
  const schema = (definition.options ?? NO_OPTIONS) as S;
  const factory = (input?: OptionsInput<Static<S>>, instance: InstanceOptions = {}): HeimdallPlugin => {
    const name = instance.name ?? kind;
    if (typeof name !== 'string' || name.length === 0) throw new ConfigError(instance.path ?? kind, 'instance name must be a non-empty string', name);
    const path = instance.path ?? name;
    const options = parseOptions(schema, input, path);
    const parts = setup(options, { name, path });
    const plugin: HeimdallPlugin = { ...parts, name, kind, options, ...(definition.role !== undefined ? { role: definition.role } : {}) };
    return name === kind && definition.metricsPrefix !== undefined ? { ...plugin, metricsPrefix: definition.metricsPrefix } : plugin;
  };
  return Object.assign(factory, { pluginName: kind, schema, description: definition.description });
}
