/**
 * The app's DoT/DoH wiring: --dot/--doh/--tls-cert/--tls-key, the `dot` and
 * `doh` config sections, a missing certificate named at start, and a
 * certificate reloaded by the app's reload (SIGHUP). Real kdig clients.
 */
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { silentLogger } from '@heimdall/core/pipeline';
import { pino } from 'pino';
import { afterAll, describe, expect, test } from 'vitest';
import { listenOptions, startApp } from './app.js';
import { parseCli } from './args.js';
import { resolveConfig } from './config.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(os.tmpdir(), 'heimdall-app-tls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function makeCert(name: string, cn: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${cn}`],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

describe('app: DoT and DoH', () => {
  test('flags and config sections become tls/https listeners; relative paths resolve from the config file; a missing pair is named', () => {
    const args = parseCli(['--dot', '127.0.0.1:853', '--doh', '[::1]:443', '--tls-cert', 'c.pem', '--tls-key', '/k.pem']);
    expect(args.overrides).toMatchObject({ dot: ['127.0.0.1:853'], doh: ['[::1]:443'], tlsCert: join(process.cwd(), 'c.pem'), tlsKey: '/k.pem' });
    const file = join(dir, 'h.json');
    writeFileSync(
      file,
      JSON.stringify({
        listen: ['127.0.0.1:5353'],
        admin: { enabled: false },
        dot: { listen: ['127.0.0.1:8853'], cert: 'a.crt', key: 'a.key', idleTimeoutMs: 5000 },
        doh: { listen: ['127.0.0.1:8443'], cert: 'a.crt', key: 'a.key', json: true },
        plugins: [],
      }),
    );
    const c = resolveConfig(file, {});
    expect(c.dot).toMatchObject({ cert: join(dir, 'a.crt'), key: join(dir, 'a.key'), idleTimeoutMs: 5000, padding: 'always' });
    const l = listenOptions(c);
    expect(l.filter((x) => x.transport === 'tls')).toEqual([
      expect.objectContaining({ transport: 'tls', address: '127.0.0.1', port: 8853, cert: join(dir, 'a.crt'), idleTimeoutMs: 5000 }),
    ]);
    expect(l.filter((x) => x.transport === 'https')).toEqual([
      expect.objectContaining({ transport: 'https', address: '127.0.0.1', port: 8443, json: true, path: '/dns-query' }),
    ]);
    // Flags override the file's addresses and pair.
    const o = resolveConfig(file, { dot: ['127.0.0.1:9853'], tlsCert: '/x.crt', tlsKey: '/x.key' });
    expect(o.dot).toMatchObject({ listen: ['127.0.0.1:9853'], cert: '/x.crt', key: '/x.key' });
    expect(o.doh.cert).toBe('/x.crt');
    expect(() => resolveConfig(undefined, { dot: ['127.0.0.1:853'] })).toThrow(/^dot\.cert: is required when serving DNS over TLS \(or --tls-cert FILE\)/);
    expect(() => resolveConfig(undefined, { doh: ['127.0.0.1:443'], tlsCert: '/x.crt' })).toThrow(/^doh\.key: is required/);
    expect(() => resolveConfig(undefined, { dot: ['nowhere'], tlsCert: '/x', tlsKey: '/y' })).toThrow(/dot\.listen\[0\]/);
  });

  test('serves kdig +tls and +https; a mismatched pair fails at start naming the file; reload() swaps the certificate', async () => {
    const a = makeCert('a', 'one.test');
    const b = makeCert('b', 'two.test');
    const live = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
    copyFileSync(a.cert, live.cert);
    copyFileSync(a.key, live.key);
    const file = join(dir, 'serve.json');
    writeFileSync(file, JSON.stringify({ listen: ['127.0.0.1:0'], admin: { enabled: false }, logLevel: 'silent', plugins: [{ use: 'special-use' }] }));
    const bad = resolveConfig(file, { dot: ['127.0.0.1:0'], tlsCert: a.cert, tlsKey: b.key });
    // The user's field (dot.key), not core's internal listen[i].key.
    await expect(startApp(bad, { logger: silentLogger() })).rejects.toThrow(/^dot\.key: .*b\.key is not the private key of the certificate in .*a\.crt/);
    const badDoh = resolveConfig(file, { doh: ['127.0.0.1:0'], tlsCert: join(dir, 'missing.crt'), tlsKey: a.key });
    await expect(startApp(badDoh, { logger: silentLogger() })).rejects.toThrow(/^doh\.cert: cannot read .*missing\.crt/);
    const config = resolveConfig(file, { dot: ['127.0.0.1:0'], doh: ['127.0.0.1:0'], tlsCert: live.cert, tlsKey: live.key });
    const logged: Array<{ msg?: string; field?: string; error?: string }> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString().split('\n')) if (line) logged.push(JSON.parse(line) as (typeof logged)[number]);
        cb();
      },
    });
    const app = await startApp(config, { logger: pino({ level: 'info' }, sink) });
    try {
      const port = (t: string) => String(app.resolver.addresses().find((x) => x.transport === t)!.port);
      for (const [mode, t] of [
        ['+tls', 'tls'],
        ['+https', 'https'],
      ]) {
        const { stdout } = await run('kdig', [mode!, '@127.0.0.1', '-p', port(t!), 'localhost', 'A'], { timeout: 10_000 });
        expect(stdout).toMatch(/status: NOERROR/);
        expect(stdout).toMatch(/localhost\.\s+\d+\s+IN\s+A\s+127\.0\.0\.1/);
      }
      const cn = () =>
        new Promise<string>((resolve, reject) => {
          const s = tls.connect({ host: '127.0.0.1', port: Number(port('tls')), rejectUnauthorized: false, ALPNProtocols: ['dot'] }, () => {
            resolve(String(s.getPeerCertificate().subject.CN));
            s.destroy();
          });
          s.on('error', reject);
        });
      expect(await cn()).toBe('one.test');
      copyFileSync(b.key, live.key);
      copyFileSync(b.cert, live.cert);
      await app.reload(); // SIGHUP (the file watcher may have been first)
      expect(await cn()).toBe('two.test');
      // A broken key on reload: logged naming the user's fields, the current pair kept.
      writeFileSync(live.key, 'broken');
      await app.reload();
      const failures = logged.filter((l) => l.msg?.startsWith('TLS certificate reload failed'));
      expect(failures.map((l) => l.field).sort()).toEqual(expect.arrayContaining(['doh.key', 'dot.key']));
      expect(failures.every((l) => /^do[th]\.key: .*live\.key is not a PEM private key/.test(l.error ?? ''))).toBe(true);
      expect(await cn()).toBe('two.test');
    } finally {
      await app.stop();
    }
  });
});
