/**
 * The reference app's configuration, declared once: {@link appConfigSchema}
 * (TypeBox, i.e. JSON Schema) gives the TypeScript types, the validation
 * (core's `parseOptions`: one validator, errors naming the exact field), the
 * published JSON Schema (`schema/heimdall.schema.json`, generated from it
 * and the plugins' schemas by `scripts/gen-schema.mjs`) and the option
 * tables of docs/config.md. Also: the embedded default, loading a JSON or
 * YAML file, and applying command-line flags on top.
 */
import process from 'node:process';
import { readFileSync } from 'node:fs';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { ConfigError, parseOptions, type Static, Type } from '@heimdall/core';
import { resolverSettingsSchema } from '@heimdall/core/pipeline';
import { httpsSettingsSchema, tcpSettingsSchema, tlsSettingsSchema, udpSettingsSchema } from '@heimdall/core/transport';
import { parse as parseYaml } from 'yaml';

const HOST_PORT = {
  pattern: '^(\\[[0-9A-Za-z:.%_-]+\\]|[^:\\[\\]\\s]+):[0-9]{1,5}$',
  errorMessage: 'must be ADDRESS:PORT (IPv6 in brackets: [::1]:5353)',
} as const;

/** One entry of the `plugins` list. */
export const pluginEntrySchema = Type.Object(
  {
    use: Type.String({
      minLength: 1,
      maxLength: 1024,
      description: "Built-in plugin name, npm package name, or path (`./my-plugin.js`, resolved from the config file's directory).",
    }),
    name: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 128,
        pattern: '^(@[A-Za-z0-9][\\w.-]*/)?[A-Za-z0-9][\\w.-]*$',
        errorMessage: 'must be letters, digits, ".", "_" or "-" (optionally @scope/…)',
        description:
          "Instance name (default: the plugin's name): give one to run two instances of a plugin. Names metrics (`heimdall_<name>_…`), logs and admin paths.",
      }),
    ),
    enabled: Type.Optional(Type.Boolean({ default: true, description: 'Set false to keep the entry in the file but out of the chain.' })),
    options: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: "The plugin's options, validated by its schema." })),
  },
  { additionalProperties: false },
);

