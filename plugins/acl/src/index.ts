/**
 * @heimdall/plugin-acl — allow, refuse or drop queries by client CIDR,
 * transport and name (CoreDNS `acl` semantics); `localOnly` preset.
 */
export { acl, acl as default } from './plugin.js';
export type { AclOptions, AclRule } from './options.js';
