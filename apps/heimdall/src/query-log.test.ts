import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { createResolver, type HeimdallPlugin, RecordType } from '@heimdall/core';
import { query } from '@heimdall/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { queryLog } from './plugins/query-log.js';

const answerer: HeimdallPlugin = {
  name: 'answer',
  middleware: () => async (ctx) => {
    await Promise.resolve();
    ctx.answer([{ name: ctx.query.qname, type: RecordType.A, ttl: 5, data: '192.0.2.1' }]);
  },
};

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('query-log plugin', () => {
  it('writes one JSON line per query to a file', async () => {
    const dir = mkdtempSync(join(os.tmpdir(), 'qlog-'));
    dirs.push(dir);
    const file = join(dir, 'sub', 'queries.log');
    const r = createResolver({ plugins: [queryLog({ output: file }), answerer] });
    await r.start();
    await r.handle(query('Www.Example.com', 'A'), { transport: 'tcp', address: '192.0.2.44' });
    await r.handle(query('other.example', 'AAAA'));
    await r.stop();
    await new Promise((res) => setTimeout(res, 50));
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ msg: 'query', client: '192.0.2.44', transport: 'tcp', qname: 'Www.Example.com', qtype: 'A', rcode: 'NOERROR', answers: 1 });
    expect(typeof lines[0].ms).toBe('number');
    expect(lines[1]).toMatchObject({ qname: 'other.example', qtype: 'AAAA' });
  });

  it('samples', async () => {
    const dir = mkdtempSync(join(os.tmpdir(), 'qlog-'));
    dirs.push(dir);
    const file = join(dir, 'q.log');
    const r = createResolver({ plugins: [queryLog({ output: file, sampleRate: 0.5 }), answerer] });
    await r.start();
    for (let i = 0; i < 400; i++) await r.handle(query(`n${i}.example`, 'A'));
    await r.stop();
    await new Promise((res) => setTimeout(res, 50));
    const n = readFileSync(file, 'utf8').trim().split('\n').length;
    expect(n).toBeGreaterThan(120);
    expect(n).toBeLessThan(280);
  });

  it('rejects bad options with the field named', () => {
    expect(() => queryLog({ sampleRate: 2 })).toThrow('query-log.sampleRate: must be a number from 0 to 1');
    expect(() => queryLog({ output: '' })).toThrow('query-log.output');
    expect(() => queryLog({ rate: 1 } as never)).toThrow('query-log.rate: unknown option');
  });
});
