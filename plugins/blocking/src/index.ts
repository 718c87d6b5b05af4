/**
 * @heimdall/plugin-blocking — block and allow lists at scale (hosts, domains,
 * wildcards, adblock-style, regex), safe with the public suffix list, per
 * client group, with runtime control through core's `BLOCKING_CONTROL` and
 * admin actions. Why a query was blocked is core's `BLOCKED` state key.
 */
export { blocking, blocking as default } from './plugin.js';
export type { BlockingListOption, BlockingOptions, BlockingOptionsInput, BlockingResponseMode } from './options.js';
export type { BlockingListStatus, BlockingPluginStatus, BlockingReloadOptions, BlockingReloadResult } from './service.js';
export type { BlockingListSummary } from './admin.js';
