/**
 * Certificates for tests of encrypted listeners and clients (DoT, DoH,
 * rediss://): a self-signed EC P-256 pair made with `openssl`, valid two days.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** Options of {@link selfSignedCertificate}. */
export interface SelfSignedOptions {
  /** File name stem: `<name>.crt` and `<name>.key`. Default `cert`. */
  name?: string;
  /** Subject common name. Default `localhost`. */
  cn?: string;
  /** subjectAltName entries. Default `DNS:localhost, DNS:dns.test, IP:127.0.0.1`. */
  altNames?: readonly string[];
}

/** Writes a self-signed certificate and its key into `dir`; returns their paths. Needs `openssl` on the PATH. */
export function selfSignedCertificate(dir: string, options: SelfSignedOptions = {}): { cert: string; key: string } {
  const name = options.name ?? 'cert';
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const alt = (options.altNames ?? ['DNS:localhost', 'DNS:dns.test', 'IP:127.0.0.1']).join(',');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      `/CN=${options.cn ?? 'localhost'}`,
      '-addext',
      `subjectAltName=${alt}`,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}
