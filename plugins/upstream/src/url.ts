import net from 'node:net';

/** A parsed upstream server string. `url` is the canonical form, used as the metrics label. */
export type UpstreamSpec =
  | { protocol: 'udp'; host: string; port: number; family: 4 | 6; url: string /** retry over TCP on TC (bare IPs and `udp://`) */; tcpFallback: boolean }
  | { protocol: 'tcp'; host: string; port: number; family: 4 | 6; url: string }
  | { protocol: 'tls'; host: string; port: number; servername: string | undefined; url: string }
  | { protocol: 'https'; host: string; port: number; path: string; servername: string | undefined; url: string };

/**
 * The syntax of an upstream string, for the options schema: a bare IP
 * (`1.1.1.1`, `1.1.1.1:5353`, `2606:4700::1111`, `[::1]:5353`) or a
 * `udp://`, `tcp://`, `tls://` or `https://` URL without credentials.
 * {@link parseUpstreamUrl} then checks what a pattern cannot: that an IP is
 * one, the port range, the TLS name.
 */
export const UPSTREAM_URL_PATTERN =
  '^\\s*(?:(?:[Uu][Dd][Pp]|[Tt][Cc][Pp]|[Tt][Ll][Ss]|[Hh][Tt][Tt][Pp][Ss])://[^\\s/?#@]+(?:[/?][^\\s#]*)?(?:#[^\\s#]+)?|\\[[0-9A-Fa-f:.]+\\](?::[0-9]+)?|[0-9A-Fa-f:.]+)\\s*$';

/** Raised for a server string that cannot be used; the message quotes it. */
export class UpstreamUrlError extends Error {
  override readonly name = 'UpstreamUrlError';
  constructor(
    readonly input: string,
    reason: string,
  ) {
    super(`invalid upstream "${input}": ${reason}`);
  }
}

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

function unbracket(h: string): string {
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

/** Canonical text of an IP (IPv6 compressed and lowercased, as Node reports peers). */
function canonicalIp(ip: string): string {
  return net.isIPv6(ip) ? unbracket(new URL(`http://[${ip}]`).hostname) : ip;
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function parsePort(input: string, text: string, fallback: number): number {
  if (text === '') return fallback;
  if (!/^\d{1,5}$/.test(text)) throw new UpstreamUrlError(input, `port "${text}" is not a number`);
  const port = Number(text);
  if (port < 1 || port > 65535) throw new UpstreamUrlError(input, `port ${port} is out of range 1-65535`);
  return port;
}

/**
 * Parses one upstream server string:
 *
 * | form | meaning |
 * |---|---|
 * | `1.1.1.1`, `1.1.1.1:5353`, `2606:4700::1111`, `[::1]:5353` | UDP, TCP when truncated (port 53) |
 * | `udp://1.1.1.1[:53]` | the same |
 * | `tcp://1.1.1.1[:53]` | TCP only (RFC 7766) |
 * | `tls://1.1.1.1[:853][#cloudflare-dns.com]` | DNS over TLS; the fragment is the TLS server name to verify |
 * | `tls://dns.quad9.net` | DoT to a host name (resolved by the OS when connecting) |
 * | `https://dns.example/dns-query`, `https://1.1.1.1/dns-query#cloudflare-dns.com` | DNS over HTTPS (RFC 8484), HTTP/2 |
 *
 * UDP and TCP servers must be IP addresses: resolving a name through the
 * system resolver could loop back into this resolver.
 *
 * @throws {UpstreamUrlError} naming the string and what is wrong with it.
 */
export function parseUpstreamUrl(input: string): UpstreamSpec {
  if (typeof input !== 'string') throw new UpstreamUrlError(String(input), 'must be a string');
  const s = input.trim();
  if (s === '') throw new UpstreamUrlError(input, 'empty');
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(s);
  if (scheme === null) {
    // Bare address: IPv4, IPv6, or either with a port.
    let host = s;
    let port = 53;
    if (net.isIP(s) === 0) {
      const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s);
      if (m === null && HOSTNAME.test(s)) throw new UpstreamUrlError(input, `"${s}" is not an IP address (use tls:// or https:// for host names)`);
      if (m === null) throw new UpstreamUrlError(input, 'expected an IP address, IP:port, [IPv6]:port or a URL such as udp://, tcp://, tls://, https://');
      host = m[1]!;
      port = parsePort(input, m[2]!, 53);
    }
    const family = net.isIP(host);
    if (family === 0) throw new UpstreamUrlError(input, `"${host}" is not an IP address (use tls:// or https:// for host names)`);
    host = canonicalIp(host);
    return { protocol: 'udp', host, port, family: family as 4 | 6, url: `udp://${hostPort(host, port)}`, tcpFallback: true };
  }
  const proto = scheme[1]!.toLowerCase();
  if (proto !== 'udp' && proto !== 'tcp' && proto !== 'tls' && proto !== 'https') {
    throw new UpstreamUrlError(input, `unsupported scheme "${proto}:" (use udp, tcp, tls or https)`);
  }
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new UpstreamUrlError(input, 'not a valid URL');
  }
  if (u.username || u.password) throw new UpstreamUrlError(input, 'credentials are not allowed');
  const host = unbracket(u.hostname);
  if (host === '') throw new UpstreamUrlError(input, 'missing host');
  const family = net.isIP(host);
  const fragment = decodeURIComponent(u.hash.replace(/^#/, ''));
  if (fragment !== '' && !HOSTNAME.test(fragment)) throw new UpstreamUrlError(input, `"${fragment}" is not a valid TLS server name`);
  const defaultPort = proto === 'https' ? 443 : proto === 'tls' ? 853 : 53;
  // WHATWG URL drops the default port of special schemes (https) and keeps others verbatim.
  const port = parsePort(input, u.port, defaultPort);
  if (proto === 'udp' || proto === 'tcp') {
    if (family === 0) throw new UpstreamUrlError(input, `"${host}" is not an IP address (${proto}:// upstreams must be IPs)`);
    if ((u.pathname !== '' && u.pathname !== '/') || u.search || u.hash) throw new UpstreamUrlError(input, `${proto}:// takes no path, query or fragment`);
    const ip = canonicalIp(host);
    const url = `${proto}://${hostPort(ip, port)}`;
    return proto === 'udp'
      ? { protocol: 'udp', host: ip, port, family: family as 4 | 6, url, tcpFallback: true }
      : { protocol: 'tcp', host: ip, port, family: family as 4 | 6, url };
  }
  if (family === 0 && !HOSTNAME.test(host)) throw new UpstreamUrlError(input, `"${host}" is not a valid host name`);
  const h = family ? canonicalIp(host) : host.toLowerCase();
  const servername = fragment ? fragment.toLowerCase().replace(/\.$/, '') : undefined;
  const suffix = servername ? `#${servername}` : '';
  if (proto === 'tls') {
    if ((u.pathname !== '' && u.pathname !== '/') || u.search) throw new UpstreamUrlError(input, 'tls:// takes no path or query');
    return { protocol: 'tls', host: h, port, servername, url: `tls://${hostPort(h, port)}${suffix}` };
  }
  const path = (u.pathname || '/') + u.search;
  const authority = port === 443 ? (h.includes(':') ? `[${h}]` : h) : hostPort(h, port);
  return { protocol: 'https', host: h, port, path, servername, url: `https://${authority}${path}${suffix}` };
}
