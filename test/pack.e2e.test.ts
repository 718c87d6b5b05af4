/**
 * Installable outside the monorepo: every package is `npm pack`ed, the app is
 * installed from the tarballs into an empty folder (dependencies on
 * `@heimdall/*` satisfied by the tarballs, third-party ones from the
 * registry), a third-party plugin is packed and installed next to a config
 * (with `@heimdall/core` as an optional peer, so npm fetches no core), and
 * the installed app serves with it, loading the plugin by package name.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { dig, freePort, REPO } from './helpers.js';

const run = promisify(execFile);
/** Every publishable workspace package (packages/*, plugins/*, apps/*). */
const PACKAGES = ['packages', 'plugins', 'apps']
  .flatMap((group) => readdirSync(join(REPO, group)).map((name) => `${group}/${name}`))
  .filter((dir) => existsSync(join(REPO, dir, 'package.json')));
const NPM_FLAGS = ['--no-audit', '--no-fund', '--loglevel=error', '--ignore-scripts'];

let work: string;
let tarballs: Map<string, string>;

async function npm(args: string[], cwd: string): Promise<string> {
  const { stdout } = await run('npm', args, { cwd, maxBuffer: 16 << 20, timeout: 240_000, env: { ...process.env, npm_config_update_notifier: 'false' } });
  return stdout;
}

function writePackage(dir: string, files: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), body);
}

const plugin = (name: string, body: string) => ({
  'package.json': JSON.stringify({
    name,
    version: '1.0.0',
    type: 'module',
    exports: './index.js',
    peerDependencies: { '@heimdall/core': '^0.1.0' },
    peerDependenciesMeta: { '@heimdall/core': { optional: true } },
  }),
  'index.js': body,
});

