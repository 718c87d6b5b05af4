/**
 * Issue 3's server: a Heimdall resolver (built packages) with one synchronous
 * answering middleware (A 192.0.2.1 for any name), on UDP. Measured beside
 * `raw.ts`. Usage: `sync-resolver.ts <port>`.
 */
import { createResolver, RecordType } from '@heimdall/core';
import { pino } from 'pino';

const port = Number(process.argv[2] ?? 0);
const answer = [{ name: '', type: RecordType.A, ttl: 3600, data: '192.0.2.1' }];
const resolver = createResolver({
  logger: pino({ level: 'warn' }),
  plugins: [
    {
      name: 'answer',
      middleware: () => (ctx) => {
        answer[0]!.name = ctx.query.qname;
        ctx.answer(answer);
      },
    },
  ],
  listen: [{ transport: 'udp', address: '127.0.0.1', port }],
});
await resolver.start();
console.log(`listening ${JSON.stringify(resolver.addresses())}`);
process.on('SIGTERM', () => void resolver.stop().then(() => process.exit(0)));
