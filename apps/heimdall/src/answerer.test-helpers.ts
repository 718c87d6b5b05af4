/**
 * A stand-in for the plugins the query log and the stats plugin observe:
 * answers after a tick and leaves the state a real chain would. Blocks
 * `ads.example`; `cached.example` is a cache hit; the rest a miss answered by
 * an upstream; `*.lan` is rewritten to `*.home.arpa`.
 */
import { BLOCKED, CACHE_RESULT, type HeimdallPlugin, RecordType, UPSTREAM_USED } from '@heimdall/core';

export const answerer: HeimdallPlugin = {
  name: 'answer',
  middleware: () => async (ctx) => {
    await Promise.resolve();
    if (ctx.query.qname.endsWith('.lan')) ctx.rewrite({ name: `${ctx.query.qname.slice(0, -4)}.home.arpa` });
    if (ctx.query.qname === 'ads.example') {
      ctx.set(BLOCKED, { group: 'kids', list: 'ads.txt', reason: 'list', name: 'ads.example' });
      ctx.nxdomain();
      return;
    }
    if (ctx.query.qname.toLowerCase() === 'cached.example') {
      ctx.set(CACHE_RESULT, 'hit');
    } else {
      ctx.set(CACHE_RESULT, 'miss');
      ctx.set(UPSTREAM_USED, 'udp://192.0.2.53:53');
    }
    ctx.answer([{ name: ctx.query.qname, type: RecordType.A, ttl: 5, data: '192.0.2.1' }]);
  },
};