/** The configuration file's schema: the app's own fields plus core's resolver settings, at the top level. */
export const appConfigSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String({ description: 'Path or URL of the JSON Schema, for editor completion.' })),
    listen: Type.Array(Type.String({ minLength: 3, maxLength: 64, ...HOST_PORT }), {
      minItems: 1,
      maxItems: 64,
      default: ['127.0.0.1:5353'],
      description: 'Addresses to serve DNS on (`ADDR:PORT`, IPv6 in brackets: `[::1]:53`). Port 0 picks a free port (printed in the `listening` log line).',
    }),
    transports: Type.Array(Type.Union([Type.Literal('udp'), Type.Literal('tcp')]), {
      minItems: 1,
      uniqueItems: true,
      default: ['udp', 'tcp'],
      description: 'Transports opened on each listen address.',
    }),
    udp: Type.Object(udpSettingsSchema.properties, {
      additionalProperties: false,
      default: {},
      description: "UDP listener limits (core's listener settings).",
    }),
    tcp: Type.Object(tcpSettingsSchema.properties, {
      additionalProperties: false,
      default: {},
      description: "TCP listener limits (core's listener settings, RFC 7766).",
    }),
    ...resolverSettingsSchema.properties,
    dot: Type.Object(
      {
        listen: Type.Array(Type.String({ minLength: 3, maxLength: 64, ...HOST_PORT }), {
          maxItems: 64,
          default: [],
          description: 'Addresses to serve DNS over TLS on (RFC 7858; `ADDR:PORT`, usually port 853). Needs `cert` and `key` (or `--tls-cert`/`--tls-key`).',
        }),
        ...tlsSettingsSchema.properties,
      },
      {
        additionalProperties: false,
        default: {},
        description:
          "DNS over TLS listeners (core's `tls` listener: TCP's limits plus certificate, handshake and padding). `cert`/`key` paths resolve from the config file's directory.",
      },
    ),
    doh: Type.Object(
      {
        listen: Type.Array(Type.String({ minLength: 3, maxLength: 64, ...HOST_PORT }), {
          maxItems: 64,
          default: [],
          description: 'Addresses to serve DNS over HTTPS on (RFC 8484; `ADDR:PORT`, usually port 443). Needs `cert` and `key` (or `--tls-cert`/`--tls-key`).',
        }),
        ...httpsSettingsSchema.properties,
      },
      {
        additionalProperties: false,
        default: {},
        description:
          "DNS over HTTPS listeners (core's `https` listener on node:http2, HTTP/1.1 allowed). `cert`/`key` paths resolve from the config file's directory.",
      },
    ),
    logLevel: Type.Union(
      [
        Type.Literal('fatal'),
        Type.Literal('error'),
        Type.Literal('warn'),
        Type.Literal('info'),
        Type.Literal('debug'),
        Type.Literal('trace'),
        Type.Literal('silent'),
      ],
      { default: 'info', description: 'pino log level.' },
    ),
    workers: Type.Union([Type.Integer({ minimum: 1, maximum: 256 }), Type.Literal('auto')], {
      default: 1,
      description: 'Processes serving the same ports (node:cluster): 1..256, or "auto" for one per CPU.',
    }),
    openResolver: Type.Boolean({
      default: false,
      description:
        'Answer clients on any network. By default (false), when the chain has no enabled `acl` plugin, the app puts one with the `localOnly` preset first in the chain (after metrics, query-log and stats): clients outside loopback and private networks (RFC 1918, 100.64/10, link-local, fc00::/7) get REFUSED. An `acl` entry of your own replaces that default.',
    }),
    admin: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'Serve the admin HTTP API.' }),
        listen: Type.String({ minLength: 3, maxLength: 64, ...HOST_PORT, default: '127.0.0.1:8053', description: 'ADDR:PORT of the admin server.' }),
        token: Type.Optional(
          Type.String({
            minLength: 8,
            maxLength: 4096,
            description: 'When set, every endpoint except /health and /ready requires `Authorization: Bearer <token>`.',
          }),
        ),
        collectDefaultMetrics: Type.Boolean({ default: true, description: 'Export Node process metrics (CPU, memory, event loop lag, GC).' }),
        allowedHosts: Type.Array(Type.String({ minLength: 1, maxLength: 253 }), {
          maxItems: 64,
          default: [],
          description:
            'Host names (or addresses) accepted in the `Host` header of admin requests besides loopback names and addresses and the bound address (every local address when bound to 0.0.0.0 or ::); `"*"` accepts any. Other names are refused (DNS rebinding).',
        }),
      },
      { additionalProperties: false, default: {}, description: 'The admin HTTP server (/metrics, /health, /ready, plugin actions).' },
    ),
    plugins: Type.Array(pluginEntrySchema, {
      maxItems: 256,
      default: [],
      description:
        'The middleware chain, in order. `use` is a built-in name (metrics, query-log, stats, acl, ratelimit, rrl, special-use, blocking, cache, dedup, upstream, rewrite), a package name or a path to a module exporting a plugin factory.',
    }),
  },
  { additionalProperties: false },
);

/** One entry of the `plugins` list. */
export type PluginEntry = Static<typeof pluginEntrySchema>;

/** The configuration after validation, every default applied. */
export type AppConfig = Static<typeof appConfigSchema>;

type Input<T> = T extends (infer E)[] ? Input<E>[] : T extends object ? { [K in keyof T]?: Input<T[K]> } : T;

