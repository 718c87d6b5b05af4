/**
 * The plugin's own DI token (internal: bound in its scope, never exported
 * from the package root).
 */

/** The compiled configuration ({@link BlockingConfig}) of this instance. */
export const BLOCKING_CONFIG: unique symbol = Symbol('heimdall.blocking.config');
