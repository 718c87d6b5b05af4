/**
 * The `query-log` plugin: one structured line per answered query (or a
 * sample of them) through pino, to stdout or appended to a file: client
 * (and its DoH client id, when it sent one), transport, name, type, rcode, answer count, duration, and why the query
 * was answered as it was, from the state the chain left (core's shared
 * keys): `blocked` ({ list, group, reason }, set by a blocking plugin),
 * `cache` (`hit`, `stale`, `miss`), `upstream` (which one answered), and
 * `rewrite` (the question the chain worked on, when it was rewritten).
 *
 * Place it where it should observe: first in the chain logs every answer,
 * after the cache only misses.
 */
import { performance } from 'node:perf_hooks';
import {
  BLOCKED,
  CACHE_RESULT,
  type DnsContext,
  definePlugin,
  type Middleware,
  options,
  PLUGIN_OPTIONS,
  type Static,
  Type,
  UPSTREAM_USED,
} from '@heimdall/core';
import { ContainerModule, inject, injectable } from '@heimdall/core/di';
import { rcodeToString, typeToString } from '@heimdall/core/packet';
import { type DestinationStream, type Logger, pino } from 'pino';
import type { QueryLogLine } from '../stats/model.js';

/** Options of the {@link queryLog} plugin. */
export const queryLogOptionsSchema = options({
  sampleRate: Type.Number({ minimum: 0, maximum: 1, default: 1, description: 'Fraction of queries logged (0 turns the log off).' }),
  output: Type.String({
    minLength: 1,
    default: 'stdout',
    description: "`stdout`, or a file path (appended, created with its directory if missing; relative to the config file's directory).",
  }),
});

/** The query log's options, defaults filled in. */
export type QueryLogOptions = Static<typeof queryLogOptionsSchema>;

export type { QueryLogLine };

/** What the log says about one query, from its context after the chain returned. */
export function queryLogLine(ctx: DnsContext, ms: number): QueryLogLine {
  const res = ctx.response;
  const asked = ctx.original?.query ?? ctx.query;
  let qname = '';
  let qtype = 0;
  try {
    qname = asked.qname;
    qtype = asked.qtype;
  } catch {
    // unparseable question: log what we have
  }
  const line: QueryLogLine = {
    client: ctx.client.address,
    transport: ctx.client.transport,
    id: ctx.query.id,
    qname,
    qtype: typeToString(qtype),
    rcode: res === null || res.length < 12 ? 'none' : rcodeToString(res[3]! & 15),
    answers: res === null || res.length < 12 ? 0 : res.readUInt16BE(6),
    ms: Number(ms.toFixed(3)),
  };
  // The DoH client id (`/dns-query/<client-id>`), when the client sent one.
  if (ctx.client.clientId !== undefined) line.clientId = ctx.client.clientId;
  const blocked = ctx.get(BLOCKED);
  if (blocked !== undefined) {
    line.blocked = { list: blocked.list, group: blocked.group, reason: blocked.reason };
    if (blocked.reason === 'cname') line.blocked.name = blocked.name;
  }
  const cache = ctx.get(CACHE_RESULT);
  if (cache !== undefined) line.cache = cache;
  const upstream = ctx.get(UPSTREAM_USED);
  if (upstream !== undefined) line.upstream = upstream;
  if (ctx.original !== null) line.rewrite = { qname: ctx.query.qname, qtype: typeToString(ctx.query.qtype) };
  return line;
}

/** The log's destination: opened at start, flushed at stop. */
@injectable()
class QueryLogOutput {
  private dest: DestinationStream | undefined;
  /** Undefined before start (queries handled then are not logged). */
  log: Logger | undefined;

  constructor(@inject(PLUGIN_OPTIONS) private readonly options: QueryLogOptions) {}

  open(): void {
    const output = this.options.output;
    this.dest = output === 'stdout' ? pino.destination({ dest: 1, sync: false }) : pino.destination({ dest: output, sync: false, mkdir: true, append: true });
    this.log = pino({ base: null, messageKey: 'msg', timestamp: pino.stdTimeFunctions.isoTime }, this.dest);
  }

  close(): void {
    (this.dest as { flushSync?: () => void } | undefined)?.flushSync?.();
  }
}

/** The middleware: times the rest of the chain, then writes the line (sampled). */
@injectable()
class QueryLogMiddleware {
  readonly handle: Middleware | null;

  constructor(@inject(PLUGIN_OPTIONS) options: QueryLogOptions, @inject(QueryLogOutput) output: QueryLogOutput) {
    const rate = options.sampleRate;
    if (rate === 0) {
      this.handle = null;
      return;
    }
    const write = (ctx: DnsContext, t0: number): void => {
      output.log?.info(queryLogLine(ctx, performance.now() - t0), 'query');
    };
    this.handle = (ctx, next) => {
      if (rate < 1 && Math.random() >= rate) return next();
      const t0 = performance.now();
      const r = next();
      if (r !== undefined && typeof (r as Promise<void>).then === 'function') {
        return (r as Promise<void>).then(() => write(ctx, t0));
      }
      write(ctx, t0);
    };
  }
}

/** The query-log plugin. */
export const queryLog = definePlugin({
  name: 'query-log',
  // Sees every query and answer, core's own CHAOS/AXFR/ANY answers included.
  role: 'observer',
  description: 'One JSON line per answered query (or a sample): client, question, rcode, answers, time, and why (blocked, cache, upstream, rewrite).',
  options: queryLogOptionsSchema,
  setup: () => ({
    module: new ContainerModule(({ bind }) => {
      bind(QueryLogOutput).toSelf();
      bind(QueryLogMiddleware).toSelf();
    }),
    middleware: (scope) => scope.get(QueryLogMiddleware).handle,
    start: (scope) => scope.get(QueryLogOutput).open(),
    stop: (scope) => scope.get(QueryLogOutput).close(),
  }),
});

export default queryLog;
