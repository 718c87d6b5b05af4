/**
 * Command lines and config files for the peers the reference app is measured
 * against, all on loopback and in the foreground so the harness owns them.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { binaryPath } from './packages.js';

/** A program and its arguments. */
export interface Command {
  command: string;
  args: string[];
  /** Extra environment variables (merged over the harness's own). */
  env?: Record<string, string>;
}

/** dnsmasq in the foreground on 127.0.0.1:port, reading no system files, logging to stderr. */
function dnsmasqBase(port: number): string[] {
  return [
    '--keep-in-foreground',
    '--no-resolv',
    '--no-hosts',
    '--no-poll',
    '--bind-interfaces',
    '--listen-address=127.0.0.1',
    `--port=${port}`,
    '--user=root',
    '--pid-file=',
    '--log-facility=-',
  ];
}

/**
 * dnsmasq as a forwarder to `127.0.0.1#upstreamPort`. `cacheSize` 0 turns its
 * cache off (forwarding benchmark). `--dns-forward-max` is raised from its
 * default of 150 so dnsmasq is not limited by it on the miss scenario.
 */
export function dnsmasqForwarder(port: number, upstreamPort: number, cacheSize: number): Command {
  return {
    command: binaryPath('dnsmasq'),
    args: [
      ...dnsmasqBase(port),
      '--except-interface=nonexistent0',
      `--server=127.0.0.1#${upstreamPort}`,
      `--cache-size=${cacheSize}`,
      '--dns-forward-max=4096',
    ],
  };
}

/**
 * dnsmasq authoritative for everything (`--address=/#/192.0.2.1`, TTL 3600):
 * the fast local upstream of the forwarding and cache-miss scenarios.
 */
export function dnsmasqUpstream(port: number): Command {
  return {
    command: binaryPath('dnsmasq'),
    args: [...dnsmasqBase(port), '--address=/#/192.0.2.1', '--local-ttl=3600', '--cache-size=0'],
  };
}

/**
 * An unbound.conf forwarding everything to `127.0.0.1@upstreamPort`: one
 * thread, no DNSSEC validation, caches sized for a few hundred thousand
 * entries. `listen`: the `server:` lines that say where it serves;
 * `tuning`: lines after `outgoing-range`.
 */
function unboundConf(dir: string, upstreamPort: number, listen: string, tuning = ''): string {
  return `server:
${listen}  do-ip6: no
  do-tcp: yes
  num-threads: 1
  so-reuseport: no
  access-control: 127.0.0.0/8 allow
  chroot: ""
  username: ""
  directory: "${dir}"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  module-config: "iterator"
  do-not-query-localhost: no
  msg-cache-size: 128m
  rrset-cache-size: 256m
  num-queries-per-thread: 4096
  outgoing-range: 8192
${tuning}  qname-minimisation: no
  minimal-responses: yes
  harden-referral-path: no
  prefetch: no
remote-control:
  control-enable: no
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@${upstreamPort}
`;
}

/**
 * unbound as a caching forwarder (one thread, no DNSSEC validation, caches
 * sized for a few hundred thousand entries) to `127.0.0.1@upstreamPort`.
 */
export function unboundForwarder(dir: string, port: number, upstreamPort: number): Command {
  const conf = join(dir, `unbound-${port}.conf`);
  writeFileSync(conf, unboundConf(dir, upstreamPort, `  interface: 127.0.0.1\n  port: ${port}\n`, '  jostle-timeout: 200\n'));
  return { command: binaryPath('unbound'), args: ['-d', '-c', conf] };
}

/**
 * unbound as a caching forwarder serving UDP on `port` and DNS over TLS on
 * `dotPort` (`tls-port`, `tls-service-key`/`-pem`, `interface: …@port`),
 * one thread, same caches as {@link unboundForwarder}.
 */
export function unboundDot(dir: string, port: number, dotPort: number, upstreamPort: number, cert: string, key: string): Command {
  const conf = join(dir, `unbound-dot-${port}.conf`);
  writeFileSync(
    conf,
    unboundConf(
      dir,
      upstreamPort,
      `  interface: 127.0.0.1@${port}
  interface: 127.0.0.1@${dotPort}
  tls-port: ${dotPort}
  tls-service-key: "${key}"
  tls-service-pem: "${cert}"
  incoming-num-tcp: 1000
  tcp-idle-timeout: 30000
`,
    ),
  );
  return { command: binaryPath('unbound'), args: ['-d', '-c', conf] };
}
