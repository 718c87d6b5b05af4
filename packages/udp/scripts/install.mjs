#!/usr/bin/env node
// `npm install` / `npm ci` of @heimdall/udp: builds the addon with node-gyp
// (Linux with a C compiler). Never fails the install: when the build is not
// possible it writes build/unavailable.json with the reason, and Heimdall
// uses node:dgram (core's `udp.native: 'auto'`).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const marker = join(root, 'build', 'unavailable.json');
const unavailable = (reason) => {
  mkdirSync(dirname(marker), { recursive: true });
  writeFileSync(marker, `${JSON.stringify({ reason, date: new Date().toISOString() })}\n`);
  console.warn(`@heimdall/udp: native batched UDP unavailable (${reason}); node:dgram will be used`);
  process.exit(0);
};

if (process.env.HEIMDALL_UDP_SKIP_BUILD === '1') unavailable('HEIMDALL_UDP_SKIP_BUILD=1');
if (process.platform !== 'linux') unavailable(`platform ${process.platform} (recvmmsg/sendmmsg are Linux only)`);
const has = (bin) => spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
if (!has(process.env.CC ?? 'cc') || !has('make') || !has('python3')) unavailable('no C compiler, make or python3');

// node-gyp: the one npm runs scripts with, else npm's bundled copy, else PATH.
let gyp = process.env.npm_config_node_gyp;
if (!gyp || !existsSync(gyp)) {
  try {
    const npmDir = dirname(
      dirname(createRequire(import.meta.url).resolve('npm/package.json', { paths: [join(dirname(process.execPath), '../lib/node_modules')] })),
    );
    gyp = join(npmDir, 'npm/node_modules/node-gyp/bin/node-gyp.js');
  } catch {
    gyp = undefined;
  }
}
const argv = gyp && existsSync(gyp) ? [process.execPath, gyp, 'rebuild'] : has('node-gyp') ? ['node-gyp', 'rebuild'] : null;
if (argv === null) unavailable('node-gyp not found');
// Build against this Node's own headers when they are installed (no download).
const nodedir = process.env.npm_config_nodedir || join(dirname(process.execPath), '..');
if (existsSync(join(nodedir, 'include/node/node_api.h'))) argv.push(`--nodedir=${nodedir}`);
rmSync(marker, { force: true });
const r = spawnSync(argv[0], argv.slice(1), { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], env: process.env });
if (r.status !== 0 || !existsSync(join(root, 'build/Release/heimdall_udp.node'))) unavailable(`node-gyp rebuild exited ${r.status ?? r.signal}`);
console.log('@heimdall/udp: native batched UDP built');
