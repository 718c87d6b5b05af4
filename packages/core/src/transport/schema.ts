/**
 * Schemas of the listeners' settings: the one place their names, defaults
 * and bounds live. The transports validate with them (core's one validator)
 * and the app composes them into its config schema (`udp`, `tcp`, `dot`, `doh`).
 */
import { options, Type } from '../plugin/options.js';

const address = Type.String({ minLength: 1, default: '127.0.0.1', description: 'Address to bind (`127.0.0.1`, `::1`, `0.0.0.0`, `::`).' });
const port = Type.Integer({ minimum: 0, maximum: 65_535, default: 53, description: 'Port; 0 picks a free one.' });

/** UDP settings (besides address and port). */
export const udpSettingsSchema = options({
  maxUdpPayload: Type.Integer({
    minimum: 512,
    maximum: 65_535,
    default: 1232,
    description: 'Largest UDP response we send, whatever the client’s EDNS buffer size (RFC 6891 §6.2.5; DNS Flag Day 2020: 1232).',
  }),
  recvBufferSize: Type.Optional(Type.Integer({ minimum: 1024, maximum: 2 ** 30, description: 'Kernel receive buffer (SO_RCVBUF), bytes. Default: the OS’s.' })),
  sendBufferSize: Type.Optional(Type.Integer({ minimum: 1024, maximum: 2 ** 30, description: 'Kernel send buffer (SO_SNDBUF), bytes. Default: the OS’s.' })),
  native: Type.Union([Type.Boolean(), Type.Literal('auto')], {
    default: 'auto',
    description:
      "Batched native UDP (@heimdall/udp, Linux: recvmmsg/sendmmsg, 64 datagrams a call, SO_REUSEPORT on every Node version, replies from the arrival address on wildcard listeners). 'auto': when the addon is built, else node:dgram (one info log line); true: required (listening fails without it); false: node:dgram.",
  }),
});

/**
 * An IP address or CIDR prefix as option text (`192.0.2.0/24`, `2001:db8::/32`,
 * `192.0.2.7`): the one schema every option naming clients or proxies uses.
 * The pattern catches typos early; parse with `parseCidr` from
 * `@heimdall/core/wire` for the real check.
 */
export const cidrSchema = Type.String({
  minLength: 2,
  maxLength: 64,
  pattern: '^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$',
  errorMessage: 'must be an IP address or a CIDR prefix (192.0.2.0/24, 2001:db8::/32)',
  description: 'An address or CIDR (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`).',
});

/** A transport a query arrives on (`ClientInfo.transport`), for options that select by transport. */
export const transportSchema = Type.Union([Type.Literal('udp'), Type.Literal('tcp'), Type.Literal('tls'), Type.Literal('https'), Type.Literal('internal')]);

/** PROXY protocol v2 (HAProxy) on a stream listener: who may send the header. */
export const proxyProtocolSchema = options(
  {
    trusted: Type.Array(cidrSchema, {
      minItems: 1,
      maxItems: 1024,
      description:
        'Sources that must open every connection with a PROXY v2 header (load balancers); the client address is taken from it. A connection from one of them without a valid header is closed. Other sources are served as they are, and a connection of theirs that starts with a PROXY header is closed.',
    }),
    timeoutMs: Type.Integer({ minimum: 1, maximum: 60_000, default: 2000, description: 'The header must arrive whole within this long of the connection.' }),
  },
  { description: 'PROXY protocol v2 from trusted sources (off when absent).' },
);

/** TCP settings (besides address and port), RFC 7766 §6 and the hostile-client protections. */
export const tcpSettingsSchema = options({
  idleTimeoutMs: Type.Integer({
    minimum: 1,
    maximum: 3_600_000,
    default: 10_000,
    description:
      'Close a connection with no query outstanding and no complete frame or answer for this long (RFC 7766 §6.2.3). Partial frames are not activity.',
  }),
  frameTimeoutMs: Type.Integer({
    minimum: 1,
    maximum: 3_600_000,
    default: 2000,
    description: 'A frame must arrive whole within this long of its first byte, however bytes trickle in.',
  }),
  maxConnections: Type.Integer({
    minimum: 1,
    maximum: 1_000_000,
    default: 1000,
    description: 'Open connections at most; at the limit the longest-idle one is closed to admit a new one.',
  }),
  maxConnectionsPerClient: Type.Integer({
    minimum: 0,
    maximum: 1_000_000,
    default: 100,
    description: 'Open connections at most from one client: one IPv4 address, or one IPv6 /64 (0: no limit).',
  }),
  maxMessageSize: Type.Integer({
    minimum: 12,
    maximum: 65_535,
    default: 65_535,
    description: 'Largest accepted message; a bigger length prefix closes the connection.',
  }),
  maxInFlightPerConnection: Type.Integer({
    minimum: 1,
    maximum: 65_535,
    default: 100,
    description: 'Queries processed concurrently per connection; reading pauses at the limit.',
  }),
  maxQueriesPerConnection: Type.Integer({
    minimum: 0,
    maximum: 2 ** 31 - 1,
    default: 0,
    description: 'Queries answered on one connection before it is closed gracefully (0: unlimited).',
  }),
  maxWriteBuffer: Type.Integer({
    minimum: 65_537,
    maximum: 2 ** 30,
    default: 1 << 20,
    description: 'Bytes of answers queued for a client that does not read before the connection is dropped.',
  }),
  backlog: Type.Integer({ minimum: 1, maximum: 65_535, default: 511, description: 'listen() backlog.' }),
  proxyProtocol: Type.Optional(proxyProtocolSchema),
});

