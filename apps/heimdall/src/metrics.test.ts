import { createResolver, type HeimdallPlugin, METRICS, RecordType, type Registry } from '@heimdall/core';
import { query } from '@heimdall/testing';
import { describe, expect, it } from 'vitest';
import { DEFAULT_BUCKETS, metrics } from './plugins/metrics.js';

const answerer: HeimdallPlugin = {
  name: 'answer',
  middleware: () => (ctx) => {
    if (ctx.query.qname === 'nx.example') ctx.nxdomain();
    else if (ctx.query.qname === 'none.example') return;
    else ctx.answer([{ name: ctx.query.qname, type: RecordType.A, ttl: 5, data: '192.0.2.1' }]);
  },
};

describe('metrics plugin', () => {
  it('counts by qtype, rcode and transport and times queries, under the historical names', async () => {
    const r = createResolver({ plugins: [metrics(), answerer] });
    await r.handle(query('a.example', 'A'), { transport: 'udp' });
    await r.handle(query('a.example', 'A'), { transport: 'udp' });
    await r.handle(query('nx.example', 'AAAA'), { transport: 'tcp' });
    await r.handle(query('none.example', 'MX'), { transport: 'udp' });
    const text = await r.container.get<Registry>(METRICS).metrics();
    expect(text).toContain('heimdall_requests_total{qtype="A",rcode="NOERROR",transport="udp"} 2');
    expect(text).toContain('heimdall_requests_total{qtype="AAAA",rcode="NXDOMAIN",transport="tcp"} 1');
    expect(text).toContain('heimdall_requests_total{qtype="MX",rcode="unanswered",transport="udp"} 1');
    expect(text).toMatch(/heimdall_request_duration_seconds_count\{transport="udp"\} 3/);
    expect(text).toMatch(/heimdall_request_duration_seconds_bucket\{le="\+Inf",transport="tcp"\} 1/);
    await r.stop();
  });

  it('counts synchronous answers as 0 s without reading a clock, and times asynchronous ones', async () => {
    const slow: HeimdallPlugin = {
      name: 'slow',
      middleware: () => async (ctx) => {
        await new Promise((done) => setTimeout(done, 30));
        ctx.answer([{ name: ctx.query.qname, type: RecordType.A, ttl: 5, data: '192.0.2.1' }]);
      },
    };
    const sync = createResolver({ plugins: [metrics(), answerer] });
    const now = performance.now;
    let reads = 0;
    performance.now = () => {
      reads++;
      return now.call(performance);
    };
    try {
      sync.process(query('a.example', 'A'), { address: '127.0.0.1', port: 1, family: 4, transport: 'udp' });
    } finally {
      performance.now = now;
    }
    expect(reads).toBe(0);
    const text = await sync.container.get<Registry>(METRICS).metrics();
    expect(text).toContain('heimdall_request_duration_seconds_bucket{le="0.00005",transport="udp"} 1');
    expect(text).toContain('heimdall_request_duration_seconds_sum{transport="udp"} 0');
    await sync.stop();
    const async = createResolver({ plugins: [metrics(), slow] });
    await async.handle(query('a.example', 'A'), { transport: 'udp' });
    const timed = await async.container.get<Registry>(METRICS).metrics();
    expect(timed).toContain('heimdall_request_duration_seconds_bucket{le="0.01",transport="udp"} 0');
    expect(timed).toContain('heimdall_request_duration_seconds_bucket{le="0.05",transport="udp"} 1');
    await async.stop();
  });

  it('a second instance, named, counts under its own prefix', async () => {
    const inner = metrics({ buckets: [0.001, 1] }, { name: 'metrics-inner' });
    const r = createResolver({ plugins: [metrics(), inner, answerer] });
    await r.handle(query('a.example', 'A'), { transport: 'udp' });
    const text = await r.container.get<Registry>(METRICS).metrics();
    expect(text).toContain('heimdall_requests_total{qtype="A",rcode="NOERROR",transport="udp"} 1');
    expect(text).toContain('heimdall_metrics_inner_requests_total{qtype="A",rcode="NOERROR",transport="udp"} 1');
    expect(text).toMatch(/heimdall_metrics_inner_request_duration_seconds_bucket\{le="1",transport="udp"\} 1/);
    await r.stop();
  });

  it('validates its options with its schema', () => {
    expect(metrics().options).toEqual({ buckets: [...DEFAULT_BUCKETS] });
    expect(() => metrics({ buckets: [0.1, 0.05] })).toThrow('metrics.buckets[1]: must be greater than the previous bucket');
    expect(() => metrics({ buckets: [0, 1] })).toThrow('metrics.buckets[0]: must be a number greater than 0');
    expect(() => metrics({ buckets: [] })).toThrow('metrics.buckets: must not be empty');
    expect(() => metrics({ bogus: 1 } as never)).toThrow('metrics.bogus: unknown option (known: buckets)');
    expect(() => metrics({ buckets: [1, 'x'] } as never, { path: 'plugins[0].options' })).toThrow('plugins[0].options.buckets[1]: must be a number');
  });
});
