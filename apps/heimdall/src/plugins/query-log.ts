/**
 * The `query-log` plugin: one structured line per answered query (or a
 * sample of them) — client, transport, name, type, rcode, answer count,
 * duration — through pino, to stdout or appended to a file.
 *
 * Place it where it should observe: first in the chain logs every answer,
 * after the cache only misses.
 */
import { ConfigError, type HeimdallPlugin, type Middleware, rcodeToString, typeToString } from '@heimdall/core';
import { type DestinationStream, type Logger, pino } from 'pino';

/** Options of {@link queryLog}. */
export interface QueryLogOptions {
  /** Fraction of queries logged, 0..1. Default 1 (all). */
  sampleRate?: number;
  /** `stdout` (default) or a file path (appended, created if missing). */
  output?: string;
}

/** Creates the query-log plugin. */
export function queryLog(options: QueryLogOptions = {}): HeimdallPlugin {
  if (typeof options !== 'object' || options === null) throw new ConfigError('query-log', 'options must be an object', options);
  for (const k of Object.keys(options)) {
    if (k !== 'sampleRate' && k !== 'output') throw new ConfigError(`query-log.${k}`, 'unknown option (known: sampleRate, output)');
  }
  const rate = options.sampleRate ?? 1;
  if (typeof rate !== 'number' || !(rate >= 0 && rate <= 1)) throw new ConfigError('query-log.sampleRate', 'must be a number from 0 to 1', rate);
  const output = options.output ?? 'stdout';
  if (typeof output !== 'string' || output.length === 0) throw new ConfigError('query-log.output', 'must be "stdout" or a file path', output);

  let dest: DestinationStream | undefined;
  let log: Logger | undefined;
  return {
    name: 'query-log',
    start() {
      dest = output === 'stdout' ? pino.destination({ dest: 1, sync: false }) : pino.destination({ dest: output, sync: false, mkdir: true, append: true });
      log = pino({ base: null, messageKey: 'msg', timestamp: pino.stdTimeFunctions.isoTime }, dest);
    },
    stop() {
      (dest as { flushSync?: () => void } | undefined)?.flushSync?.();
    },
    middleware() {
      if (rate === 0) return null;
      const write = (ctx: Parameters<Middleware>[0], t0: number): void => {
        if (log === undefined) return;
        const res = ctx.response;
        let qname = '';
        let qtype = 0;
        try {
          qname = ctx.query.qname;
          qtype = ctx.query.qtype;
        } catch {
          // unparseable question: log what we have
        }
        log.info({
          client: ctx.client.address,
          transport: ctx.client.transport,
          id: ctx.query.id,
          qname,
          qtype: typeToString(qtype),
          rcode: res === null || res.length < 12 ? 'none' : rcodeToString(res[3]! & 15),
          answers: res === null || res.length < 12 ? 0 : res.readUInt16BE(6),
          ms: Number((performance.now() - t0).toFixed(3)),
        }, 'query');
      };
      const mw: Middleware = (ctx, next) => {
        if (rate < 1 && Math.random() >= rate) return next();
        const t0 = performance.now();
        const r = next();
        if (r !== undefined && typeof (r as Promise<void>).then === 'function') {
          return (r as Promise<void>).then(() => write(ctx, t0));
        }
        write(ctx, t0);
      };
      return mw;
    },
  };
}

export default queryLog;