/**
 * EDNS padding (RFC 7830) of responses on encrypted transports, to a
 * multiple of 468 octets (RFC 8467 block-length policy). `always`: every
 * response that carries an OPT record (the query had EDNS; RFC 8467 §4.1
 * recommends responders pad), `query`: only when the query carried the
 * padding option (RFC 7830 §4 MUST), `off`.
 */
const padding = Type.Union([Type.Literal('always'), Type.Literal('query'), Type.Literal('off')], {
  default: 'always',
  description:
    "EDNS padding of responses to a multiple of 468 octets (RFC 7830, RFC 8467 block-length policy): 'always' pads every response carrying OPT (the query had EDNS), 'query' only when the query carried the padding option, 'off' never.",
});

/** Certificate and key files of an encrypted listener. */
const certificate = {
  cert: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 4096,
      description: 'PEM certificate chain file (the app fills it from `--tls-cert`). Reloaded on SIGHUP and when the file changes.',
    }),
  ),
  key: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'PEM private key file (the app fills it from `--tls-key`).' })),
  handshakeTimeoutMs: Type.Integer({
    minimum: 1,
    maximum: 600_000,
    default: 5000,
    description: 'The TLS handshake must complete within this long of the connection.',
  }),
  padding,
};

/** DNS over TLS (RFC 7858) settings besides address and port: TCP's limits plus certificate, handshake and padding. */
export const tlsSettingsSchema = options({ ...tcpSettingsSchema.properties, ...certificate });

/** DNS over HTTPS (RFC 8484) settings besides address and port. */
export const httpsSettingsSchema = options({
  ...certificate,
  path: Type.String({
    minLength: 2,
    maxLength: 256,
    pattern: "^/[A-Za-z0-9._~!$&'()*+,;=:@/-]*$",
    errorMessage: 'must be an absolute URL path such as /dns-query',
    default: '/dns-query',
    description: 'URL path of the DoH endpoint; `<path>/<client-id>` names the client (`ClientInfo.clientId`).',
  }),
  json: Type.Boolean({ default: false, description: 'Also serve the JSON API (`GET <path>?name=&type=`, `application/dns-json`).' }),
  trustedProxies: Type.Array(cidrSchema, {
    maxItems: 1024,
    default: [],
    description: 'Addresses or CIDRs of reverse proxies whose `Forwarded` / `X-Forwarded-For` headers name the client. Headers from anyone else are ignored.',
  }),
  idleTimeoutMs: Type.Integer({ minimum: 1, maximum: 3_600_000, default: 30_000, description: 'Close a connection with no request for this long.' }),
  maxConnections: tcpSettingsSchema.properties.maxConnections,
  maxConnectionsPerClient: tcpSettingsSchema.properties.maxConnectionsPerClient,
  maxConcurrentStreams: Type.Integer({
    minimum: 1,
    maximum: 65_535,
    default: 100,
    description: 'HTTP/2 streams (queries) in progress at once per connection.',
  }),
  backlog: tcpSettingsSchema.properties.backlog,
  proxyProtocol: tcpSettingsSchema.properties.proxyProtocol,
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

const { reusePort, ipv6Only } = socketFlags;

/** One DNS-over-TLS `listen` entry (RFC 7858). `cert` and `key` are required here. */
export const tlsListenSchema = options({
  transport: Type.Literal('tls'),
  address,
  port: Type.Integer({ minimum: 0, maximum: 65_535, default: 853, description: 'Port; 0 picks a free one.' }),
  ...tlsSettingsSchema.properties,
  reusePort,
  ipv6Only,
});

/** One DNS-over-HTTPS `listen` entry (RFC 8484). `cert` and `key` are required here. */
export const httpsListenSchema = options({
  transport: Type.Literal('https'),
  address,
  port: Type.Integer({ minimum: 0, maximum: 65_535, default: 443, description: 'Port; 0 picks a free one.' }),
  ...httpsSettingsSchema.properties,
  reusePort,
  ipv6Only,
});
