/**
 * Schemas of the listeners' settings: the one place their names, defaults
 * and bounds live. The transports validate with them (core's one validator)
 * and the app composes them into its config schema (`udp`, `tcp`).
 */
import { options, Type } from '../plugin/options.js';

const address = Type.String({ minLength: 1, default: '127.0.0.1', description: 'Address to bind (`127.0.0.1`, `::1`, `0.0.0.0`, `::`).' });
const port = Type.Integer({ minimum: 0, maximum: 65_535, default: 53, description: 'Port; 0 picks a free one.' });

/** UDP settings (besides address and port). */
export const udpSettingsSchema = options({
  maxUdpPayload: Type.Integer({ minimum: 512, maximum: 65_535, default: 1232, description: 'Largest UDP response we send, whatever the client’s EDNS buffer size (RFC 6891 §6.2.5; DNS Flag Day 2020: 1232).' }),
  recvBufferSize: Type.Optional(Type.Integer({ minimum: 1024, maximum: 2 ** 30, description: 'Kernel receive buffer (SO_RCVBUF), bytes. Default: the OS’s.' })),
  sendBufferSize: Type.Optional(Type.Integer({ minimum: 1024, maximum: 2 ** 30, description: 'Kernel send buffer (SO_SNDBUF), bytes. Default: the OS’s.' })),
});

/** TCP settings (besides address and port), RFC 7766 §6 and the hostile-client protections. */
export const tcpSettingsSchema = options({
  idleTimeoutMs: Type.Integer({ minimum: 1, maximum: 3_600_000, default: 10_000, description: 'Close a connection with no query outstanding and no complete frame or answer for this long (RFC 7766 §6.2.3). Partial frames are not activity.' }),
  frameTimeoutMs: Type.Integer({ minimum: 1, maximum: 3_600_000, default: 2000, description: 'A frame must arrive whole within this long of its first byte, however bytes trickle in.' }),
  maxConnections: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1000, description: 'Open connections at most; at the limit the longest-idle one is closed to admit a new one.' }),
  maxConnectionsPerClient: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 100, description: 'Open connections at most from one client address (0: no limit).' }),
  maxMessageSize: Type.Integer({ minimum: 12, maximum: 65_535, default: 65_535, description: 'Largest accepted message; a bigger length prefix closes the connection.' }),
  maxInFlightPerConnection: Type.Integer({ minimum: 1, maximum: 65_535, default: 100, description: 'Queries processed concurrently per connection; reading pauses at the limit.' }),
  maxQueriesPerConnection: Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1, default: 0, description: 'Queries answered on one connection before it is closed gracefully (0: unlimited).' }),
  maxWriteBuffer: Type.Integer({ minimum: 65_537, maximum: 2 ** 30, default: 1 << 20, description: 'Bytes of answers queued for a client that does not read before the connection is dropped.' }),
  backlog: Type.Integer({ minimum: 1, maximum: 65_535, default: 511, description: 'listen() backlog.' }),
});

const socketFlags = {
  reuseAddr: Type.Boolean({ default: false, description: 'SO_REUSEADDR (cluster workers sharing the primary’s socket).' }),
  reusePort: Type.Boolean({ default: false, description: 'SO_REUSEPORT where Node supports it (22.12+, 23.1+): each worker its own socket.' }),
  ipv6Only: Type.Boolean({ default: false, description: 'For `::`, accept only IPv6.' }),
};

/** One UDP `listen` entry of `createResolver`. */
export const udpListenSchema = options({ transport: Type.Literal('udp'), address, port, ...udpSettingsSchema.properties, ...socketFlags });

/** One TCP `listen` entry of `createResolver`. */
export const tcpListenSchema = options({ transport: Type.Literal('tcp'), address, port, ...tcpSettingsSchema.properties, ...socketFlags });