/** The configuration file's shape, as written (every field optional; see {@link appConfigSchema} for meanings and bounds). */
export type HeimdallConfig = { [K in keyof AppConfig]?: K extends 'plugins' ? PluginEntry[] : Input<AppConfig[K]> };

/** The configuration with every default applied (what the app runs). */
export type ResolvedConfig = Omit<AppConfig, '$schema'> & {
  /** Directory that relative plugin paths and list paths resolve from. */
  baseDir: string;
  /** The config file, when one was given. */
  file?: string;
};

/**
 * A configuration problem: core's `ConfigError` (code `CONFIG`), whose
 * `path` is the field (`plugins[2].options.maxTtl`) and message
 * `path: reason`. Exit code 2.
 */
export const AppConfigError = ConfigError;
export type AppConfigError = ConfigError;

/** Upstreams of the embedded default: Cloudflare and Quad9 over UDP with TCP fallback. */
export const DEFAULT_UPSTREAMS: readonly string[] = ['1.1.1.1', '9.9.9.9'];

/**
 * The embedded default (what `heimdall` with no flags runs): 127.0.0.1:5353
 * over UDP and TCP, admin on 127.0.0.1:8053, and the chain
 * metrics → stats (the dashboard's numbers) → special-use → cache → dedup →
 * upstream (public resolvers).
 * Blocking joins the chain, before the cache, when lists are given.
 */
export function defaultConfig(): HeimdallConfig {
  return {
    listen: ['127.0.0.1:5353'],
    admin: { enabled: true, listen: '127.0.0.1:8053' },
    logLevel: 'info',
    workers: 1,
    plugins: [
      { use: 'metrics' },
      { use: 'stats' },
      { use: 'special-use' },
      { use: 'cache' },
      { use: 'dedup' },
      { use: 'upstream', options: { servers: [...DEFAULT_UPSTREAMS] } },
    ],
  };
}

const SCHEMA_URL = new URL('../schema/heimdall.schema.json', import.meta.url);

/** The published JSON Schema (generated: the app's schema plus every built-in plugin's options), parsed. */
export function configSchema(): Record<string, unknown> {
  return JSON.parse(readFileSync(SCHEMA_URL, 'utf8'));
}

/**
 * Validates a configuration against {@link appConfigSchema} and returns it
 * with every default applied (the input is not modified). Plugin options
 * are only checked to be objects here: each plugin's factory validates its
 * own (see `plugins/registry.ts`). Throws `ConfigError` naming the field.
 */
export function validateConfig(config: unknown): AppConfig {
  if (typeof config !== 'object' || config === null || Array.isArray(config))
    throw new ConfigError('', 'the configuration must be an object (JSON or YAML mapping)', config);
  return parseOptions(appConfigSchema, config, '');
}

/** Reads a JSON (`.json`) or YAML (anything else) config file. Throws `ConfigError` on unreadable or unparseable files. */
export function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError('--config', `cannot read ${file}: ${(err as Error).message}`);
  }
  const ext = extname(file).toLowerCase();
  try {
    if (ext === '.json') return JSON.parse(text);
    return parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError('--config', `${file} is not valid ${ext === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`);
  }
}

/** Command-line overrides (see `args.ts`). Every field present replaces the config's. */
export interface Overrides {
  listen?: string[];
  upstreams?: string[];
  blocklists?: string[];
  /** `--cache-dir`: the persistence plugin's `dir` (an absolute path). */
  cacheDir?: string;
  /** `--redis` (or HEIMDALL_REDIS_URL/REDIS_URL): the redis plugin's `url`. */
  redisUrl?: string;
  admin?: string;
  workers?: number | 'auto';
  logLevel?: AppConfig['logLevel'];
  /** `--open-resolver`: answer every client (no default `localOnly` acl). */
  openResolver?: boolean;
  /** `--rate-limit N`: the ratelimit plugin with `rate: N` (added after the acl, or enabled). */
  rateLimit?: number;
  /** `--dot ADDR:PORT` (repeatable): `dot.listen`. */
  dot?: string[];
  /** `--doh ADDR:PORT` (repeatable): `doh.listen`. */
  doh?: string[];
  /** `--tls-cert FILE` / `--tls-key FILE` (absolute paths): `cert`/`key` of `dot` and `doh`. */
  tlsCert?: string;
  tlsKey?: string;
}

