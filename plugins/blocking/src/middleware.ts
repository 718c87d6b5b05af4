/**
 * The per-query decision and the block responses.
 *
 * Hot path for a query that is not blocked: a boolean (enabled), the client's
 * group mask (a constant, or one memoised `Map.get`), one pass over the
 * qname with a prefilter check per label, then `next()` — no Promise of our
 * own, no allocation. With CNAME inspection on, the response is looked at
 * after `next()` (answer section only, CNAME records only).
 */
import { BLOCKED, type BlockedInfo, type DnsContext, EdeCode, type Middleware, RecordType, type ResourceRecordInit } from '@heimdall/core';
import { inject, injectable } from '@heimdall/core/di';
import { MessageReader, RecordClass } from '@heimdall/core/packet';
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

    const respond = (ctx: DnsContext, result: number, reason: BlockReason, name: string): void => {
      const groupIndex = resultGroup(result);
      const group = groupNames[groupIndex]!;
      const list = lists[resultSource(result)];
      metrics.blocked(groupIndex, reason);
      ctx.set(BLOCKED, { group, list: list?.name ?? '', reason, name } satisfies BlockedInfo);
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

    /** After next(): block when a CNAME target in the answer is blocked for this client. */
    const inspect = (ctx: DnsContext, mask: number): void => {
      const res = ctx.response;
      if (res === null || res.length < 12 || res.readUInt16BE(6) === 0) return; // no answers
      const engine = service.engine;
      try {
        const r = new MessageReader(res);
        for (const rec of r.records('answer')) {
          if (rec.type !== RecordType.CNAME) continue;
          const target = rec.data() as string;
          const d = engine.decide(target, mask);
          if ((d & DECISION_MASK) === DECISION_BLOCKED) {
            ctx.response = null; // replaced, never mutated
            respond(ctx, d, 'cname', target);
            return;
          }
        }
      } catch {
        // A response we cannot parse is not ours to judge; leave it.
      }
    };

    this.handle = (ctx, next) => {
      if (!service.active) return next();
      const q = ctx.query;
      if (q.qclass !== RecordClass.IN && q.qclass !== 255) return next();
      const mask = groups.maskFor(ctx.client.address);
      if (mask === 0) return next();
      const d = service.engine.decide(q.qname, mask);
      const decision = d & DECISION_MASK;
      if (decision === DECISION_BLOCKED) {
        respond(ctx, d, (d & RESULT_BY_REGEX) !== 0 ? 'regex' : 'list', q.qname);
        return;
      }
      if (!cname || decision === DECISION_ALLOWED) return next();
      const p = next();
      if (p !== undefined && typeof (p as Promise<void>).then === 'function') {
        return (p as Promise<void>).then(() => inspect(ctx, mask));
      }
      inspect(ctx, mask);
    };
  }
}
