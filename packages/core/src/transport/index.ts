/**
 * Transports: how bytes get in and out.
 */
import { ConfigError } from '../errors.js';
import { HttpsServer } from './https.js';
import { TcpServer } from './tcp.js';
import { TlsServer } from './tls.js';
import type { ListenOptions, TransportDeps, TransportServer } from './types.js';
import { UdpServer } from './udp.js';

export { TcpServer, tcpLimits, type TcpLimits } from './tcp.js';
export { TlsServer, type TlsSettings } from './tls.js';
export { cacheAge, DOH_MAX_BODY, HttpsServer, type HttpsSettings } from './https.js';
export { buildProxyV2, parseProxyV2, type ProxyHeader, PROXY_V2_MAX_HEADER } from './proxy.js';
export { CERTIFICATE_FIELDS, type CertificateFields, type CertificatePair, checkPair, withCertificateFields } from './certs.js';
export type { ConnectionCloseReason, EncryptedTransport, HandshakeFailure, ProxyRejectReason, StreamTransport } from '../pipeline/metrics.js';
export type * from './types.js';
export { reusePortSupported } from './types.js';
export { DEFAULT_MAX_UDP_PAYLOAD, isV4Mapped, UdpServer, udpResponseLimit } from './udp.js';
export {
  cidrSchema,
  httpsListenSchema,
  httpsSettingsSchema,
  proxyProtocolSchema,
  tcpListenSchema,
  tcpSettingsSchema,
  tlsListenSchema,
  tlsSettingsSchema,
  transportSchema,
  udpListenSchema,
  udpSettingsSchema,
} from './schema.js';

/** Builds the server for one `listen` entry. Throws `ConfigError` (with `path`) on bad options. */
export function createTransport(options: ListenOptions, deps: TransportDeps, path = 'listen'): TransportServer {
  if (typeof options !== 'object' || options === null) throw new ConfigError(path, 'must be an object', options);
  switch (options.transport) {
    case 'udp':
      return new UdpServer(options, deps, path);
    case 'tcp':
      return new TcpServer(options, deps, path);
    case 'tls':
      return new TlsServer(options, deps, path);
    case 'https':
      return new HttpsServer(options, deps, path);
    default:
      throw new ConfigError(`${path}.transport`, "must be 'udp', 'tcp', 'tls' or 'https'", (options as { transport?: unknown }).transport);
  }
}
