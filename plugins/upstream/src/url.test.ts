import { describe, expect, it } from 'vitest';
import { parseUpstreamUrl, UpstreamUrlError } from './url.js';

describe('parseUpstreamUrl', () => {
  it.each([
    ['1.1.1.1', { protocol: 'udp', host: '1.1.1.1', port: 53, family: 4, url: 'udp://1.1.1.1:53', tcpFallback: true }],
    ['  9.9.9.9:5353 ', { protocol: 'udp', host: '9.9.9.9', port: 5353, url: 'udp://9.9.9.9:5353' }],
    ['2606:4700:0:0::1111', { protocol: 'udp', host: '2606:4700::1111', port: 53, family: 6, url: 'udp://[2606:4700::1111]:53' }],
    ['[::1]:5300', { protocol: 'udp', host: '::1', port: 5300, family: 6 }],
    ['udp://1.1.1.1', { protocol: 'udp', host: '1.1.1.1', port: 53 }],
    ['UDP://[2001:DB8::1]:54', { protocol: 'udp', host: '2001:db8::1', port: 54, url: 'udp://[2001:db8::1]:54' }],
    ['tcp://10.0.0.53:5353', { protocol: 'tcp', host: '10.0.0.53', port: 5353, url: 'tcp://10.0.0.53:5353' }],
    [
      'tls://1.1.1.1:853#cloudflare-dns.com',
      { protocol: 'tls', host: '1.1.1.1', port: 853, servername: 'cloudflare-dns.com', url: 'tls://1.1.1.1:853#cloudflare-dns.com' },
    ],
    ['tls://1.1.1.1', { protocol: 'tls', host: '1.1.1.1', port: 853, servername: undefined }],
    ['tls://dns.quad9.net', { protocol: 'tls', host: 'dns.quad9.net', port: 853 }],
    ['https://dns.example/dns-query', { protocol: 'https', host: 'dns.example', port: 443, path: '/dns-query', url: 'https://dns.example/dns-query' }],
    [
      'https://1.1.1.1:8443/dns-query?a=b#cloudflare-dns.com',
      { protocol: 'https', host: '1.1.1.1', port: 8443, path: '/dns-query?a=b', servername: 'cloudflare-dns.com' },
    ],
    ['https://[2606:4700::1111]/dns-query', { protocol: 'https', host: '2606:4700::1111', port: 443, url: 'https://[2606:4700::1111]/dns-query' }],
  ])('%s', (input, expected) => {
    expect(parseUpstreamUrl(input)).toMatchObject(expected);
  });

  it.each([
    ['', /empty/],
    ['dns.google', /not an IP address/],
    ['1.1.1.1:0', /out of range/],
    ['1.1.1.1:70000', /out of range/],
    ['1.1.1.1:abc', /expected an IP/],
    ['ftp://1.1.1.1', /unsupported scheme "ftp:"/],
    ['udp://dns.google', /must be IPs/],
    ['tcp://1.1.1.1/path', /no path/],
    ['tls://1.1.1.1#bad_name!', /not a valid TLS server name/],
    ['https://user:pw@dns.example/dns-query', /credentials/],
    ['tls://1.1.1.1/x', /no path/],
    ['https://exa mple/', /not a valid URL|host name/],
  ])('rejects %j', (input, message) => {
    const err = (() => {
      try {
        parseUpstreamUrl(input);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(UpstreamUrlError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toContain(`"${input}"`);
  });
});
