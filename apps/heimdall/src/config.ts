/**
 * The reference app's configuration: the embedded default, loading a JSON or
 * YAML file, applying command-line flags on top, and validating the result
 * against the published JSON Schema (`schema/heimdall.schema.json`) with
 * errors that name the exact field and the reason.
 */
import { readFileSync } from 'node:fs';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';

/** One entry of the `plugins` list. */
export interface PluginEntry {
  /** Built-in name (`cache`), package name (`@acme/heimdall-geo`) or path (`./geo.js`). */
  use: string;
  /** Keep the entry but out of the chain. Default true. */
  enabled?: boolean;
  /** Passed to the plugin's factory. */
  options?: Record<string, unknown>;
}

/** The configuration file's shape (see the JSON Schema for every field's meaning and bounds). */
export interface HeimdallConfig {
  $schema?: string;
  listen?: string[];
  transports?: Array<'udp' | 'tcp'>;
  udp?: { maxUdpPayload?: number; recvBufferSize?: number; sendBufferSize?: number };
  tcp?: {
    idleTimeoutMs?: number;
    frameTimeoutMs?: number;
    maxConnections?: number;
    maxConnectionsPerClient?: number;
    maxMessageSize?: number;
    maxInFlightPerConnection?: number;
  };
  queryTimeoutMs?: number;
  drainTimeoutMs?: number;
  ednsPayloadSize?: number;
  onUnanswered?: 'servfail' | 'refused';
  logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  workers?: number | 'auto';
  admin?: { enabled?: boolean; listen?: string; token?: string; collectDefaultMetrics?: boolean };
  plugins?: PluginEntry[];
}

/** The configuration with every default applied (what the app runs). */
export interface ResolvedConfig extends Required<Omit<HeimdallConfig, '$schema' | 'udp' | 'tcp' | 'admin'>> {
  udp: NonNullable<HeimdallConfig['udp']>;
  tcp: NonNullable<HeimdallConfig['tcp']>;
  admin: { enabled: boolean; listen: string; token?: string; collectDefaultMetrics: boolean };
  /** Directory that relative plugin paths and list paths resolve from. */
  baseDir: string;
  /** The config file, when one was given. */
  file?: string;
}

/** A configuration problem. `path` is the field (`plugins[2].options.ttl`), `message` says why. Exit code 2. */
export class AppConfigError extends Error {
  readonly path: string;
  constructor(path: string, reason: string) {
    super(path ? `${path}: ${reason}` : reason);
    this.name = 'AppConfigError';
    this.path = path;
  }
}

/** Upstreams of the embedded default: Cloudflare and Quad9 over UDP with TCP fallback. */
export const DEFAULT_UPSTREAMS: readonly string[] = ['1.1.1.1', '9.9.9.9'];

/**
 * The embedded default (what `heimdall` with no flags runs): 127.0.0.1:5353
 * over UDP and TCP, admin on 127.0.0.1:8053, and the chain
 * metrics → special-use → cache → dedup → upstream (public resolvers).
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
      { use: 'special-use' },
      { use: 'cache' },
      { use: 'dedup' },
      { use: 'upstream', options: { servers: [...DEFAULT_UPSTREAMS] } },
    ],
  };
}

const SCHEMA_URL = new URL('../schema/heimdall.schema.json', import.meta.url);

/** The published JSON Schema, parsed. */
export function configSchema(): Record<string, unknown> {
  return JSON.parse(readFileSync(SCHEMA_URL, 'utf8'));
}

/** `/plugins/2/options/ttl` → `plugins[2].options.ttl`. */
export function pointerToPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(part)) out += `[${part}]`;
    else out += out ? `.${part}` : part;
  }
  return out;
}

function describe(err: ErrorObject): { path: string; reason: string } {
  let path = pointerToPath(err.instancePath);
  const join = (p: string, k: string): string => (p ? `${p}.${k}` : k);
  switch (err.keyword) {
    case 'additionalProperties': {
      const key = (err.params as { additionalProperty: string }).additionalProperty;
      return { path: join(path, key), reason: 'unknown field' };
    }
    case 'required': {
      const key = (err.params as { missingProperty: string }).missingProperty;
      return { path: join(path, key), reason: 'is required' };
    }
    case 'enum':
      return { path, reason: `must be one of ${(err.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}` };
    case 'oneOf':
      if (path === 'workers') return { path, reason: 'must be an integer from 1 to 256 or "auto"' };
      break;
    default:
      break;
  }
  if (!path) path = '(root)';
  return { path, reason: err.message ?? 'is invalid' };
}

/** Validates `config` against the schema; throws {@link AppConfigError} listing every problem (first one's path in `.path`). */
export function validateConfig(config: unknown): asserts config is HeimdallConfig {
  // Compiled per call and dropped: validation runs once or twice at start, and a kept validator costs ~10 MB of heap.
  const validator = new Ajv({ allErrors: true, strict: false }).compile(configSchema());
  if (validator(config)) return;
  const seen = new Set<string>();
  const problems: Array<{ path: string; reason: string }> = [];
  for (const err of validator.errors ?? []) {
    if (err.keyword === 'if' || (err.keyword === 'const' && err.instancePath === '/workers') || (err.keyword === 'type' && err.instancePath === '/workers')) continue;
    const d = describe(err);
    const key = `${d.path}: ${d.reason}`;
    if (!seen.has(key)) {
      seen.add(key);
      problems.push(d);
    }
  }
  if (problems.length === 0) problems.push({ path: '(root)', reason: 'is invalid' });
  const first = problems[0]!;
  const e = new AppConfigError(first.path, problems.length === 1 ? first.reason : `${first.reason}${problems.slice(1).map((p) => `\n  ${p.path}: ${p.reason}`).join('')}`);
  throw e;
}

