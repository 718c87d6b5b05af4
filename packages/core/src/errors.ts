/**
 * Errors raised by the pipeline, the plugin API, the resolver and the
 * transports. Every class carries a stable `code` string (Fastify-style) so
 * that callers can branch on it without parsing messages. Packet decoding
 * errors are `PacketError` (see `src/packet`).
 */

/** Stable codes of {@link HeimdallError}s raised by core. */
export type HeimdallErrorCode =
  | 'CONFIG'
  | 'NEXT_CALLED_TWICE'
  | 'PLUGIN_LOAD'
  | 'PLUGIN_INVALID'
  | 'RESOLVER_STATE'
  | 'LISTEN';

/** Base class of core's errors (packet errors excepted). */
export class HeimdallError extends Error {
  /** Stable machine-readable code. */
  readonly code: HeimdallErrorCode;

  constructor(code: HeimdallErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * Invalid configuration: the message always starts with the path of the bad
 * field (`blocking.lists[2].source: must be a path or http(s) URL`), so a bad
 * config fails fast at start and says where.
 *
 * @example
 * if (!(ttl >= 0)) throw new ConfigError('cache.maxTtl', 'must be a non-negative number', ttl);
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
