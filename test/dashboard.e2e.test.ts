/**
 * The web dashboard in a real browser: Debian's Chromium (installed by
 * scripts/ensure-tools.mjs) driven by playwright-core, against the BUILT app
 * started as a process, with real DNS queries from dig. Under CI=true this
 * never skips: a missing Chromium fails the run.
 *
 * Saves docs/dashboard-overview.png, docs/dashboard-query-log.png and
 * docs/dashboard-phone.png (shown in the app README).
 */
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RecordType } from '@heimdall/core';
import { encode } from '@heimdall/core/packet';
import { FakeUpstream, record, udpQuery } from '@heimdall/testing';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppProcess, admin, dig, freePort, REPO, startApp } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CI = process.env.CI === 'true' || process.env.CI === '1';
const TOKEN = 'dashboard-test-token';
/** The page refreshes every 2 s; the machine may be busy. */
const POLL = { timeout: 15_000, interval: 100 };

let up: FakeUpstream;
let app: AppProcess;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const dir = mkdtempSync(join(os.tmpdir(), 'heimdall-dash-'));
const list = join(dir, 'ads.txt');
const weather = join(dir, 'weather.mjs');

/**
 * A third-party plugin as an author would ship it (see docs/plugin-authoring.md):
 * one GET action whose argument has a default, so the dashboard's Plugins
 * tab can call it without asking for anything.
 */
function writeWeatherPlugin(): void {
  const core = pathToFileURL(join(REPO, 'packages/core/dist/index.js')).href;
  const di = pathToFileURL(join(REPO, 'packages/core/dist/di.js')).href;
  writeFileSync(
    weather,
    `import { ADMIN_ACTIONS, definePlugin, options, Type } from '${core}';
import { ContainerModule } from '${di}';
export default definePlugin({
  name: 'weather',
  setup: (_options, instance) => ({
    module: new ContainerModule(({ bind }) => {
      bind('weather-admin').toConstantValue({
        plugin: instance.name,
        actions: [
          {
            name: 'forecast',
            method: 'GET',
            description: 'the forecast for the next days',
            args: options({ days: Type.Integer({ minimum: 1, maximum: 7, default: 3 }) }),
            combine: 'first',
            run: ({ days }) => ({ days, sky: 'clear skies over the resolver' }),
          },
        ],
      });
    }),
    provides: [{ token: ADMIN_ACTIONS, use: 'weather-admin' }],
  }),
});
`,
  );
}

