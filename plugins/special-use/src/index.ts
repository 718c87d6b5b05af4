/**
 * @heimdall/plugin-special-use — answers special-use and locally-served
 * names (RFC 6761, 6762, 6303, 7686, 8375) locally.
 */
export type { SpecialUseOptions } from './options.js';
export { specialUse, specialUse as default } from './plugin.js';
