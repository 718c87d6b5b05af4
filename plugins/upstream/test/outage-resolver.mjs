// The resolver process of outage.ts, plain JavaScript on the built packages
// (no TypeScript loader in its memory). Argument: the plugin entry.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { createResolver } from '@heimdall/core';
import pino from 'pino';

const mod = await import(pathToFileURL(process.argv[2]).href);
const upstream = mod.upstream ?? mod.default;
// Stands in for a cache: one name answered in memory before the upstream plugin.
const local = {
  name: 'local',
  middleware: () => (ctx, next) => {
    if (ctx.query.qname === 'cached.test') return ctx.answer([{ name: 'cached.test', type: 1, ttl: 60, data: '192.0.2.1' }]);
    return next();
  },
};
const resolver = createResolver({
  plugins: [local, upstream({ servers: [process.env.OUTAGE_UPSTREAM], ...JSON.parse(process.env.OUTAGE_OPTIONS ?? '{}') })],
  listen: [{ transport: 'udp', address: '127.0.0.1', port: 0 }],
  logger: pino({ level: 'info' }, pino.destination('/dev/null')),
});
await resolver.start();
const loop = monitorEventLoopDelay({ resolution: 10 });
// The largest heap figures seen during the flood (MB), to tell live data from allocator slack.
const heapMax = { heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };
let sampler;
process.on('message', (m) => {
  if (m === 'flood') {
    loop.reset();
    loop.enable();
    sampler = setInterval(() => {
      const u = process.memoryUsage();
      for (const k of Object.keys(heapMax)) heapMax[k] = Math.max(heapMax[k], Math.round(u[k] / 1048576));
    }, 100);
  } else if (m === 'report') {
    clearInterval(sampler);
    process.send({ p99: Math.round(loop.percentile(99) / 1e5) / 10, max: Math.round(loop.max / 1e5) / 10, heapMaxMB: heapMax }, () => process.exit(0));
  }
});
process.send({ port: resolver.addresses()[0].port });
