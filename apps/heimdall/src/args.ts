/**
 * Command-line parsing for `heimdall` (no dependency: `node:util` parseArgs).
 * Flags override the config file.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AppConfigError, type Overrides } from './config.js';

/** What the command line asks for. */
export interface CliArgs {
  help: boolean;
  version: boolean;
  /** Validate the configuration, print it resolved, exit. */
  check: boolean;
  /** Print the config's JSON Schema (built-in plugins and the config's third-party ones), exit. */
  printSchema: boolean;
  config?: string;
  overrides: Overrides;
}

/** `heimdall --help` text. */
export const HELP = `Usage: heimdall [options]

A caching, blocking, forwarding DNS resolver built from Heimdall plugins.
With no options it serves 127.0.0.1:5353 (UDP and TCP), forwards to
1.1.1.1 and 9.9.9.9, caches, answers special-use names locally, and serves
metrics and admin endpoints on http://127.0.0.1:8053.

Options (flags override the config file):
  -l, --listen ADDR:PORT     serve DNS on ADDR:PORT over UDP and TCP (repeatable)
      --dot ADDR:PORT        serve DNS over TLS (RFC 7858) on ADDR:PORT (repeatable)
      --doh ADDR:PORT        serve DNS over HTTPS (RFC 8484, /dns-query) on ADDR:PORT (repeatable)
      --tls-cert FILE        PEM certificate chain for --dot/--doh (reloaded on change and SIGHUP)
      --tls-key FILE         PEM private key for --dot/--doh
  -u, --upstream URL         upstream resolver (repeatable): 1.1.1.1, udp://…, tcp://…,
                             tls://1.1.1.1:853#cloudflare-dns.com, https://…/dns-query
  -b, --blocklist PATH|URL   turn blocking on with this list (repeatable)
      --admin ADDR:PORT|off  admin HTTP address (default 127.0.0.1:8053), or off
  -w, --workers N|auto       processes sharing the ports (Node cluster; default 1)
      --cache-dir DIR        keep the cache (and runtime state) on disk in DIR: shared by
                             the workers, survives restarts (plugin persistence, LMDB)
      --redis URL            share the cache, flushes and runtime state with other instances
                             through Redis (plugin redis): redis://host:6379, rediss://…,
                             redis+sentinel://s1,s2/master, redis+cluster://n1,n2;
                             default from HEIMDALL_REDIS_URL or REDIS_URL
      --open-resolver        answer clients on any network (default: loopback and private
                             networks only; others get REFUSED)
      --rate-limit N         at most N queries per second per client /24 (IPv4) or /56
                             (IPv6) over UDP; excess gets TC=1 (plugin ratelimit)
  -c, --config FILE          configuration file, JSON or YAML (see docs/config.md)
      --log-level LEVEL      fatal, error, warn, info, debug, trace or silent
      --check                validate the configuration, print it, and exit
      --print-schema         print the configuration's JSON Schema (with --config: including
                             the options of the third-party plugins it names), and exit
  -h, --help                 this help
  -v, --version              print the version

Signals: SIGTERM/SIGINT drain in-flight queries and exit; SIGHUP reloads block lists
and TLS certificates.
`;

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/**
 * Parses argv (without node and the script). `env`: the environment to read
 * `HEIMDALL_REDIS_URL`/`REDIS_URL` from when `--redis` is absent (the CLI
 * passes `process.env`). Throws {@link AppConfigError} naming the flag.
 */
export function parseCli(argv: string[], env: Readonly<Record<string, string | undefined>> = {}): CliArgs {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        listen: { type: 'string', short: 'l', multiple: true },
        upstream: { type: 'string', short: 'u', multiple: true },
        blocklist: { type: 'string', short: 'b', multiple: true },
        admin: { type: 'string' },
        workers: { type: 'string', short: 'w' },
        'cache-dir': { type: 'string' },
        redis: { type: 'string' },
        'open-resolver': { type: 'boolean' },
        'rate-limit': { type: 'string' },
        dot: { type: 'string', multiple: true },
        doh: { type: 'string', multiple: true },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        config: { type: 'string', short: 'c' },
        'log-level': { type: 'string' },
        check: { type: 'boolean' },
        'print-schema': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    throw new AppConfigError('', `${(err as Error).message} (see heimdall --help)`);
  }
  const v = parsed.values as Record<string, string | string[] | boolean | undefined>;
  const overrides: Overrides = {};
  if (v.listen) overrides.listen = v.listen as string[];
  if (v.upstream) overrides.upstreams = v.upstream as string[];
  if (v.blocklist) overrides.blocklists = v.blocklist as string[];
  if (v.admin !== undefined) overrides.admin = v.admin as string;
  if (v['cache-dir'] !== undefined) {
    const dir = v['cache-dir'] as string;
    if (dir === '') throw new AppConfigError('--cache-dir', 'must be a directory path');
    // Relative to the current directory, like --blocklist paths.
    overrides.cacheDir = resolve(dir);
  }
  if (v.redis !== undefined) {
    const url = v.redis as string;
    if (url === '') throw new AppConfigError('--redis', 'must be a Redis URL (redis://host:6379)');
    overrides.redisUrl = url;
  } else {
    const url = env.HEIMDALL_REDIS_URL || env.REDIS_URL;
    if (url) overrides.redisUrl = url;
  }
  if (v['open-resolver'] === true) overrides.openResolver = true;
  if (v.dot) overrides.dot = v.dot as string[];
  if (v.doh) overrides.doh = v.doh as string[];
  for (const [flag, field] of [
    ['tls-cert', 'tlsCert'],
    ['tls-key', 'tlsKey'],
  ] as const) {
    if (v[flag] === undefined) continue;
    const file = v[flag] as string;
    if (file === '') throw new AppConfigError(`--${flag}`, 'must be a file path');
    // Relative to the current directory, like --blocklist paths.
    overrides[field] = resolve(file);
  }
  if (v['rate-limit'] !== undefined) {
    const n = v['rate-limit'] as string;
    if (!/^\d+(\.\d+)?$/.test(n) || !(Number(n) > 0) || Number(n) > 1_000_000)
      throw new AppConfigError('--rate-limit', `must be a number of queries per second in (0, 1000000], got ${JSON.stringify(n)}`);
    overrides.rateLimit = Number(n);
  }
  if (v.workers !== undefined) {
    const w = v.workers as string;
    if (w === 'auto') overrides.workers = 'auto';
    else if (/^\d+$/.test(w) && Number(w) >= 1 && Number(w) <= 256) overrides.workers = Number(w);
    else throw new AppConfigError('--workers', `must be an integer from 1 to 256 or "auto", got ${JSON.stringify(w)}`);
  }
  if (v['log-level'] !== undefined) {
    const l = v['log-level'] as string;
    if (!LEVELS.has(l)) throw new AppConfigError('--log-level', `must be one of ${[...LEVELS].join(', ')}, got ${JSON.stringify(l)}`);
    overrides.logLevel = l as Overrides['logLevel'];
  }
  return {
    help: v.help === true,
    version: v.version === true,
    check: v.check === true,
    printSchema: v['print-schema'] === true,
    config: v.config as string | undefined,
    overrides,
  };
}
