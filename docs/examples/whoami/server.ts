/**
 * A complete resolver in a few lines: the whoami plugin on UDP and TCP.
 *
 *   cd docs/examples && node --import tsx whoami/server.ts      # 127.0.0.1:5353, UDP and TCP
 *   PORT=5300 ADDRESS=::1 node --import tsx whoami/server.ts
 *   dig @127.0.0.1 -p 5353 whoami.test A
 *
 * (Run it from docs/examples so that tsx picks up the tsconfig there, which
 * enables the decorators the plugin's service uses.) With PORT=0, UDP and TCP
 * each get their own free port; the first line printed is the JSON list.
 *
 * Also the "one synchronous answering middleware" server of the dnsperf
 * load benchmark. The test next to it calls `main()` with port 0.
 */
import { createResolver, type Resolver } from '@heimdall/core';
import whoami from './whoami.js';

/** Starts the example resolver and returns it (stop it with `resolver.stop()`). */
export async function main(options: { address?: string; port?: number } = {}): Promise<Resolver> {
  const address = options.address ?? process.env.ADDRESS ?? '127.0.0.1';
  const port = options.port ?? Number(process.env.PORT ?? 5353);
  const resolver = createResolver({
    plugins: [whoami({ ttl: 0 })],
    listen: [
      { transport: 'udp', address, port },
      { transport: 'tcp', address, port },
    ],
  });
  await resolver.start();
  return resolver;
}

// Run directly (not imported by the test): start, print where, stop on SIGINT/SIGTERM.
if (import.meta.url === `file://${process.argv[1]}`) {
  const resolver = await main();
  console.log(JSON.stringify({ listening: resolver.addresses() }));
  const shutdown = () => void resolver.stop().then(() => process.exit(0));
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}