const BLOCKING_BEFORE = new Set(['cache', 'dedup', 'upstream']);

const isUrl = (s: string): boolean => /^https?:\/\//i.test(s);

/**
 * Makes the relative file paths in built-in plugins' options absolute,
 * resolved from `baseDir` (the config file's directory): blocking list
 * sources and `cacheDir`, the query log's `output`, persistence's `dir`.
 */
export function resolvePluginPaths(entries: PluginEntry[], baseDir: string): PluginEntry[] {
  const abs = (p: unknown): unknown => (typeof p === 'string' && p !== '' && !isUrl(p) && !isAbsolute(p) ? resolve(baseDir, p) : p);
  return entries.map((entry) => {
    const options = entry.options;
    if (options === undefined || typeof options !== 'object' || options === null) return entry;
    if (entry.use === 'query-log' && typeof options.output === 'string' && options.output !== 'stdout') {
      return { ...entry, options: { ...options, output: abs(options.output) } };
    }
    if (entry.use === 'persistence' && typeof options.dir === 'string') return { ...entry, options: { ...options, dir: abs(options.dir) } };
    if (entry.use === 'blocking') {
      const out: Record<string, unknown> = { ...options };
      if (typeof options.cacheDir === 'string') out.cacheDir = abs(options.cacheDir);
      const groups = options.groups;
      if (typeof groups === 'object' && groups !== null && !Array.isArray(groups)) {
        const g2: Record<string, unknown> = {};
        for (const [name, group] of Object.entries(groups as Record<string, unknown>)) {
          if (typeof group !== 'object' || group === null) {
            g2[name] = group;
            continue;
          }
          const gr = { ...(group as Record<string, unknown>) };
          for (const kind of ['block', 'allow']) {
            const lists = gr[kind];
            if (!Array.isArray(lists)) continue;
            gr[kind] = lists.map((l: unknown) =>
              typeof l === 'string'
                ? abs(l)
                : typeof l === 'object' && l !== null && typeof (l as { source?: unknown }).source === 'string'
                  ? { ...l, source: abs((l as { source: string }).source) }
                  : l,
            );
          }
          g2[name] = gr;
        }
        out.groups = g2;
      }
      return { ...entry, options: out };
    }
    return entry;
  });
}

