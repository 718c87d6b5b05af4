/**
 * @heimdall/plugin-persistence — a disk cache tier and a state store on LMDB.
 */
export type { PersistenceOptions } from './options.js';
export { persistence, persistence as default } from './plugin.js';
