/**
 * Transports: how bytes get in and out.
 */
import { ConfigError } from '../errors.js';
import { TcpServer } from './tcp.js';
import type { ListenOptions, TransportDeps, TransportServer } from './types.js';
import { UdpServer } from './udp.js';

export { TcpServer, tcpLimits, type TcpLimits } from './tcp.js';
export type * from './types.js';
export { reusePortSupported } from './types.js';
export { DEFAULT_MAX_UDP_PAYLOAD, isV4Mapped, UdpServer, udpResponseLimit } from './udp.js';
export { tcpListenSchema, tcpSettingsSchema, udpListenSchema, udpSettingsSchema } from './schema.js';

/** Builds the server for one `listen` entry. Throws `ConfigError` (with `path`) on bad options. */
export function createTransport(options: ListenOptions, deps: TransportDeps, path = 'listen'): TransportServer {
  if (typeof options !== 'object' || options === null) throw new ConfigError(path, 'must be an object', options);
  switch (options.transport) {
    case 'udp':
      return new UdpServer(options, deps, path);
    case 'tcp':
      return new TcpServer(options, deps, path);
    default:
      throw new ConfigError(`${path}.transport`, "must be 'udp' or 'tcp'", (options as { transport?: unknown }).transport);
  }
}