/** Applies command-line flags on top of a config (a copy is returned). */
export function applyOverrides(config: HeimdallConfig, o: Overrides): HeimdallConfig {
  const out: HeimdallConfig = structuredClone(config);
  if (o.listen) out.listen = o.listen;
  // Encrypted listeners: --dot/--doh replace the addresses, --tls-cert/--tls-key the pair of both.
  if (o.dot) out.dot = { ...(out.dot ?? {}), listen: o.dot };
  if (o.doh) out.doh = { ...(out.doh ?? {}), listen: o.doh };
  for (const section of ['dot', 'doh'] as const) {
    if (o.tlsCert !== undefined) out[section] = { ...(out[section] ?? {}), cert: o.tlsCert };
    if (o.tlsKey !== undefined) out[section] = { ...(out[section] ?? {}), key: o.tlsKey };
  }
  if (o.workers !== undefined) out.workers = o.workers;
  if (o.logLevel) out.logLevel = o.logLevel;
  if (o.openResolver) out.openResolver = true;
  if (o.admin !== undefined) out.admin = { ...(out.admin ?? {}), enabled: o.admin !== 'off', ...(o.admin !== 'off' ? { listen: o.admin } : {}) };
  const plugins = (out.plugins ??= []);
  if (o.upstreams) {
    const entry = plugins.find((p) => p.use === 'upstream');
    if (entry) entry.options = { ...(entry.options ?? {}), servers: o.upstreams };
    else plugins.push({ use: 'upstream', options: { servers: o.upstreams } });
  }
  if (o.blocklists) {
    // Paths given on the command line are relative to the current directory.
    o = { ...o, blocklists: o.blocklists.map((l) => (isUrl(l) ? l : resolve(l))) };
    const entry = plugins.find((p) => p.use === 'blocking');
    if (entry) {
      // The flags replace the block lists of the `default` group; other groups stay.
      entry.enabled = true;
      const options = (entry.options ??= {});
      const groups = (options.groups ??= {}) as Record<string, Record<string, unknown>>;
      groups.default = { ...(groups.default ?? {}), block: o.blocklists };
    } else {
      let at = plugins.findIndex((p) => BLOCKING_BEFORE.has(p.use));
      if (at < 0) at = plugins.length;
      plugins.splice(at, 0, { use: 'blocking', options: { groups: { default: { block: o.blocklists } } } });
    }
  }
  if (o.cacheDir !== undefined) {
    // The disk tier: enable (or add) the persistence plugin, before the cache.
    const entry = plugins.find((p) => p.use === 'persistence');
    if (entry) {
      entry.enabled = true;
      entry.options = { ...(entry.options ?? {}), dir: o.cacheDir };
    } else {
      let at = plugins.findIndex((p) => p.use === 'cache');
      if (at < 0) at = plugins.findIndex((p) => p.use === 'dedup' || p.use === 'upstream');
      if (at < 0) at = plugins.length;
      plugins.splice(at, 0, { use: 'persistence', options: { dir: o.cacheDir } });
    }
  }
  if (o.redisUrl !== undefined) {
    // The shared tier: enable (or add) the redis plugin after persistence, else after the cache (tiers are consulted in chain order).
    const entry = plugins.find((p) => p.use === 'redis');
    if (entry) {
      entry.enabled = true;
      entry.options = { ...(entry.options ?? {}), url: o.redisUrl };
    } else {
      let at = plugins.findIndex((p) => p.use === 'persistence' && p.enabled !== false);
      if (at < 0) at = plugins.findIndex((p) => p.use === 'cache');
      at = at < 0 ? plugins.findIndex((p) => p.use === 'dedup' || p.use === 'upstream') : at + 1;
      if (at < 0) at = plugins.length;
      plugins.splice(at, 0, { use: 'redis', options: { url: o.redisUrl } });
    }
  }
  if (o.rateLimit !== undefined) {
    // Query rate limiting: first in the chain after the observers and the acl, so excess queries cost nothing else.
    const entry = plugins.find((p) => p.use === 'ratelimit');
    if (entry) {
      entry.enabled = true;
      entry.options = { ...(entry.options ?? {}), rate: o.rateLimit };
    } else {
      let at = protectionIndex(plugins);
      while (at < plugins.length && plugins[at]!.use === 'acl') at++;
      plugins.splice(at, 0, { use: 'ratelimit', options: { rate: o.rateLimit } });
    }
  }
  return out;
}

/** Plugins that observe every query (counters, logs, the dashboard): the protection plugins go after them. */
export const OBSERVER_PLUGINS: ReadonlySet<string> = new Set(['metrics', 'query-log', 'stats']);

/** Index after the leading observer plugins: where the acl and the rate limiter go. */
function protectionIndex(plugins: readonly { use: string }[]): number {
  let at = 0;
  while (at < plugins.length && OBSERVER_PLUGINS.has(plugins[at]!.use)) at++;
  return at;
}

/** Core's resolver settings (`queryTimeoutMs`, `onUnanswered`, …: every field of core's `resolverSettingsSchema`) of a configuration, for `createResolver`. */
export function resolverSettings(config: ResolvedConfig): Static<typeof resolverSettingsSchema> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(resolverSettingsSchema.properties)) out[key] = config[key as keyof ResolvedConfig];
  return out as Static<typeof resolverSettingsSchema>;
}

