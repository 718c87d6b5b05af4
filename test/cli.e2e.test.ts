/**
 * The `heimdall` command's behaviour without serving: --help, --version,
 * --check, and configuration errors (exit code 2, the field named).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO, runCli } from './helpers.js';

const dir = mkdtempSync(join(os.tmpdir(), 'heimdall-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('heimdall CLI', () => {
  it('prints help and version', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--listen ADDR:PORT/);
    expect(help.stdout).toMatch(/--workers N\|auto/);
    const version = await runCli(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^heimdall \d+\.\d+\.\d+/);
  });

  it('--check prints the embedded default with flags applied', async () => {
    const list = configFile('list.txt', 'ads.example\n');
    const r = await runCli(['--check', '--listen', '127.0.0.1:5400', '--upstream', '127.0.0.1:5399', '--blocklist', list, '--admin', 'off']);
    expect(r.code).toBe(0);
    const cfg = JSON.parse(r.stdout) as { listen: string[]; admin: { enabled: boolean }; plugins: Array<{ use: string; options?: Record<string, unknown> }> };
    expect(cfg.listen).toEqual(['127.0.0.1:5400']);
    expect(cfg.admin.enabled).toBe(false);
    expect(cfg.plugins.map((p) => p.use)).toEqual(['metrics', 'stats', 'special-use', 'blocking', 'cache', 'dedup', 'upstream']);
    expect(cfg.plugins.at(-1)!.options!.servers).toEqual(['127.0.0.1:5399']);
    // the plugins' check() preflight: a list file that does not exist is a problem --check reports
    const missing = await runCli(['--check', '--blocklist', join(dir, 'no-such-list.txt'), '--admin', 'off']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(
      `heimdall: config error: plugins[3].options.groups.default.block[0]: list file '${join(dir, 'no-such-list.txt')}' does not exist`,
    );
  });

  it.each([
    ['unknown field', '{"lisen": ["127.0.0.1:53"]}', 'lisen: unknown option (known: $schema, listen,'],
    ['bad listen', '{"listen": ["127.0.0.1:99999"]}', 'listen[0]: port must be an integer in 0..65535'],
    ['listen not an array', '{"listen": "127.0.0.1:53"}', 'listen: must be an array'],
    ['bad workers', '{"workers": 0}', 'workers: must be an integer in 1..256'],
    ['bad log level', '{"logLevel": "loud"}', 'logLevel: must be "fatal" or "error"'],
    ['plugin without use', '{"plugins": [{"options": {}}]}', 'plugins[0].use: is required'],
    [
      'schema-checked plugin option',
      '{"plugins": [{"use": "special-use", "options": {"ttl": "long"}}]}',
      'plugins[0].options.ttl: must be an integer in 0..2147483647',
    ],
    ['unknown plugin option', '{"plugins": [{"use": "metrics", "options": {"bucket": [1]}}]}', 'plugins[0].options.bucket: unknown option (known: buckets)'],
    ['duplicate instance name', '{"plugins": [{"use": "metrics"}, {"use": "metrics"}]}', "plugins[1]: instance name 'metrics' is already used by plugins[0]"],
    ['option rejected by the plugin', '{"plugins": [{"use": "special-use", "options": {"zones": ["bad..zone"]}}]}', 'plugins[0].options.zones[0]'],
    ['missing third-party plugin', '{"plugins": [{"use": "@acme/not-installed"}]}', "plugins[0].use: cannot find plugin '@acme/not-installed'"],
    ['bad admin token', '{"admin": {"token": "short"}}', 'admin.token: must be at least 8 characters long'],
  ])('rejects a config with %s (exit 2, field named)', async (_what, json, message) => {
    const r = await runCli(['--config', configFile(`c${Math.random().toString(36).slice(2)}.json`, json), '--check']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('config error');
    expect(r.stderr).toContain(message);
  });

  it('--check loads a third-party plugin installed next to the config (without its own @heimdall/core) and prints every problem', async () => {
    const home = mkdtempSync(join(dir, 'third-party-'));
    const pkg = join(home, 'node_modules', '@acme', 'heimdall-hello');
    mkdirSync(pkg, { recursive: true });
    // @heimdall/core is a peer dependency that is not installed here: the app's own copy serves (shareHostPackages).
    writeFileSync(
      join(pkg, 'package.json'),
      JSON.stringify({ name: '@acme/heimdall-hello', type: 'module', exports: './index.js', peerDependencies: { '@heimdall/core': '*' } }),
    );
    writeFileSync(
      join(pkg, 'index.js'),
      `import { definePlugin, options, Type } from '@heimdall/core';
export default definePlugin({
  name: '@acme/hello',
  options: options({ ttl: Type.Integer({ minimum: 0, maximum: 3600, default: 60 }), greeting: Type.String({ default: 'hi' }) }),
  setup: (o, instance) => ({ middleware: () => (ctx, next) => next(), check: () => (o.greeting === 'hi' ? [] : [instance.name + '.greeting: not a greeting']) }),
});
`,
    );
    const good = join(home, 'good.yaml');
    writeFileSync(
      good,
      "plugins:\n  - use: '@acme/heimdall-hello'\n    name: hello-1\n  - use: '@acme/heimdall-hello'\n    name: hello-2\n    options: { ttl: 5 }\n",
    );
    const ok = await runCli(['--config', good, '--check']);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).plugins.map((p: { name: string }) => p.name)).toEqual(['hello-1', 'hello-2']);
    const bad = join(home, 'bad.yaml');
    writeFileSync(
      bad,
      "plugins:\n  - use: '@acme/heimdall-hello'\n    options: { ttl: 7200 }\n  - use: '@acme/heimdall-hello'\n    name: hello-2\n    options: { greeting: yo }\n",
    );
    const r = await runCli(['--config', bad, '--check']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'heimdall: config error: plugins[0].options.ttl: must be an integer in 0..3600\nheimdall: config error: plugins[1].options.greeting: not a greeting\n',
    );
  });

  it('reads YAML and reports its errors with the field path', async () => {
    const ok = configFile('ok.yaml', 'listen:\n  - 127.0.0.1:5401\nplugins:\n  - use: special-use\n    options:\n      appendixG: true\n');
    const r = await runCli(['--config', ok, '--check']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).plugins[0].options.appendixG).toBe(true);
    const bad = configFile('bad.yaml', 'plugins:\n  - use: special-use\n    options:\n      appendixG: maybe\n');
    const e = await runCli(['--config', bad, '--check']);
    expect(e.code).toBe(2);
    expect(e.stderr).toContain('plugins[0].options.appendixG: must be true or false');
    const broken = configFile('broken.yaml', 'listen: [127.0.0.1:53\n');
    const b = await runCli(['--config', broken]);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/is not valid YAML/);
  });

  it('accepts the complete example of docs/config.md', async () => {
    const doc = readFileSync(join(REPO, 'docs/config.md'), 'utf8');
    const yaml = /```yaml\n([\s\S]*?)```/.exec(doc)![1]!;
    const exampleDir = mkdtempSync(join(dir, 'example-'));
    writeFileSync(join(exampleDir, 'my-blocklist.txt'), 'ads.example\n');
    writeFileSync(join(exampleDir, 'allow.txt'), '');
    writeFileSync(join(exampleDir, 'heimdall.yaml'), yaml);
    const r = await runCli(['--config', join(exampleDir, 'heimdall.yaml'), '--check']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).plugins.map((p: { use: string }) => p.use)).toEqual([
      'metrics',
      'query-log',
      'special-use',
      'blocking',
      'cache',
      'dedup',
      'upstream',
    ]);
  });

  it('runs the code example of the root README', async () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    let code = /```ts\n([\s\S]*?)```/.exec(readme)![1]!;
    const cwd = mkdtempSync(join(dir, 'readme-'));
    writeFileSync(join(cwd, 'ads.txt'), 'ads.example\n');
    code = code.replaceAll('port: 5353', 'port: 0').replaceAll("'./ads.txt'", JSON.stringify(join(cwd, 'ads.txt')));
    code = code.replace(
      'await resolver.start();',
      'await resolver.start();\nconst probe = await resolver.handle(Buffer.from("12340100000100000000000003616473076578616d706c650000010001", "hex"));\nconsole.log(probe![3]! & 15);',
    );
    code += 'console.log(JSON.stringify(resolver.addresses()));\nawait resolver.stop();\n';
    // Inside the repo so that the @heimdall/* imports resolve.
    const file = join(REPO, 'test', `.readme-example-${process.pid}.ts`);
    writeFileSync(file, code);
    try {
      const { execFile } = await import('node:child_process');
      const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', file],
          { cwd: REPO, timeout: 20_000, env: { ...process.env, HEIMDALL_LOG_LEVEL: 'silent' } },
          (err, stdout, stderr) => res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
      expect(out.stderr).toBe('');
      expect(out.code).toBe(0);
      const lines = out.stdout.trim().split('\n');
      expect(lines[0]).toBe('3'); // ads.example is blocked: NXDOMAIN
      const addresses = JSON.parse(lines.at(-1)!) as Array<{ transport: string; port: number }>;
      expect(addresses.map((a) => a.transport)).toEqual(['udp', 'tcp']);
      expect(addresses[0]!.port).toBeGreaterThan(0);
    } finally {
      rmSync(file, { force: true });
    }
  });

  it('rejects bad flags', async () => {
    const w = await runCli(['--workers', 'many']);
    expect(w.code).toBe(2);
    expect(w.stderr).toContain('--workers: must be an integer from 1 to 256 or "auto"');
    const u = await runCli(['--bogus']);
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(/Unknown option '--bogus'/);
    const l = await runCli(['--listen', 'nowhere', '--check']);
    expect(l.code).toBe(2);
    expect(l.stderr).toContain('listen[0]: must be ADDRESS:PORT');
  });

  it('exits 1 with a message when the address is taken', async () => {
    const net = await import('node:net');
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as { port: number }).port;
    try {
      const r = await runCli(['--listen', `127.0.0.1:${port}`, '--admin', 'off', '--upstream', '127.0.0.1:9', '--log-level', 'silent']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/EADDRINUSE|in use/i);
    } finally {
      srv.close();
    }
  });
});
