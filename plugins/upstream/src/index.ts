/**
 * @heimdall/plugin-upstream — forwarding to upstream resolvers over UDP, TCP,
 * DNS over TLS and DNS over HTTPS, with groups, strategies, health tracking,
 * conditional forwarding and EDNS policy.
 *
 * The default export is the plugin factory {@link upstream}; the client it
 * binds under core's `UPSTREAM` token is {@link UpstreamClient}.
 */
export { type UpstreamClientDeps, UpstreamClient } from './client.js';
export { type ClientSubnetPolicy, finishReply, type PreparedQuery, prepareQuery, type SubnetAddress } from './edns.js';
export { EDE_NETWORK_ERROR, EDE_NO_REACHABLE_AUTHORITY, UpstreamError, type UpstreamErrorCode, UpstreamExhaustedError } from './errors.js';
export { type GroupOptions, type Outcome, type RcodePolicy, STRATEGIES, type Strategy, UpstreamGroup, UpstreamServer } from './group.js';
export { Health, type HealthOptions } from './health.js';
export { registerUpstreamMetrics } from './metrics.js';
export { type GroupConfig, type ResolvedOptions, resolveOptions, type UpstreamOptions } from './options.js';
export { createUpstreamMiddleware, upstream } from './plugin.js';
export { RTT_BUCKETS, UpstreamStats } from './stats.js';
export { DohTransport, type DohTransportOptions } from './transport/doh.js';
export { UdpWithTcpFallback } from './transport/fallback.js';
export { StreamTransport, type StreamTransportOptions } from './transport/stream.js';
export type { ExchangeOptions, Transport, TransportEvents, TransportProtocol } from './transport/types.js';
export { UdpTransport, type UdpTransportOptions } from './transport/udp.js';
export { parseUpstreamUrl, type UpstreamSpec, UpstreamUrlError } from './url.js';
export { UPSTREAM, type Upstream, type UpstreamResolveOptions } from '@heimdall/core';

import { UPSTREAM } from '@heimdall/core';
import { upstream } from './plugin.js';

/** Alias of core's `UPSTREAM` token, under which this plugin binds its {@link UpstreamClient}. */
export const UPSTREAM_CLIENT: typeof UPSTREAM = UPSTREAM;

export default upstream;
