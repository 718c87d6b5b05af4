#!/usr/bin/env node
// Installs the system tools the test suite drives (real DNS clients for the
// end-to-end tests) when they are missing. Debian packages; needs root or sudo.
import { execSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const wanted = [
  { bin: 'dig', pkg: 'bind9-dnsutils' },
  { bin: 'kdig', pkg: 'knot-dnsutils' },
  { bin: 'openssl', pkg: 'openssl' },
  { bin: 'curl', pkg: 'curl' },
  // plugins/redis tests start their own servers (standalone, a 3-node Cluster, TLS).
  { bin: 'redis-server', pkg: 'redis-server' },
  { bin: 'redis-cli', pkg: 'redis-tools' },
  // The dashboard's browser tests (test/dashboard.e2e.test.ts) drive Debian's Chromium with playwright-core.
  { bin: 'chromium', pkg: 'chromium' },
  // @heimdall/udp: node-gyp builds the native batched UDP addon (packages/udp) with these;
  // its tests compile a datagram flooder with cc and run the addon under valgrind.
  { bin: 'g++', pkg: 'g++' },
  { bin: 'make', pkg: 'make' },
  { bin: 'python3', pkg: 'python3' },
  { bin: 'valgrind', pkg: 'valgrind' },
];
// The addon is built at `npm ci` when a compiler is there; built here when the
// compiler only arrived now (a fresh CI machine), so its tests run on it.
const addon = new URL('../packages/udp/', import.meta.url);
const buildAddon = () => {
  if (existsSync(new URL('build/Release/heimdall_udp.node', addon)) || !existsSync(new URL('scripts/install.mjs', addon))) return;
  execSync(`"${process.execPath}" scripts/install.mjs`, { cwd: addon, stdio: 'inherit' });
};
const has = (bin) => spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
const missing = wanted.filter((t) => !has(t.bin));
if (missing.length === 0) {
  buildAddon();
  process.exit(0);
}
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
buildAddon();