/** Reads a JSON (`.json`) or YAML (anything else) config file. Throws {@link AppConfigError} on unreadable or unparseable files. */
export function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new AppConfigError('--config', `cannot read ${file}: ${(err as Error).message}`);
  }
  const ext = extname(file).toLowerCase();
  try {
    if (ext === '.json') return JSON.parse(text);
    return parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new AppConfigError('--config', `${file} is not valid ${ext === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`);
  }
}

/** Command-line overrides (see `args.ts`). Every field present replaces the config's. */
export interface Overrides {
  listen?: string[];
  upstreams?: string[];
  blocklists?: string[];
  admin?: string;
  workers?: number | 'auto';
  logLevel?: HeimdallConfig['logLevel'];
}

const BLOCKING_BEFORE = new Set(['cache', 'dedup', 'upstream']);

const isUrl = (s: string): boolean => /^https?:\/\//i.test(s);

/**
 * Makes the relative file paths in built-in plugins' options absolute,
 * resolved from `baseDir` (the config file's directory): blocking list
 * sources and `cacheDir`, the query log's `output`.
 */
export function resolvePluginPaths(entries: PluginEntry[], baseDir: string): PluginEntry[] {
  const abs = (p: unknown): unknown => (typeof p === 'string' && p !== '' && !isUrl(p) && !isAbsolute(p) ? resolve(baseDir, p) : p);
  return entries.map((entry) => {
    const options = entry.options;
    if (options === undefined || typeof options !== 'object' || options === null) return entry;
    if (entry.use === 'query-log' && typeof options.output === 'string' && options.output !== 'stdout') {
      return { ...entry, options: { ...options, output: abs(options.output) } };
    }
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
              typeof l === 'string' ? abs(l) : typeof l === 'object' && l !== null && typeof (l as { source?: unknown }).source === 'string' ? { ...l, source: abs((l as { source: string }).source) } : l,
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
  if (o.workers !== undefined) out.workers = o.workers;
  if (o.logLevel) out.logLevel = o.logLevel;
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
  return out;
}

/**
 * Builds the configuration the app runs: the file (or the embedded default),
 * then flags, then schema validation, then defaults. Throws
 * {@link AppConfigError}.
 */
export function resolveConfig(file: string | undefined, overrides: Overrides = {}): ResolvedConfig {
  let raw: unknown = file === undefined ? defaultConfig() : readConfigFile(file);
  if (file !== undefined) validateConfig(raw); // report the file's own errors with the file's paths
  raw = applyOverrides(raw as HeimdallConfig, overrides);
  validateConfig(raw);
  const c = raw as HeimdallConfig;
  const listen = c.listen ?? ['127.0.0.1:5353'];
  for (let i = 0; i < listen.length; i++) parseHostPort(listen[i]!, `listen[${i}]`);
  const admin = { enabled: c.admin?.enabled ?? true, listen: c.admin?.listen ?? '127.0.0.1:8053', token: c.admin?.token, collectDefaultMetrics: c.admin?.collectDefaultMetrics ?? true };
  if (admin.enabled) parseHostPort(admin.listen, 'admin.listen');
  return {
    listen,
    transports: c.transports ?? ['udp', 'tcp'],
    udp: c.udp ?? {},
    tcp: c.tcp ?? {},
    queryTimeoutMs: c.queryTimeoutMs ?? 5000,
    drainTimeoutMs: c.drainTimeoutMs ?? 5000,
    ednsPayloadSize: c.ednsPayloadSize ?? 1232,
    onUnanswered: c.onUnanswered ?? 'servfail',
    logLevel: c.logLevel ?? 'info',
    workers: c.workers ?? 1,
    admin,
    plugins: resolvePluginPaths(c.plugins ?? [], file === undefined ? process.cwd() : dirname(resolve(file))),
    baseDir: file === undefined ? process.cwd() : dirname(resolve(file)),
    file: file === undefined ? undefined : resolve(file),
  };
}

/** `127.0.0.1:53`, `[::1]:53`, `localhost:53` → host and port. Throws {@link AppConfigError} naming `path`. */
export function parseHostPort(value: string, path: string): { host: string; port: number } {
  const m = /^\[([0-9a-fA-F:.%\w-]+)\]:(\d{1,5})$/.exec(value) ?? /^([^:[\]\s]+):(\d{1,5})$/.exec(value);
  if (!m) throw new AppConfigError(path, `must be ADDRESS:PORT (IPv6 in brackets: [::1]:5353), got ${JSON.stringify(value)}`);
  const port = Number(m[2]);
  if (port > 65535) throw new AppConfigError(path, `port must be 0..65535, got ${port}`);
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
