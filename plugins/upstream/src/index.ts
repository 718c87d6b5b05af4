/**
 * @heimdall/plugin-upstream — forwarding to upstream resolvers over UDP, TCP,
 * DNS over TLS and DNS over HTTPS, with groups, strategies, health tracking,
 * conditional forwarding, split routing between instances and EDNS policy.
 *
 * The default export is the plugin factory {@link upstream} (its options
 * schema is `upstream.schema`). Other plugins
 * reach it through core's `UPSTREAM` token; its internals (client,
 * transports, wire helpers) are not part of the public surface.
 */
export type { UpstreamOptions, UpstreamOptionsInput } from './options.js';
export { upstream } from './plugin.js';
export type { UpstreamHealth } from './client.js';

import { upstream } from './plugin.js';

export default upstream;
