/**
 * The per-query decision and the block responses.
 *
 * Hot path for a query that is not blocked: a boolean (enabled), the client's
 * group mask (a constant, or one memoised `Map.get`), one pass over the
 * question name's octets in the request (no qname string; letters folded on
 * the fly) with a prefilter check per label, then `next()` — no Promise of
 * our own, no allocation. With CNAME inspection on, the response's answer
 * section is walked on the wire after `next()` (CNAME targets hashed in
 * place; a string only for a target that blocks).
 */
import { BLOCKED, type BlockedInfo, type DnsContext, EdeCode, type Middleware, RecordType, type ResourceRecordInit } from '@heimdall/core';
import { inject, injectable } from '@heimdall/core/di';
import { RecordClass } from '@heimdall/core/packet';
import { readName, trySkipName } from '@heimdall/core/wire';
import { DECISION_ALLOWED, DECISION_BLOCKED, DECISION_MASK, RESULT_BY_REGEX, resultGroup, resultSource } from './engine.js';
import { type BlockReason, BlockingMetrics } from './metrics.js';
import type { BlockingConfig } from './options.js';
import { BlockingService } from './service.js';
import { BLOCKING_CONFIG } from './tokens.js';

/** The SOA placed in negative block answers (RFC 2308 §3: its TTL and MINIMUM bound negative caching). */
function blockSoa(owner: string, ttl: number): ResourceRecordInit {
  return {
    name: owner,
    type: RecordType.SOA,
    class: RecordClass.IN,
    ttl,
    data: {
      mname: 'blocked.invalid',
      rname: 'hostmaster.blocked.invalid',
      serial: 1,
      refresh: 3600,
      retry: 600,
      expire: 86_400,
      minimum: ttl,
    },
  };
}

/** Builds the middleware once; {@link handle} is what the chain runs. */
@injectable()
export class BlockingMiddleware {
  readonly handle: Middleware;

  constructor(
    @inject(BlockingService) service: BlockingService,
    @inject(BlockingMetrics) metrics: BlockingMetrics,
    @inject(BLOCKING_CONFIG) config: BlockingConfig,
  ) {
    const { mode, ttl, ipv4, ipv6, ede } = config.response;
    const groupNames = config.groups;
    const lists = config.lists;
    const groups = service.groups;
    const cname = config.cnameInspection;

    const respond = (ctx: DnsContext, result: number, reason: BlockReason, name: string, mask: number): void => {
      const groupIndex = resultGroup(result);
      const group = groupNames[groupIndex]!;
      const list = lists[resultSource(result)];
      metrics.blocked(groupIndex, reason);
      const rule = service.engine.ruleFor(name, mask, result);
      ctx.set(
        BLOCKED,
        (rule === undefined ? { group, list: list?.name ?? '', reason, name } : { group, list: list?.name ?? '', reason, name, rule }) satisfies BlockedInfo,
      );
      const q = ctx.query;
      const qname = q.qname;
      if (ede && mode !== 'refused') ctx.ede(EdeCode.BLOCKED, `Blocked (${group})`);
      switch (mode) {
        case 'refused':
          ctx.refused(ede ? { code: EdeCode.BLOCKED, text: `Blocked (${group})` } : undefined);
          return;
        case 'nodata':
          ctx.nodata(blockSoa(qname, ttl));
          return;
        case 'zero':
        case 'custom': {
          const qt = q.qtype;
          const addrs = qt === RecordType.A ? (mode === 'zero' ? ['0.0.0.0'] : ipv4) : qt === RecordType.AAAA ? (mode === 'zero' ? ['::'] : ipv6) : null;
          if (addrs === null || addrs.length === 0) ctx.nodata(blockSoa(qname, ttl));
          else ctx.answer(addrs.map((a) => ({ name: qname, type: qt, class: RecordClass.IN, ttl, data: a })));
          return;
        }
        default:
          ctx.nxdomain(blockSoa(qname, ttl));
      }
    };

    /**
     * After next(): block when a CNAME target in the answer is blocked for
     * this client. Walks the response's answer section on the wire (no
     * reader, no record objects, no target string unless it blocks); stops
     * at the first thing it cannot parse (a response we cannot parse is not
     * ours to judge).
     */
    const inspect = (ctx: DnsContext, mask: number): void => {
      const res = ctx.response;
      if (res === null || res.length < 12) return;
      let an = (res[6]! << 8) | res[7]!;
      if (an === 0) return;
      const qd = (res[4]! << 8) | res[5]!;
      if (qd > 1) return; // RFC 9619: not a message we parse
      const len = res.length;
      let p = 12;
      if (qd === 1) {
        p = trySkipName(res, p);
        if (p < 0 || p + 4 > len) return;
        p += 4;
      }
      const engine = service.engine;
      for (; an > 0; an--) {
        p = trySkipName(res, p);
        if (p < 0 || p + 10 > len) return;
        const rdata = p + 10;
        const end = rdata + ((res[p + 8]! << 8) | res[p + 9]!);
        if (end > len) return;
        if (((res[p]! << 8) | res[p + 1]!) === RecordType.CNAME) {
          let d = engine.decideWire(res, rdata, mask);
          let target: string | undefined;
          try {
            if (d < 0) d = engine.decide((target = readName(res, rdata)), mask);
            if ((d & DECISION_MASK) === DECISION_BLOCKED) {
              target ??= readName(res, rdata);
              ctx.response = null; // replaced, never mutated
              respond(ctx, d, 'cname', target, mask);
              return;
            }
          } catch {
            return;
          }
        }
        p = end;
      }
    };

    this.handle = (ctx, next) => {
      if (!service.active) return next();
      const q = ctx.query;
      if (q.qclass !== RecordClass.IN && q.qclass !== 255) return next();
      const mask = groups.maskFor(ctx.client.address, ctx.client.clientId);
      if (mask === 0) return next();
      const engine = service.engine;
      // A repeated question: the decision remembered by its key (computed once per query, shared with the cache).
      const key = ctx.questionKey();
      let d = key === null ? -1 : engine.remembered(key, mask);
      if (d < 0) {
        // On the wire: no qname string (the regex entries, when some apply to this client, need it).
        d = engine.decideWire(q.buffer, q.questionNameOffset, mask);
        if (d < 0) d = engine.decide(q.qname, mask);
        if (key !== null) engine.remember(key, mask, d);
      }
      const decision = d & DECISION_MASK;
      if (decision === DECISION_BLOCKED) {
        respond(ctx, d, (d & RESULT_BY_REGEX) !== 0 ? 'regex' : 'list', q.qname, mask);
        return;
      }
      if (!cname || decision === DECISION_ALLOWED) return next();
      const p = next();
      if (p !== undefined && typeof (p as Promise<void>).then === 'function') return later(p as Promise<void>, ctx, mask);
      inspect(ctx, mask);
    };
    // Out of `handle`: a closure there would make V8 allocate a context for ctx and mask on every query.
    const later = (p: Promise<void>, ctx: DnsContext, mask: number): Promise<void> => p.then(() => inspect(ctx, mask));
  }
}