/**
 * Builds the configuration the app runs: the file (or the embedded default),
 * then flags, then validation with defaults, then the listen addresses.
 * Throws `ConfigError` naming the field.
 */
export function resolveConfig(file: string | undefined, overrides: Overrides = {}): ResolvedConfig {
  // The file's own errors are reported with the file's paths, before flags change anything.
  const fromFile = file === undefined ? defaultConfig() : validateConfig(readConfigFile(file));
  const { $schema: _, ...c } = validateConfig(applyOverrides(fromFile as HeimdallConfig, overrides));
  for (let i = 0; i < c.listen.length; i++) parseHostPort(c.listen[i]!, `listen[${i}]`);
  for (const section of ['dot', 'doh'] as const) {
    const enc = c[section];
    for (let i = 0; i < enc.listen.length; i++) parseHostPort(enc.listen[i]!, `${section}.listen[${i}]`);
    const what = section === 'dot' ? 'TLS' : 'HTTPS';
    if (enc.listen.length > 0 && enc.cert === undefined)
      throw new ConfigError(`${section}.cert`, `is required when serving DNS over ${what} (or --tls-cert FILE)`);
    if (enc.listen.length > 0 && enc.key === undefined)
      throw new ConfigError(`${section}.key`, `is required when serving DNS over ${what} (or --tls-key FILE)`);
  }
  if (c.admin.enabled) parseHostPort(c.admin.listen, 'admin.listen');
  const baseDir = file === undefined ? process.cwd() : dirname(resolve(file));
  // Certificate paths from the file resolve from its directory (flags are already absolute).
  for (const section of ['dot', 'doh'] as const) {
    const enc = c[section];
    if (enc.cert !== undefined) enc.cert = resolve(baseDir, enc.cert);
    if (enc.key !== undefined) enc.key = resolve(baseDir, enc.key);
  }
  return { ...c, plugins: resolvePluginPaths(c.plugins, baseDir), baseDir, file: file === undefined ? undefined : resolve(file) };
}

/** `127.0.0.1:53`, `[::1]:53`, `localhost:53` → host and port. Throws `ConfigError` naming `path`. */
export function parseHostPort(value: string, path: string): { host: string; port: number } {
  const m = /^\[([0-9a-fA-F:.%\w-]+)\]:(\d{1,5})$/.exec(value) ?? /^([^:[\]\s]+):(\d{1,5})$/.exec(value);
  if (!m) throw new ConfigError(path, `must be ADDRESS:PORT (IPv6 in brackets: [::1]:5353), got ${JSON.stringify(value)}`);
  const port = Number(m[2]);
  if (port > 65535) throw new ConfigError(path, `port must be an integer in 0..65535, got ${port}`);
  let host = m[1]!;
  if (host === 'localhost') host = '127.0.0.1';
  return { host, port };
}

/** What a SIGHUP can apply from a re-read config file. */
export interface ReloadPlan {
  /** New log level, when it changed. */
  logLevel?: ResolvedConfig['logLevel'];
  /** Top-level fields that changed but need a restart (listeners, the chain, limits). */
  needsRestart: string[];
}

/** Compares the running configuration with a re-read one: the log level applies live, the rest needs a restart. */
export function planReload(running: ResolvedConfig, next: ResolvedConfig): ReloadPlan {
  const plan: ReloadPlan = { needsRestart: [] };
  if (next.logLevel !== running.logLevel) plan.logLevel = next.logLevel;
  for (const key of Object.keys(next) as Array<keyof ResolvedConfig>) {
    if (key === 'logLevel') continue;
    if (JSON.stringify(next[key]) !== JSON.stringify(running[key])) plan.needsRestart.push(key);
  }
  return plan;
}