beforeAll(async () => {
  work = join(os.tmpdir(), `heimdall-pack-${process.pid}-${Date.now()}`);
  mkdirSync(join(work, 'tgz'), { recursive: true });
  tarballs = new Map();
  for (const pkg of PACKAGES) {
    const out = JSON.parse(await npm(['pack', '--json', '--pack-destination', join(work, 'tgz'), ...NPM_FLAGS], join(REPO, pkg))) as Array<{
      name: string;
      filename: string;
    }>;
    tarballs.set(out[0]!.name, join(work, 'tgz', out[0]!.filename));
  }
  // The app and what it depends on, from tarballs, in an empty folder.
  writePackage(join(work, 'app'), { 'package.json': '{ "name": "install-test", "private": true }' });
  const runtime = [...tarballs].filter(([name]) => name !== '@heimdall/testing').map(([, file]) => file);
  await npm(['install', '--omit=dev', ...NPM_FLAGS, ...runtime], join(work, 'app'));

  // Two third-party plugins, packed and installed next to the config.
  writePackage(
    join(work, 'src', 'hello'),
    plugin(
      'heimdall-plugin-hello',
      `import { definePlugin, options, RecordType, Type } from '@heimdall/core';
export default definePlugin({
  name: 'hello',
  options: options({ text: Type.String({ default: 'hi', maxLength: 100 }) }),
  setup: (o) => ({
    middleware: () => (ctx, next) => (ctx.query.qname === 'hello.test' ? ctx.answer([{ name: ctx.query.qname, type: RecordType.TXT, data: [o.text] }]) : next()),
  }),
});
`,
    ),
  );
  writePackage(join(work, 'src', 'broken'), plugin('heimdall-plugin-broken', `import 'no-such-dependency-xyz';\nexport default () => ({ name: 'broken' });\n`));
  for (const p of ['hello', 'broken']) await npm(['pack', '--pack-destination', join(work, 'tgz'), ...NPM_FLAGS], join(work, 'src', p));
  writePackage(join(work, 'cfg'), { 'package.json': '{ "name": "config-dir", "private": true }' });
  await npm(
    ['install', ...NPM_FLAGS, join(work, 'tgz', 'heimdall-plugin-hello-1.0.0.tgz'), join(work, 'tgz', 'heimdall-plugin-broken-1.0.0.tgz')],
    join(work, 'cfg'),
  );
}, 300_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const cli = () => join(work, 'app', 'node_modules', '@heimdall', 'app', 'dist', 'cli.js');

function config(file: string, port: number, plugins: unknown[]): string {
  const path = join(work, 'cfg', file);
  writeFileSync(path, JSON.stringify({ listen: [`127.0.0.1:${port}`], admin: { enabled: false }, logLevel: 'info', plugins }));
  return path;
}

describe('installed from tarballs, outside the monorepo', () => {
  test('only runtime packages are installed: one @heimdall/core, no @heimdall/testing, the schema shipped', () => {
    const scope = join(work, 'app', 'node_modules', '@heimdall');
    const expected = [...tarballs.keys()].filter((n) => n !== '@heimdall/testing').map((n) => n.slice('@heimdall/'.length));
    expect(readdirSync(scope).sort()).toEqual(expected.sort());
    expect(expected).toEqual(expect.arrayContaining(['app', 'core', 'plugin-cache', 'plugin-upstream']));
    expect(existsSync(join(scope, 'app', 'schema', 'heimdall.schema.json'))).toBe(true);
    expect(existsSync(join(scope, 'app', 'node_modules', '@heimdall'))).toBe(false); // no nested second copy
    expect(existsSync(join(work, 'cfg', 'node_modules', '@heimdall'))).toBe(false); // optional peer: npm fetched no core
  });

  test('the installed app serves, with a third-party plugin loaded by package name on its own core', async () => {
    const port = await freePort();
    const file = config('heimdall.json', port, [{ use: 'heimdall-plugin-hello', options: { text: 'from a tarball' } }, { use: 'special-use' }]);
    const child = spawn(process.execPath, [cli(), '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (out += c));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not listening after 20 s:\n${out}`)), 20_000);
        const poll = setInterval(() => {
          if (out.includes('"listening"') || out.includes('listening')) {
            clearInterval(poll);
            clearTimeout(timer);
            resolve();
          }
        }, 50);
        child.once('exit', (code) => reject(new Error(`exited with ${code}:\n${out}`)));
      });
      const hello = await dig(port, ['hello.test', 'TXT']);
      expect(hello.status).toBe('NOERROR');
      expect(hello.answers.map((a) => a.data)).toEqual(['"from a tarball"']);
      const local = await dig(port, ['localhost', 'A']);
      expect(local.answers.map((a) => a.data)).toEqual(['127.0.0.1']);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  }, 60_000);

  test('--check validates a third-party plugin against its schema, and a failing import shows the real error', async () => {
    const port = await freePort();
    const bad = config('bad.json', port, [{ use: 'heimdall-plugin-hello', options: { text: 'x'.repeat(101) } }]);
    const r1 = await run(process.execPath, [cli(), '--check', '--config', bad]).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string; stdout: string }) => ({ code: e.code, stderr: `${e.stderr}${e.stdout}` }),
    );
    expect(r1.code).toBe(2);
    expect(r1.stderr).toContain('plugins[0].options.text: must be at most 100 characters long');
    const broken = config('broken.json', port, [{ use: 'heimdall-plugin-broken' }]);
    const r2 = await run(process.execPath, [cli(), '--check', '--config', broken]).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string; stdout: string }) => ({ code: e.code, stderr: `${e.stderr}${e.stdout}` }),
    );
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain('no-such-dependency-xyz');
    expect(r2.stderr).not.toContain('is it installed');
  }, 60_000);

  test("--print-schema adds the installed third-party plugin's options to the published schema", async () => {
    const file = config('schema.json', await freePort(), [{ use: 'heimdall-plugin-hello' }, { use: 'cache' }]);
    const { stdout } = await run(process.execPath, [cli(), '--print-schema', '--config', file], { maxBuffer: 16 << 20 });
    const schema = JSON.parse(stdout) as { definitions: Record<string, any> };
    expect(schema.definitions.heimdallPluginHelloOptions.properties.text).toMatchObject({ type: 'string', maxLength: 100, default: 'hi' });
    const branch = schema.definitions.pluginEntry.allOf.find((b: any) => b.if.properties.use.const === 'heimdall-plugin-hello');
    expect(branch.then.properties.options.$ref).toBe('#/definitions/heimdallPluginHelloOptions');
    expect(schema.definitions.cacheOptions).toBeDefined();
  }, 60_000);
});
