/**
 * `maxConnectionsPerClient` counts IPv6 clients by /64: one host usually
 * holds a whole /64, so exact addresses would let it reopen the cap from
 * each address it picks. Clients reach the server through a trusted PROXY
 * v2 sender on loopback, which names the IPv6 sources.
 */
import net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { CoreMetrics } from '../pipeline/metrics.js';
import { silentLogger } from '../util/logger.js';
import { buildProxyV2 } from './proxy.js';
import { clientLimitKey } from './stream.js';
import { TcpServer } from './tcp.js';
import type { QueryHandler } from './types.js';

const handler: QueryHandler = { process: () => null };
let server: TcpServer | undefined;
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await server?.close(50);
  server = undefined;
});

/** Connects, sends a PROXY v2 header naming `source`, resolves with whether the server closed it within `ms`. */
function connectAs(port: number, source: string, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' }, () => s.write(buildProxyV2({ address: source, port: 1000 }, { address: '::1', port: 53 })));
    sockets.push(s);
    const t = setTimeout(() => resolve(false), ms);
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

describe('per-client connection cap', () => {
  test('the limit key: IPv4 as is, IPv6 by /64', () => {
    const v6 = (address: string) => clientLimitKey({ address, port: 1, family: 6, transport: 'tcp' });
    expect(clientLimitKey({ address: '192.0.2.1', port: 1, family: 4, transport: 'tcp' })).toBe('192.0.2.1');
    expect(v6('2001:db8:1:2::a')).toBe(v6('2001:db8:1:2:ffff:ffff:ffff:ffff'));
    expect(v6('2001:db8:1:2::a')).toBe('2001:db8:1:2::/64');
    expect(v6('2001:db8:1:3::a')).not.toBe(v6('2001:db8:1:2::a'));
    expect(v6('::1')).toBe('0:0:0:0::/64');
  });

  test('three addresses of one IPv6 /64 share the cap of 2; another /64 is admitted', async () => {
    const m = new CoreMetrics();
    server = new TcpServer(
      { transport: 'tcp', port: 0, address: '127.0.0.1', maxConnectionsPerClient: 2, proxyProtocol: { trusted: ['127.0.0.0/8'] } },
      { handler, logger: silentLogger(), metrics: m },
    );
    await server.listen();
    const port = server.address().port;
    expect(await connectAs(port, '2001:db8:1:2::a', 300)).toBe(false);
    expect(await connectAs(port, '2001:db8:1:2::b', 300)).toBe(false);
    expect(await connectAs(port, '2001:db8:1:2::c', 2000)).toBe(true);
    expect(m.connectionsClosed.tcp.clientLimit).toBe(1);
    expect(await connectAs(port, '2001:db8:1:3::a', 300)).toBe(false);
    expect(m.connectionsClosed.tcp.clientLimit).toBe(1);
  });
});
