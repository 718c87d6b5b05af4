/**
 * The per-query decision and the block responses.
 *
 * Hot path for a query that is not blocked: a boolean (enabled), the client's
 * group mask (a constant, or one memoised `Map.get`), one pass over the
 * qname with a prefilter check per label, then `next()` — no Promise of our
 * own, no allocation. With CNAME inspection on, the response is looked at
 * after `next()` (answer section only, CNAME records only).
 */
import { type DnsContext, EdeCode, MessageReader, type Middleware, RecordClass, RecordType, type ResourceRecordInit } from '@heimdall/core';
import { DECISION_ALLOWED, DECISION_BLOCKED } from './engine.js';
import type { BlockReason, BlockingMetrics } from './metrics.js';
import type { BlockingService } from './service.js';

/** Key of the per-query record that says a query was blocked (`ctx.state.get(BLOCKING_STATE)`), for query logs. */
export const BLOCKING_STATE: unique symbol = Symbol.for('heimdall.blocking.state');

/** What `ctx.state.get(BLOCKING_STATE)` holds for a blocked query. */
export interface BlockedInfo {
  readonly group: string;
  readonly list: string;
  readonly reason: BlockReason;
  /** For `reason: 'cname'`, the blocked CNAME target. */
  readonly name: string;
}

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

/** Builds the blocking middleware bound to a service. */
export function createBlockingMiddleware(service: BlockingService, metrics: BlockingMetrics | null): Middleware {
  const o = service.options;
  const { mode, ttl, ipv4, ipv6, ede } = o.response;
  const groupNames = o.groups;
  const lists = o.lists;
  const groups = service.groups;
  const cname = o.cnameInspection;

  const respond = (ctx: DnsContext, sourceId: number, reason: BlockReason, name: string): void => {
    const list = lists[sourceId];
    const group = list?.group ?? groupNames[0]!;
    metrics?.blocked(list?.groupIndex ?? 0, reason);
    ctx.state.set(BLOCKING_STATE, { group, list: list?.name ?? '', reason, name } satisfies BlockedInfo);
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
        const addrs =
          qt === RecordType.A ? (mode === 'zero' ? ['0.0.0.0'] : ipv4) : qt === RecordType.AAAA ? (mode === 'zero' ? ['::'] : ipv6) : null;
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
        if (engine.decide(target, mask) === DECISION_BLOCKED) {
          ctx.response = null; // replaced, never mutated
          respond(ctx, engine.lastSource, 'cname', target);
          return;
        }
      }
    } catch {
      // A response we cannot parse is not ours to judge; leave it.
    }
  };

  return (ctx, next) => {
    if (!service.active) return next();
    const q = ctx.query;
    if (q.qclass !== RecordClass.IN && q.qclass !== 255) return next();
    const mask = groups.maskFor(ctx.client.address);
    if (mask === 0) return next();
    const engine = service.engine;
    const d = engine.decide(q.qname, mask);
    if (d === DECISION_BLOCKED) {
      respond(ctx, engine.lastSource, engine.lastByRegex ? 'regex' : 'list', q.qname);
      return;
    }
    if (!cname || d === DECISION_ALLOWED) return next();
    const p = next();
    if (p !== undefined && typeof (p as Promise<void>).then === 'function') {
      return (p as Promise<void>).then(() => inspect(ctx, mask));
    }
    inspect(ctx, mask);
  };
}
