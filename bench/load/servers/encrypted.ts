/**
 * The encrypted-transport scenario's server: a caching forwarder (cache →
 * upstream plugins) serving UDP on `<port>` (probe and warm-up), DNS over
 * TLS on `<dotPort>` and DNS over HTTPS on `<dohPort>` with the given PEM
 * pair. Run with `--conditions=source` (core and plugins from their sources).
 * Usage: `encrypted.ts <port> <dotPort> <dohPort> <upstreamPort> <cert> <key>`.
 * With `HEIMDALL_PROFILE_DIR` set, SIGUSR2 starts the V8 CPU profiler and the
 * next SIGUSR2 writes `doh-<time>.cpuprofile` there (so the profile covers
 * the measured window only, not start-up and warm-up).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';
import { createResolver, type HeimdallPlugin } from '@heimdall/core';
import { pino } from 'pino';

// Imported by name at run time: bench/ does not declare the plugin packages.
const cachePkg: string = '@heimdall/plugin-cache';
const upstreamPkg: string = '@heimdall/plugin-upstream';
const { cache } = (await import(cachePkg)) as { cache: (o?: Record<string, unknown>) => HeimdallPlugin };
const { upstream } = (await import(upstreamPkg)) as { upstream: (o: { servers: string[] }) => HeimdallPlugin };

const [port, dotPort, dohPort, upstreamPort] = process.argv.slice(2, 6).map(Number) as [number, number, number, number];
const [cert, key] = process.argv.slice(6, 8) as [string, string];
const resolver = createResolver({
  logger: pino({ level: 'warn' }),
  plugins: [cache({ maxEntries: 250_000 }), upstream({ servers: [`udp://127.0.0.1:${upstreamPort}`] })],
  listen: [
    { transport: 'udp', address: '127.0.0.1', port },
    { transport: 'tls', address: '127.0.0.1', port: dotPort, cert, key, maxConnectionsPerClient: 0 },
    { transport: 'https', address: '127.0.0.1', port: dohPort, cert, key, maxConnectionsPerClient: 0 },
  ],
});
await resolver.start();
console.log(`listening ${JSON.stringify(resolver.addresses())}`);
process.on('SIGTERM', () => void resolver.stop().then(() => process.exit(0)));

const profileDir = process.env.HEIMDALL_PROFILE_DIR;
if (profileDir) {
  const session = new Session();
  session.connect();
  let profiling = false;
  process.on('SIGUSR2', () => {
    if (!profiling) {
      profiling = true;
      session.post('Profiler.setSamplingInterval', { interval: 500 }, () => session.post('Profiler.enable', () => session.post('Profiler.start')));
      return;
    }
    profiling = false;
    session.post('Profiler.stop', (err, r) => {
      if (err) console.error(err);
      else writeFileSync(join(profileDir, `doh-${Date.now()}.cpuprofile`), JSON.stringify(r.profile));
    });
  });
}
