/**
 * Heimdall's one error registry (Fastify style): every Heimdall error carries
 * a stable `code` registered here once, with the HTTP status the admin API
 * answers with. Callers branch on `err.code` (or `instanceof`), never on
 * messages. Core registers its own codes below and the codec's
 * (`PacketError`, `packet/errors.ts`); plugins add theirs with
 * {@link createError} (`CACHE_BAD_NAME`, `BLOCKING_REQUIRED_LIST`), or with
 * {@link registerErrorCodes} for one class that carries several codes
 * (`UpstreamError`'s `TIMEOUT`, `NETWORK`…). docs/architecture.md lists
 * every first-party code; a test keeps that list true.
 */
import { format } from 'node:util';

/** What the registry knows of one code. */
export interface ErrorCodeInfo {
  /** The stable code (`CONFIG`, `CACHE_BAD_NAME`). */
  readonly code: string;
  /** HTTP status the admin API answers with when an action throws it (400 for bad input, 404 for absent, 500 otherwise). */
  readonly statusCode: number;
  /** The message template (`util.format` style). */
  readonly message: string;
}

const registry = new Map<string, ErrorCodeInfo>();

/** Every registered code, for documentation and tests. */
export function errorCodes(): readonly ErrorCodeInfo[] {
  return [...registry.values()];
}

function register(code: string, message: string, statusCode: number): void {
  if (!Number.isInteger(statusCode) || statusCode < 400 || statusCode > 599)
    throw new TypeError(`error code '${code}': status ${statusCode} is not an HTTP error status`);
  if (!/^[A-Z][A-Z0-9_]*$/.test(code)) throw new TypeError(`error code '${code}' must be UPPER_SNAKE_CASE`);
  const known = registry.get(code);
  if (known !== undefined && (known.message !== message || known.statusCode !== statusCode)) {
    throw new TypeError(`error code '${code}' is already registered with another meaning`);
  }
  registry.set(code, { code, message, statusCode });
}

/**
 * Registers the codes of an error class that takes its code as an argument
 * (`new UpstreamError('TIMEOUT', …)`): each code with a one-line description
 * (its registry `message`) and one status for all, or per code. Same rules as
 * {@link createError}: UPPER_SNAKE_CASE, and a code registered again with
 * another meaning throws.
 *
 * @example
 * registerErrorCodes({ GEO_DB_MISSING: 'the database file is missing', GEO_DB_CORRUPT: 'the database file is corrupt' });
 */
export function registerErrorCodes(codes: Readonly<Record<string, string>>, statusCode: number | Readonly<Record<string, number>> = 500): void {
  for (const [code, description] of Object.entries(codes)) {
    register(code, description, typeof statusCode === 'number' ? statusCode : (statusCode[code] ?? 500));
  }
}

/** Base class of every Heimdall error. */
export class HeimdallError extends Error {
  /** Stable machine-readable code, registered in the error registry. */
  readonly code: string;
  /** HTTP status for the admin API (see {@link ErrorCodeInfo.statusCode}). */
  readonly statusCode: number;

