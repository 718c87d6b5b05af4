import { ADMIN_ACTIONS, type AdminAction, type AdminActions, BLOCKING_CONTROL, type BlockingControl, parseOptions } from '@heimdall/core';
import { BadRequestError } from '@heimdall/core/errors';
import { expectRcode, query, type TestResolver, testResolver } from '@heimdall/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDuration } from './admin.js';
import { blocking } from './plugin.js';

const resolvers: TestResolver[] = [];
afterEach(async () => {
  for (const r of resolvers.splice(0)) await r.stop();
});

async function setup(): Promise<{ r: TestResolver; action: (name: string) => AdminAction; group: AdminActions }> {
  const r = testResolver([
    blocking({ build: 'inline', groups: { ads: { block: [{ inline: 'ads.example\ntracker.example', name: 'mine' }] } } }),
    blocking({ build: 'inline', groups: { kids: { block: [{ inline: 'games.example' }] } } }, { name: 'blocking-kids' }),
  ]);
  resolvers.push(r);
  await r.start();
  const groups = r.container.getAll<AdminActions>(ADMIN_ACTIONS);
  const group = groups.find((g) => g.plugin === 'blocking')!;
  return { r, group, action: (name) => group.actions.find((a) => a.name === name)! };
}

describe('admin actions', () => {
  it('one group per instance, with the documented methods and combine rules', async () => {
    const { r, group } = await setup();
    expect(r.container.getAll<AdminActions>(ADMIN_ACTIONS).map((g) => g.plugin)).toEqual(['blocking', 'blocking-kids']);
    expect(group.actions.map((a) => [a.name, a.method, a.combine])).toEqual([
      ['status', 'GET', 'first'],
      ['enable', 'POST', 'first'],
      ['disable', 'POST', 'first'],
      ['reload', 'POST', 'all'],
      ['lists', 'GET', 'first'],
    ]);
  });

  it('disable with a duration string or milliseconds, enable, status', async () => {
    const { r, action } = await setup();
    const control = r.get<BlockingControl>(BLOCKING_CONTROL);
    const now = r.clock.now();
    expect(await action('disable').run({ duration: '5m' })).toMatchObject({ enabled: false, disabledUntil: now + 300_000 });
    expect(control.status().enabled).toBe(false);
    expect(await action('disable').run({ durationMs: 1500 })).toMatchObject({ disabledUntil: now + 1500 });
    expect(await action('disable').run({})).toMatchObject({ enabled: false, disabledUntil: null });
    expect(await action('enable').run({})).toMatchObject({ enabled: true });
    expectRcode(await r.handle(query('ads.example')), 'NXDOMAIN');
    expect(await action('status').run({})).toMatchObject({ enabled: true, domains: 2 });
    // the other instance is independent
    expect(r.container.getAll<AdminActions>(ADMIN_ACTIONS)[1]!.actions[0]!.run({})).toMatchObject({ enabled: true, domains: 1 });
  });

  it('bad disable arguments: BadRequestError (400), and the args schema rejects them before run', async () => {
    const { action } = await setup();
    const disable = action('disable');
    expect(() => disable.run({ duration: '5m', durationMs: 1000 })).toThrow(BadRequestError);
    expect(() => disable.run({ duration: '5 minutes' })).toThrow(/must be a number with a unit/);
    expect(() => disable.run({ duration: '31d' })).toThrow(/between 1 ms and 30 days/);
    try {
      disable.run({ duration: 'soon' });
    } catch (e) {
      expect((e as BadRequestError).statusCode).toBe(400);
    }
    expect(() => parseOptions(disable.args!, { duration: '5 minutes' }, 'args')).toThrow(
      'args.duration: must be a number with a unit: ms, s, m, h or d (e.g. 30s, 5m, 1h)',
    );
    expect(() => parseOptions(disable.args!, { durationMs: 0 }, 'args')).toThrow('args.durationMs: must be an integer in 1..2592000000');
    expect(() => parseOptions(disable.args!, { until: 1 }, 'args')).toThrow(/args\.until: unknown option/);
    expect(parseOptions(disable.args!, { duration: '30s' }, 'args')).toEqual({ duration: '30s' });
  });

  it('reload returns the reload result; lists returns per-list status', async () => {
    const { action } = await setup();
    expect(await action('reload').run({})).toEqual({ rebuilt: true, changed: 0, failed: 0, rejected: 0 });
    expect(await action('lists').run({})).toEqual([
      {
        name: 'mine',
        group: 'ads',
        kind: 'block',
        type: 'inline',
        source: 'inline',
        required: false,
        entries: 2,
        lastRefresh: expect.any(Number),
        lastError: null,
      },
    ]);
  });
});

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['2d', 172_800_000],
    ['30d', 2_592_000_000],
  ])('%s → %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));
  it.each(['', '5', 'm', '1.5h', '-1s', '0s', '31d', '5 m', '1w'])('rejects %j', (text) => expect(() => parseDuration(text)).toThrow(BadRequestError));
});
