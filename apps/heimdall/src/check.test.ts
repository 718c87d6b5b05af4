/**
 * The plugin registry and `heimdall --check`: instance names, errors at the
 * config path, third-party plugins installed next to the config (loaded
 * with core's loadPlugin, options validated by their schema, check()
 * preflights), every problem reported.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '@heimdall/core';
import { buildPlugins, checkPlugins, startErrorAtConfigPath } from './plugins/registry.js';

const APP = resolve(fileURLToPath(new URL('..', import.meta.url)));
const CORE = resolve(APP, '../../packages/core');

const dir = mkdtempSync(join(os.tmpdir(), 'heimdall-check-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(path: string, text: string): void {
  mkdirSync(join(dir, path, '..'), { recursive: true });
  writeFileSync(join(dir, path), text);
}

// @acme/heimdall-geo: a third-party plugin declared with definePlugin, with a check() preflight.
// @heimdall/core is its peer dependency, installed beside it (as npm does for a config directory).
mkdirSync(join(dir, 'node_modules/@heimdall'), { recursive: true });
symlinkSync(CORE, join(dir, 'node_modules/@heimdall/core'), 'dir');
write(
  'node_modules/@acme/heimdall-geo/package.json',
  JSON.stringify({ name: '@acme/heimdall-geo', type: 'module', exports: './index.js', peerDependencies: { '@heimdall/core': '*' } }),
);
write(
  'node_modules/@acme/heimdall-geo/index.js',
  `import { existsSync } from 'node:fs';
import { definePlugin, options, Type } from '@heimdall/core';
export default definePlugin({
  name: '@acme/geo',
  description: 'Answers from a GeoIP database',
  options: options({
    ttl: Type.Integer({ minimum: 0, maximum: 86400, default: 60 }),
    database: Type.String({ minLength: 1 }),
  }),
  setup: (o, instance) => ({
    middleware: () => (ctx, next) => next(),
    check: () => (existsSync(o.database) ? [] : [instance.name + '.database: cannot read ' + o.database]),
  }),
});
`,
);
// An old-style plugin: a bare factory, no schema, no instance names, a check() whose message names no path.
write('node_modules/old-plugin/package.json', JSON.stringify({ name: 'old-plugin', type: 'module', main: 'index.js' }));
write(
  'node_modules/old-plugin/index.js',
  `export default (options) => ({ name: 'old', middleware: () => null, check: () => (options.warn ? ['something is off'] : []) });\n`,
);
write('geo.mmdb', '');

describe('plugin registry', () => {
  it('builds two instances of one plugin under their names', async () => {
    const plugins = await buildPlugins(
      [{ use: 'metrics' }, { use: 'metrics', name: 'metrics-inner', options: { buckets: [1] } }, { use: 'query-log', enabled: false }],
      dir,
    );
    expect(plugins.map((p) => [p.name, p.kind])).toEqual([
      ['metrics', 'metrics'],
      ['metrics-inner', 'metrics'],
    ]);
    expect(plugins[1]!.options).toEqual({ buckets: [1] });
  });

  it('refuses one instance name twice, naming the entry', async () => {
    await expect(buildPlugins([{ use: 'metrics' }, { use: 'query-log' }, { use: 'metrics' }], dir)).rejects.toThrow(
      'plugins[2]: instance name \'metrics\' is already used by plugins[0]; give one of them another "name"',
    );
    await expect(
      buildPlugins(
        [
          { use: 'metrics', name: 'm' },
          { use: 'query-log', name: 'm' },
        ],
        dir,
      ),
    ).rejects.toThrow("plugins[1].name: instance name 'm' is already used by plugins[0]");
    // a disabled entry takes no name
    await expect(buildPlugins([{ use: 'metrics', enabled: false }, { use: 'metrics' }], dir)).resolves.toHaveLength(1);
  });

  it('names the config field in option errors, including cross-field checks in setup', async () => {
    await expect(buildPlugins([{ use: 'metrics' }, { use: 'query-log', options: { sampleRate: 2 } }], dir)).rejects.toThrow(
      'plugins[1].options.sampleRate: must be a number in 0..1',
    );
    await expect(buildPlugins([{ use: 'metrics', options: { buckets: [1, 0.5] } }], dir)).rejects.toThrow(
      'plugins[0].options.buckets[1]: must be greater than the previous bucket',
    );
    await expect(buildPlugins([{ use: 'metrics', name: 'm2', options: { buckets: [1, 0.5] } }], dir)).rejects.toThrow(
      'plugins[0].options.buckets[1]: must be greater',
    );
    await expect(buildPlugins([{ use: 'metrics', options: { bucket: [1] } }], dir)).rejects.toThrow(
      'plugins[0].options.bucket: unknown option (known: buckets)',
    );
  });

  it('builds every built-in plugin through its package, errors at the config path', async () => {
    const plugins = await buildPlugins(
      [
        { use: 'metrics' },
        { use: 'query-log', options: { sampleRate: 0 } },
        { use: 'special-use' },
        { use: 'blocking', options: { groups: { default: { block: [] } } } },
        { use: 'cache' },
        { use: 'dedup' },
        { use: 'rewrite', options: { rules: [{ suffix: 'lan', to: 'home.arpa' }] } },
        { use: 'upstream', name: 'upstream-lan', options: { servers: ['192.0.2.53'] } },
      ],
      dir,
    );
    expect(plugins.map((p) => p.name)).toEqual(['metrics', 'query-log', 'special-use', 'blocking', 'cache', 'dedup', 'rewrite', 'upstream-lan']);
    expect(plugins.map((p) => p.kind)).toEqual(['metrics', 'query-log', 'special-use', 'blocking', 'cache', 'dedup', 'rewrite', 'upstream']);
    await expect(buildPlugins([{ use: 'metrics' }, { use: 'special-use' }, { use: 'cache', options: { maxTtl: -1 } }], dir)).rejects.toThrow(
      /^plugins\[2\]\.options\.maxTtl: must be an integer in 0\.\./,
    );
  });

  it("start errors naming a plugin's own option path name the config field (by instance name, else kind)", async () => {
    const plugins = await buildPlugins(
      [{ use: 'metrics' }, { use: 'cache' }, { use: 'blocking', name: 'ads', options: { groups: { default: { block: [] } } } }],
      dir,
    );
    const moved = startErrorAtConfigPath(new ConfigError('ads.groups.default.block[0]', 'bad list', 'x'), plugins) as ConfigError;
    expect(moved).toBeInstanceOf(ConfigError);
    expect([moved.path, moved.message, moved.value]).toEqual([
      'plugins[2].options.groups.default.block[0]',
      'plugins[2].options.groups.default.block[0]: bad list',
      'x',
    ]);
    const err = new Error('cache.maxTtl: too big');
    expect(startErrorAtConfigPath(err, plugins)).toBe(err);
    expect(err.message).toBe('plugins[1].options.maxTtl: too big');
    const other = new Error('listen[0]: address in use');
    expect(startErrorAtConfigPath(other, plugins)).toBe(other);
    expect(other.message).toBe('listen[0]: address in use');
    // by kind when the chain has one plugin of that kind
    expect((startErrorAtConfigPath(new Error('blocking.x: y'), plugins) as Error).message).toBe('plugins[2].options.x: y');
  });

  it('refuses an instance name for a plugin that cannot take one', async () => {
    await expect(buildPlugins([{ use: 'old-plugin', name: 'old-2' }], dir)).rejects.toThrow(
      "plugins[0].name: plugin 'old-plugin' does not take an instance name",
    );
  });
});

describe('checkPlugins (heimdall --check)', () => {
  it('reports every problem: load errors, option errors, duplicate names, check() preflights', async () => {
    const problems = await checkPlugins(
      [
        { use: 'metrics' },
        { use: '@acme/not-installed' },
        { use: 'query-log', options: { output: '' } },
        { use: 'metrics' },
        { use: 'old-plugin', options: { warn: true } },
        { use: 'metrics', name: 'm2', options: { buckets: [2, 1] } },
        { use: './nope.js', enabled: false },
      ],
      dir,
    );
    expect(problems).toEqual([
      expect.stringMatching(/^plugins\[1\]\.use: cannot find plugin '@acme\/not-installed' \(resolved from .*\); is it installed\?$/),
      'plugins[2].options.output: must not be empty',
      'plugins[3]: instance name \'metrics\' is already used by plugins[0]; give one of them another "name"',
      'plugins[5].options.buckets[1]: must be greater than the previous bucket',
      'plugins[4] (old): something is off',
    ]);
    expect(await checkPlugins([{ use: 'metrics' }, { use: 'old-plugin' }], dir)).toEqual([]);
  });

  // In the CLI, not in-process: the third-party plugin imports @heimdall/core, which must be the
  // app's own (vitest would hand the plugin another copy of core than the one the app runs).
  it('the CLI loads a third-party definePlugin plugin from node_modules, prints every problem and exits 2; a good file prints the resolved config and exits 0', async () => {
    write(
      'bad.yaml',
      `plugins:
  - use: metrics
  - use: '@acme/heimdall-geo'
    options: { ttl: -1, database: ./geo.mmdb }
  - use: '@acme/heimdall-geo'
    name: geo-2
    options: { database: ./missing.mmdb }
`,
    );
    write(
      'good.yaml',
      `listen: ['127.0.0.1:5399']\nplugins:\n  - use: metrics\n  - use: '@acme/heimdall-geo'\n    name: geo-eu\n    options: { database: ${join(dir, 'geo.mmdb')} }\n`,
    );
    const run = (file: string) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((res) => {
        // The CLI from its TypeScript sources (workspace packages through their "source" export condition).
        execFile(
          process.execPath,
          ['--conditions=source', '--import', 'tsx', join(APP, 'src/cli.ts'), '--check', '--config', join(dir, file)],
          { cwd: APP, timeout: 60_000 },
          (err, stdout, stderr) => res({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    const [bad, good] = await Promise.all([run('bad.yaml'), run('good.yaml')]);
    expect(bad.stderr).toBe(
      [
        'heimdall: config error: plugins[1].options.ttl: must be an integer in 0..86400',
        'heimdall: config error: plugins[2].options.database: cannot read ./missing.mmdb',
        '',
      ].join('\n'),
    );
    expect(bad.code).toBe(2);
    expect(good.stderr).toBe('');
    expect(good.code).toBe(0);
    expect(JSON.parse(good.stdout)).toMatchObject({
      listen: ['127.0.0.1:5399'],
      plugins: [
        { use: 'metrics', enabled: true },
        { use: '@acme/heimdall-geo', name: 'geo-eu' },
      ],
    });
  }, 60_000);

  // A problem only the plugin's own check finds (a required list that is not there) fails start() too: both name the field as the file does.
  it("--check and a start on the same config name the same field: the config path, not the plugin's own", async () => {
    write(
      'missing-list.yaml',
      `listen: ['127.0.0.1:0']
admin: { enabled: false }
plugins:
  - use: metrics
  - use: blocking
    options:
      cacheDir: ./blocking-cache
      groups:
        default:
          block:
            - { source: ./missing.txt, required: true }
`,
    );
    const run = (...args: string[]) =>
      new Promise<{ code: number; stderr: string }>((res) => {
        execFile(
          process.execPath,
          ['--conditions=source', '--import', 'tsx', join(APP, 'src/cli.ts'), '--config', join(dir, 'missing-list.yaml'), ...args],
          // Every built-in plugin may load: tsx needs the base config's decorator settings.
          { cwd: APP, timeout: 60_000, env: { ...process.env, TSX_TSCONFIG_PATH: resolve(APP, '../../tsconfig.base.json') } },
          (err, _stdout, stderr) => res({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }),
        );
      });
    const [check, start] = await Promise.all([run('--check'), run()]);
    const field = (stderr: string) => /^heimdall: .*?(\S+\.block\[0\]): required list /m.exec(stderr)?.[1];
    expect(check.code).toBe(2);
    expect(field(check.stderr)).toBe('plugins[1].options.groups.default.block[0]');
    expect(start.code).toBe(1);
    expect(start.stderr).toMatch(/^heimdall: HeimdallError\(BLOCKING_REQUIRED_LIST\): plugins\[1\]\.options\.groups\.default\.block\[0\]: required list /m);
    expect(field(start.stderr)).toBe(field(check.stderr));
  }, 60_000);
});