  constructor(code: string, message: string, options?: { cause?: unknown; statusCode?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.statusCode = options?.statusCode ?? registry.get(code)?.statusCode ?? 500;
  }
}

/** A class made by {@link createError}: `new X(...formatArgs)`. */
export interface HeimdallErrorClass<Args extends unknown[] = unknown[]> {
  new (...args: Args | [...Args, { cause: unknown }]): HeimdallError;
  readonly code: string;
}

/**
 * Registers an error code and returns its class. The message is a
 * `util.format` template filled from the constructor's arguments; pass
 * `{ cause }` as the last argument to chain the underlying error.
 *
 * @example
 * export const GeoDatabaseError = createError('GEO_DATABASE', "cannot open database '%s'", 500);
 * throw new GeoDatabaseError(path);
 */
export function createError<Args extends unknown[] = unknown[]>(code: string, message: string, statusCode = 500): HeimdallErrorClass<Args> {
  register(code, message, statusCode);
  const cls = class extends HeimdallError {
    static readonly code = code;
    constructor(...args: Args | [...Args, { cause: unknown }]) {
      const last = args[args.length - 1] as { cause?: unknown } | undefined;
      const hasCause =
        args.length > 0 && typeof last === 'object' && last !== null && !Array.isArray(last) && 'cause' in last && Object.keys(last).length === 1;
      const fmt = hasCause ? args.slice(0, -1) : args;
      super(code, fmt.length === 0 ? message : format(message, ...fmt), { cause: hasCause ? last!.cause : undefined, statusCode });
    }
  };
  Object.defineProperty(cls, 'name', { value: `HeimdallError(${code})` });
  return cls;
}

register('CONFIG', '%s: %s', 400);
register('NEXT_CALLED_TWICE', 'next() called multiple times', 500);
register('PLUGIN_LOAD', 'cannot load plugin %s', 500);
register('PLUGIN_INVALID', 'not a plugin: %s', 500);
register('RESOLVER_STATE', 'resolver state: %s', 500);
register('LISTEN', 'cannot listen: %s', 500);
register('NOT_AVAILABLE', '%s is not available', 404);
register('BAD_REQUEST', 'bad request: %s', 400);

/**
 * Invalid configuration: the message always starts with the path of the bad
 * field (`blocking.lists[2].source: must be a path or http(s) URL`), so a bad
 * config fails fast at start and says where. Core's option validator
 * ({@link parseOptions}) raises it; plugins rarely need to.
 *
 * @example
 * throw new ConfigError('cache.maxTtl', 'must be at most 86400', ttl);
 */
export class ConfigError extends HeimdallError {
  /** Dotted path of the offending field (`listen[0].port`). */
  readonly path: string;
  /** The rejected value, when there was one. */
  readonly value: unknown;

  constructor(path: string, message: string, value?: unknown) {
    super('CONFIG', path ? `${path}: ${message}` : message);
    this.path = path;
    this.value = value;
  }

  /** The message without its path prefix. */
  get reason(): string {
    return this.path && this.message.startsWith(`${this.path}: `) ? this.message.slice(this.path.length + 2) : this.message;
  }
}

/** A middleware called `next()` more than once for the same query. */
export class NextCalledTwiceError extends HeimdallError {
  /** Name of the plugin whose middleware did it, when known. */
  readonly plugin: string | undefined;

  constructor(plugin: string | undefined) {
    super('NEXT_CALLED_TWICE', `${plugin ? `plugin/${plugin}: ` : ''}next() called multiple times`);
    this.plugin = plugin;
  }
}

/** A plugin named in a config could not be imported, or its export is not a plugin factory. */
export class PluginLoadError extends HeimdallError {
  /** The `use` specifier that failed (`@acme/heimdall-geo`, `./plugins/geo.js`). */
  readonly specifier: string;

  constructor(code: 'PLUGIN_LOAD' | 'PLUGIN_INVALID', specifier: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.specifier = specifier;
  }
}

/** A resolver method was called in a state that does not allow it (start twice, handle after stop…). */
export class ResolverStateError extends HeimdallError {
  constructor(message: string) {
    super('RESOLVER_STATE', message);
  }
}

/** A transport could not bind its address. Wraps the socket error (`EADDRINUSE`, `EADDRNOTAVAIL`…). */
export class ListenError extends HeimdallError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('LISTEN', message, options);
  }
}

/** Something asked for is not in this resolver (an admin action's plugin, a name not cached). Admin API: 404. */
export class NotAvailableError extends HeimdallError {
  constructor(message: string) {
    super('NOT_AVAILABLE', message);
  }
}

/** Bad arguments to an admin action or API call. Admin API: 400. */
export class BadRequestError extends HeimdallError {
  constructor(message: string) {
    super('BAD_REQUEST', message);
  }
}