/** WCAG 2 contrast ratio of two CSS colours (\`rgb(…)\`/\`rgba(…)\`, as getComputedStyle gives them). */
function contrast(a: string, b: string): number {
  const lum = (c: string): number => {
    const [r, g, bl] = (c.match(/[\d.]+/g) ?? []).slice(0, 3).map((x) => {
      const v = Number(x) / 255;
      return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r! + 0.7152 * g! + 0.0722 * bl!;
  };
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}

/** Browser flags for this machine: headless, no sandbox as root, nothing that calls out to the network. */
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

describe.runIf(CI || existsSync(CHROMIUM))('dashboard in headless Chromium', () => {
  beforeAll(async () => {
    up = await FakeUpstream.start({ fallback: (q) => [record(q.name, 'A', '192.0.2.50', 300)] });
    writeFileSync(list, '# test list\nads.example.com\ntracker.example.net\n');
    writeWeatherPlugin();
    const port = await freePort();
    app = await startApp(
      {
        listen: [`127.0.0.1:${port}`],
        admin: { listen: '127.0.0.1:0', token: TOKEN },
        logLevel: 'info',
        plugins: [
          { use: 'metrics' },
          { use: 'stats' },
          { use: 'special-use' },
          { use: 'cache' },
          { use: 'upstream', options: { servers: [`127.0.0.1:${up.port}`] } },
          { use: weather },
        ],
      },
      ['--blocklist', list],
    );
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, baseURL: app.adminUrl! });
    page = await context.newPage();
    page.on('console', (m) => {
      // A Content-Security-Policy violation or a script error shows here.
      // (Chromium also logs the 401s this test provokes on purpose: those are not errors of the page.)
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
  }, 60_000);

  const errors: string[] = [];

  afterAll(async () => {
    await browser?.close();
    if (app) expect(await app.stop()).toBe(0);
    await up?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints the dashboard URL at start and serves the page with cache headers', async () => {
    expect(app.output()).toContain(`dashboard: open ${app.adminUrl}/ in a browser (log in with admin.token)`);
    const html = await fetch(`${app.adminUrl}/`);
    expect(html.status).toBe(200);
    expect(html.headers.get('cache-control')).toBe('no-cache');
    expect(html.headers.get('content-security-policy')).toContain("script-src 'self'");
    const asset = /src="(\/assets\/main-[A-Z0-9]+\.js)"/.exec(await html.text())![1]!;
    const js = await fetch(`${app.adminUrl}${asset}`, { headers: { 'accept-encoding': 'gzip' } });
    expect(js.status).toBe(200);
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    // A foreign Host header is refused for the page too (DNS rebinding).
    const foreign = await new Promise<number>((resolve, reject) =>
      http
        .get(`${app.adminUrl}/`, { headers: { host: 'evil.example' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
        .once('error', reject),
    );
    expect(foreign).toBe(403);
  });

  it('refuses a wrong token', async () => {
    await page.goto('/');
    const token = page.getByLabel('Admin token');
    await token.fill('not-the-token');
    await page.getByRole('button', { name: 'Log in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent(), POLL).toBe('Wrong token.');
    expect(await context.cookies()).toEqual([]);
    // The API answers 401 to the browser without a session.
    expect(await page.evaluate(async () => (await fetch('/actions')).status)).toBe(401);
  });

  it('logs in with the token: an HttpOnly SameSite=Strict session cookie', async () => {
    await page.getByLabel('Admin token').fill(TOKEN);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('navigation', { name: 'Sections' }).waitFor();
    const [cookie] = await context.cookies();
    expect(cookie).toMatchObject({ name: 'heimdall_session', httpOnly: true, sameSite: 'Strict' });
    expect(cookie!.value).not.toContain(TOKEN);
    // The cookie authenticates reads; a POST with it still needs the JSON type or the custom header (CSRF).
    expect(await page.evaluate(async () => (await fetch('/actions')).status)).toBe(200);
    expect(await page.evaluate(async () => (await fetch('/cache/flush', { method: 'POST' })).status)).toBe(403);
    expect(await page.evaluate(async () => (await fetch('/cache/flush', { method: 'POST', headers: { 'x-heimdall-request': '1' } })).status)).toBe(200);
  });

  it('shows queries sent with dig in the counters and the query log', async () => {
    await page.getByRole('link', { name: 'Overview' }).click();
    const total = page.getByTestId('queries-total');
    await total.waitFor();
    const before = Number((await total.textContent())!.replace(/,/g, ''));
    for (const name of ['example.com', 'example.com', 'www.example.org', 'x.ads.example.com']) await dig(app.port, [name]);
    expect((await dig(app.port, ['tracker.example.net', 'AAAA'])).status).toBe('NXDOMAIN');
    await expect.poll(async () => Number((await total.textContent())!.replace(/,/g, '')), POLL).toBe(before + 5);
    await expect.poll(() => page.getByTestId('hit-ratio').textContent(), POLL).not.toBe('–');
    await expect.poll(() => page.getByTestId('blocked-share').textContent(), POLL).not.toBe('0.0 %');

    // Some background traffic so the charts have a shape (real UDP queries, bounded).
    const names = [
      'example.com',
      'www.example.org',
      'ads.example.com',
      'cdn.example.net',
      'mail.example.com',
      'api.example.io',
      'tracker.example.net',
      'nothing.invalid',
    ];
    for (let i = 0; i < 240; i++) {
      const name = names[(i * 7) % names.length]!;
      await udpQuery(
        app.port,
        encode({ id: i, rd: true, questions: [{ name: i % 11 === 0 ? `host${i}.example.com` : name, type: i % 5 === 0 ? RecordType.AAAA : RecordType.A }] }),
      );
    }
    await expect.poll(async () => Number((await total.textContent())!.replace(/,/g, '')), POLL).toBeGreaterThanOrEqual(before + 245);
    // The upstream table: one upstream, up, with answers counted.
    const upRows = page.getByRole('region', { name: 'Upstream health and latency' }).locator('tbody tr');
    await expect.poll(() => upRows.count(), POLL).toBe(1);
    await expect.poll(async () => (await upRows.first().locator('td').nth(1).textContent()) ?? '', POLL).toBe('up');
    await expect.poll(async () => Number(((await upRows.first().locator('td').nth(2).textContent()) ?? '0').replace(/,/g, '')), POLL).toBeGreaterThan(0);
    // The RTT average is measured below a millisecond, not 0.00 ms.
    await expect.poll(async () => (await upRows.first().locator('td').nth(5).textContent()) ?? '', POLL).toMatch(/^(?!0\.00 ms)\d+(\.\d+)? ms$/);
    // Every chart: a labelled figure with a canvas drawn by uPlot.
    for (const title of ['Queries per second', 'Latency (per 10 s)', 'Answers by response code', 'Upstream latency (per 10 s)']) {
      const fig = page.locator('figure.chart', { has: page.getByText(title, { exact: true }) });
      await expect.poll(() => fig.locator('canvas').count(), POLL).toBe(1);
      expect(await fig.getByRole('img').getAttribute('aria-label')).toMatch(new RegExp(`^${title.replace(/[()]/g, '\\$&')}: chart of the last`));
    }
    // The rcode chart's legend names the main response codes.
    const rcodeChart = page.locator('figure.chart', { has: page.getByText('Answers by response code', { exact: true }) });
    const legend = (await rcodeChart.locator('.u-legend').textContent()) ?? '';
    for (const code of ['NOERROR', 'NXDOMAIN', 'SERVFAIL', 'REFUSED', 'other']) expect(legend).toContain(code);
    await page.screenshot({ path: join(REPO, 'docs/dashboard-overview.png'), fullPage: true });

    // Top lists: the name asked most is listed.
    await page.getByRole('link', { name: 'Top lists' }).click();
    await expect
      .poll(
        async () => (await page.getByRole('region', { name: 'Top queried names' }).locator('tbody td:first-child').allTextContents()).includes('example.com'),
        POLL,
      )
      .toBe(true);

    await page.getByRole('link', { name: 'Query log' }).click();
    const rows = page.locator('table tbody tr');
    await expect.poll(() => rows.count(), POLL).toBeGreaterThan(10);
    await expect.poll(async () => (await page.locator('table').textContent()) ?? '', POLL).toContain('blocked by list');
    // The why names the entry: x.ads.example.com was blocked by the entry ads.example.com.
    await page.getByLabel('Name contains').fill('x.ads.example.com');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect
      .poll(async () => {
        const texts = await rows.allTextContents();
        return texts.length > 0 && texts.every((r) => r.includes('x.ads.example.com') && r.includes('blocked by list') && r.includes('rule ads.example.com'));
      }, POLL)
      .toBe(true);
    await page.getByRole('button', { name: 'Clear' }).click();
    await page.getByLabel('Name contains').fill('tracker');
    await page.getByLabel('Blocked').selectOption('true');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect
      .poll(async () => (await rows.allTextContents()).every((r) => r.includes('tracker.example.net') && r.includes('blocked by list')), POLL)
      .toBe(true);
    await page.getByRole('button', { name: 'Clear' }).click();
    await page.getByLabel('Forwarded').selectOption('true');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(async () => (await rows.allTextContents()).every((r) => r.includes(`forwarded to`)), POLL).toBe(true);
    await page.getByRole('button', { name: 'Clear' }).click();
    await expect.poll(async () => (await rows.allTextContents()).some((r) => r.includes('cache hit')), POLL).toBe(true);
    await page.screenshot({ path: join(REPO, 'docs/dashboard-query-log.png'), fullPage: false });
  }, 90_000);

  it('disables blocking for 1 minute: a listed name resolves; enable blocks it again', async () => {
    expect((await dig(app.port, ['ads.example.com'])).status).toBe('NXDOMAIN');
    await page.getByRole('link', { name: 'Controls' }).click();
    await page.getByLabel('Disable for').selectOption('1m');
    await page.getByRole('button', { name: 'Disable blocking' }).click();
    await expect.poll(() => page.getByRole('status').first().textContent(), POLL).toMatch(/^Blocking disabled until /);
    await expect.poll(() => page.getByTestId('blocking-state').textContent(), POLL).toMatch(/disabled until/);
    const status = (await admin(app.adminUrl!, '/blocking/status', { headers: { authorization: `Bearer ${TOKEN}` } })).json() as {
      enabled: boolean;
      disabledUntil: number;
    };
    expect(status.enabled).toBe(false);
    expect(status.disabledUntil - Date.now()).toBeGreaterThan(50_000);
    expect(status.disabledUntil - Date.now()).toBeLessThanOrEqual(60_000);
    const open = await dig(app.port, ['+noedns', 'ads.example.com']);
    expect(open.status).toBe('NOERROR');
    expect(open.answers[0]?.data).toBe('192.0.2.50');
    await page.getByRole('button', { name: 'Enable blocking' }).click();
    await expect.poll(() => page.getByTestId('blocking-state').textContent(), POLL).toMatch(/enabled/);
    expect((await dig(app.port, ['ads.example.com', 'AAAA'])).status).toBe('NXDOMAIN');
    // The per-list status.
    await expect.poll(async () => (await page.getByRole('region', { name: 'Block and allow lists' }).textContent()) ?? '', POLL).toContain(list);
  });

  it('reloads the lists and says honestly what happened', async () => {
    const status = page.getByRole('status').first();
    await page.getByRole('button', { name: 'Reload lists' }).click();
    await expect.poll(() => status.textContent(), POLL).toMatch(/^Lists reloaded: /);
    // The list file gone: the reload fails for it (the last good copy stays), and the page says so.
    renameSync(list, `${list}.away`);
    try {
      await page.getByRole('button', { name: 'Reload lists' }).click();
      await expect.poll(() => status.textContent(), POLL).toMatch(/^Reload incomplete: 1 list failed to refresh/);
      expect(await status.getAttribute('class')).toContain('error');
      expect((await dig(app.port, ['ads.example.com'])).status).toBe('NXDOMAIN');
    } finally {
      renameSync(`${list}.away`, list);
    }
  });

  it('flushes one name from the cache', async () => {
    await dig(app.port, ['flush-me.example.com']);
    await dig(app.port, ['flush-me.example.com']);
    expect(up.count('flush-me.example.com')).toBe(1);
    await page.getByLabel('one name').check();
    await page.getByLabel('Name', { exact: true }).fill('flush-me.example.com');
    await page.getByRole('button', { name: 'Flush cache' }).click();
    await expect.poll(() => page.getByRole('status').nth(1).textContent(), POLL).toBe('Flushed flush-me.example.com: 1 entry removed.');
    await dig(app.port, ['flush-me.example.com']);
    expect(up.count('flush-me.example.com')).toBe(2);
  });

  it('flushes a name and everything below it', async () => {
    for (const name of ['below.example.org', 'a.below.example.org', 'b.a.below.example.org', 'beside.example.org']) await dig(app.port, [name]);
    await page.getByLabel('a name and below').check();
    await page.getByLabel('Name', { exact: true }).fill('below.example.org');
    await page.getByRole('button', { name: 'Flush cache' }).click();
    await expect.poll(() => page.getByRole('status').nth(1).textContent(), POLL).toBe('Flushed below.example.org: 3 entries removed.');
    for (const name of ['a.below.example.org', 'beside.example.org']) await dig(app.port, [name]);
    expect(up.count('a.below.example.org')).toBe(2);
    expect(up.count('beside.example.org')).toBe(1);
  });

  it('flushes everything', async () => {
    await dig(app.port, ['everything.example.org']);
    await page.getByLabel('everything').check();
    expect(await page.getByLabel('Name', { exact: true }).isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Flush cache' }).click();
    await expect.poll(() => page.getByRole('status').nth(1).textContent(), POLL).toMatch(/^Flushed everything: [1-9][\d,]* (entry|entries) removed\.$/);
    const stats = (await admin(app.adminUrl!, '/cache/stats', { headers: { authorization: `Bearer ${TOKEN}` } })).json() as { entries: number };
    expect(stats.entries).toBe(0);
    await dig(app.port, ['everything.example.org']);
    expect(up.count('everything.example.org')).toBe(2);
  });

  it("shows a third-party plugin's GET action (an argument with a default) under Plugins, with its data", async () => {
    await page.getByRole('link', { name: 'Plugins' }).click();
    const button = page.getByRole('button', { name: '/weather/forecast' });
    await button.waitFor({ timeout: 5000 });
    await button.click();
    await expect.poll(async () => (await page.locator('pre').first().textContent()) ?? '', POLL).toContain('clear skies over the resolver');
    expect(await page.locator('pre').first().textContent()).toContain('"days": 3');
    expect(await button.getAttribute('aria-expanded')).toBe('true');
    // The stats plugin's own GETs (defaulted arguments too) are listed.
    await page.getByRole('button', { name: '/stats/overview' }).waitFor({ timeout: 5000 });
  });

  it('is usable by keyboard and at phone width', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto('about:blank');
    await page.goto('/#overview');
    await page.getByTestId('queries-total').waitFor();
    // Skip link first, then the sections; Enter on a section moves there.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => (globalThis as any).document.activeElement?.textContent)).toBe('Skip to content');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => (globalThis as any).document.activeElement?.textContent)).toBe('Top lists');
    // The focus ring stands out (WCAG 1.4.11: >= 3:1) against every background the page uses: page, cards, header.
    const colours = await page.evaluate(() => {
      const d = (globalThis as any).document;
      const bg = (sel: string) => (globalThis as any).getComputedStyle(d.querySelector(sel)).backgroundColor as string;
      const focused = (globalThis as any).getComputedStyle(d.activeElement);
      return { outline: focused.outlineColor as string, style: focused.outlineStyle as string, backgrounds: [bg('html'), bg('header.top'), bg('.card')] };
    });
    expect(colours.style).toBe('solid');
    expect(colours.backgrounds.filter((b) => !/rgba\(0, 0, 0, 0\)/.test(b))).toHaveLength(3);
    for (const b of colours.backgrounds) expect(contrast(colours.outline, b), `${colours.outline} on ${b}`).toBeGreaterThanOrEqual(3);
    await page.keyboard.press('Enter');
    await expect.poll(() => page.evaluate(() => (globalThis as any).document.activeElement?.textContent), POLL).toBe('Top lists');
    expect(page.url()).toContain('#top');
    await page.getByRole('region', { name: 'Top queried names' }).first().waitFor();
    for (const route of ['overview', 'queries', 'controls']) {
      await page.goto(`/#${route}`);
      await page.locator('main h2').waitFor();
      await page.waitForTimeout(300);
      // Nothing wider than the screen: tables scroll inside their own region.
      expect(await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    }
    await page.goto('/#overview');
    await page.getByTestId('queries-total').waitFor();
    await page.screenshot({ path: join(REPO, 'docs/dashboard-phone.png'), fullPage: false });
    // Every form control has a label (getByLabel finds them).
    const unlabeled = await page.evaluate(
      () =>
        [...(globalThis as any).document.querySelectorAll('input, select')].filter((e) => (e as { labels?: { length: number } }).labels?.length === 0).length,
    );
    expect(unlabeled).toBe(0);
    expect(errors).toEqual([]);
  });

  it('logs out', async () => {
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('Admin token').waitFor();
    expect(await page.evaluate(async () => (await fetch('/actions')).status)).toBe(401);
  });
});
