import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tsxEnv } from './tsx-env.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');

describe('running a benchmark with tsx from the repository root (run-all.ts)', () => {
  // A plugin source with @inject parameter decorators, as bench/cache.bench.ts imports it.
  const probe = `import('${join(root, 'plugins/cache/src/middleware.ts')}').then((m) => console.log(typeof m.CacheMiddleware))`;

  it('loads a plugin source with parameter decorators', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], { cwd: root, env: tsxEnv(), encoding: 'utf8' });
    expect(r.stderr).not.toMatch(/decorators/);
    expect(r.stdout.trim()).toBe('function');
    expect(r.status).toBe(0);
  }, 60_000);
});
