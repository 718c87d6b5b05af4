/**
 * Issue 4's server: Heimdall forwarding with the upstream plugin only (no
 * cache, no dedup) to `127.0.0.1:<upstreamPort>` over UDP. Measured beside
 * `dnsmasq --cache-size=0`. Usage: `forwarder.ts <port> <upstreamPort>`.
 */
import { createResolver, type HeimdallPlugin } from '@heimdall/core';
import { pino } from 'pino';

// Imported by name at run time: bench/ does not declare the plugin packages (they are built by `turbo run build`).
const upstreamPkg: string = '@heimdall/plugin-upstream';
const { upstream } = (await import(upstreamPkg)) as { upstream: (o: { servers: string[] }) => HeimdallPlugin };

const port = Number(process.argv[2] ?? 0);
const upstreamPort = Number(process.argv[3]);
const resolver = createResolver({
  logger: pino({ level: 'warn' }),
  plugins: [upstream({ servers: [`udp://127.0.0.1:${upstreamPort}`] })],
  listen: [{ transport: 'udp', address: '127.0.0.1', port }],
});
await resolver.start();
console.log(`listening ${JSON.stringify(resolver.addresses())}`);
process.on('SIGTERM', () => void resolver.stop().then(() => process.exit(0)));
