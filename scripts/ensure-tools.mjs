#!/usr/bin/env node
// Installs the system tools the test suite drives (real DNS clients for the
// end-to-end tests) when they are missing. Debian packages; needs root or sudo.
import { execSync, spawnSync } from 'node:child_process';

const wanted = [
  { bin: 'dig', pkg: 'bind9-dnsutils' },
  { bin: 'kdig', pkg: 'knot-dnsutils' },
  { bin: 'openssl', pkg: 'openssl' },
  // plugins/redis tests start their own servers (standalone, a 3-node Cluster, TLS).
  { bin: 'redis-server', pkg: 'redis-server' },
  { bin: 'redis-cli', pkg: 'redis-tools' },
  // The dashboard's browser tests (test/dashboard.e2e.test.ts) drive Debian's Chromium with playwright-core.
  { bin: 'chromium', pkg: 'chromium' },
];
const has = (bin) => spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
const missing = wanted.filter((t) => !has(t.bin));
if (missing.length === 0) process.exit(0);
const pkgs = missing.map((t) => t.pkg).join(' ');
console.log(`ensure-tools: installing ${pkgs}`);
const sudo = process.getuid?.() === 0 ? '' : 'sudo ';
try {
  execSync(`${sudo}apt-get update -qq`, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  execSync(`${sudo}apt-get install -y -qq --no-install-recommends ${pkgs}`, {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
} catch (err) {
  console.error(`ensure-tools: could not install ${pkgs}: ${err.message}`);
  process.exit(1);
}
