/**
 * Certificate and key files of the encrypted listeners: read and checked as
 * a pair (a bad file or a mismatched pair is an error naming the file),
 * re-read on demand (SIGHUP in the app) and when either file changes
 * (`fs.watch` on their directories, so editors' and certbot's rename-over
 * replacements are seen; debounced). A failed reload keeps the pair in use
 * and is logged.
 */
import type { Buffer } from 'node:buffer';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import { ConfigError } from '../errors.js';
import { parseOptions, type Static, type TSchema } from '../plugin/options.js';
import { StreamServer, type TrackedConnection } from './stream.js';

/** A checked certificate chain and private key (PEM). */
export interface CertificatePair {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** The leaf's subject and expiry, for logs. */
  readonly subject: string;
  readonly validTo: string;
}

/**
 * The config fields a listener's certificate errors name (`dot.cert`,
 * `dot.key`), when they are not the listener's own `<path>.cert` /
 * `<path>.key`: an app that builds core's `listen` entries from its own
 * config sets them with {@link withCertificateFields}, so a bad file at
 * start or on reload names the field the user wrote.
 */
export interface CertificateFields {
  readonly cert: string;
  readonly key: string;
}

/** Where a listen entry carries its {@link CertificateFields} (a symbol: not an option, not validated, not serialised). */
export const CERTIFICATE_FIELDS: unique symbol = Symbol('heimdall.certificateFields');

/** `options` naming `fields` in its certificate errors (returns `options`). */
export function withCertificateFields<T extends object>(options: T, fields: CertificateFields): T {
  Object.defineProperty(options, CERTIFICATE_FIELDS, { value: Object.freeze({ ...fields }), enumerable: false });
  return options;
}

/** The certificate fields of a listen entry at `path`. */
export function certificateFields(options: object, path: string): CertificateFields {
  return (options as { [CERTIFICATE_FIELDS]?: CertificateFields })[CERTIFICATE_FIELDS] ?? { cert: `${path}.cert`, key: `${path}.key` };
}

const fieldsOf = (f: string | CertificateFields): CertificateFields => (typeof f === 'string' ? { cert: `${f}.cert`, key: `${f}.key` } : f);

/** Checks a PEM pair; throws `ConfigError` naming the field (`<path>.cert` / `.key`, or `fields`) and the file at fault. */
export function checkPair(cert: Buffer, key: Buffer, certFile: string, keyFile: string, path: string | CertificateFields): CertificatePair {
  const fields = fieldsOf(path);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new ConfigError(fields.cert, `${certFile} is not a PEM certificate: ${(err as Error).message}`);
  }
  let keyObject: ReturnType<typeof createPrivateKey>;
  try {
    keyObject = createPrivateKey(key);
  } catch (err) {
    throw new ConfigError(fields.key, `${keyFile} is not a PEM private key: ${(err as Error).message}`);
  }
  if (!x509.checkPrivateKey(keyObject)) throw new ConfigError(fields.key, `${keyFile} is not the private key of the certificate in ${certFile}`);
  return { cert, key, subject: x509.subject.replace(/\n/g, ', '), validTo: x509.validTo };
}

function readOrThrow(file: string, field: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(field, `cannot read ${file}: ${(err as Error).message}`);
  }
}

/** The files of one listener, their current pair, and the watch on them. */
export class CertificateFiles {
  private pair_: CertificatePair;
  private watchers: FSWatcher[] = [];
  private debounce: NodeJS.Timeout | null = null;
  private reloading: Promise<CertificatePair> | null = null;
  /** The config fields errors name. */
  private readonly fields: CertificateFields;

  /** Reads and checks the pair now (throws `ConfigError` naming the file). */
  constructor(
    readonly certFile: string,
    readonly keyFile: string,
    /** The listener's config path (`listen[0]`: errors name `listen[0].cert`), or the fields errors name. */
    path: string | CertificateFields,
    private readonly logger: Logger,
    /** Called with every new pair (after a reload, not the first). */
    private readonly onChange: (pair: CertificatePair) => void,
    private readonly debounceMs = 250,
  ) {
    this.fields = fieldsOf(path);
    this.pair_ = checkPair(readOrThrow(certFile, this.fields.cert), readOrThrow(keyFile, this.fields.key), certFile, keyFile, this.fields);
  }

  get pair(): CertificatePair {
    return this.pair_;
  }

  /** Re-reads both files; on success uses the new pair (and calls `onChange`), else rejects and keeps the old one. */
  reload(): Promise<CertificatePair> {
    this.reloading ??= (async () => {
      try {
        const [cert, key] = await Promise.all([
          readFile(this.certFile).catch((err) => {
            throw new ConfigError(this.fields.cert, `cannot read ${this.certFile}: ${(err as Error).message}`);
          }),
          readFile(this.keyFile).catch((err) => {
            throw new ConfigError(this.fields.key, `cannot read ${this.keyFile}: ${(err as Error).message}`);
          }),
        ]);
        const pair = checkPair(cert, key, this.certFile, this.keyFile, this.fields);
        if (pair.cert.equals(this.pair_.cert) && pair.key.equals(this.pair_.key)) return this.pair_;
        this.pair_ = pair;
        this.onChange(pair);
        this.logger.info({ cert: this.certFile, subject: pair.subject, validTo: pair.validTo }, 'TLS certificate reloaded');
        return pair;
      } catch (err) {
        this.logger.error(
          { cert: this.certFile, key: this.keyFile, field: (err as { path?: unknown }).path, error: (err as Error).message },
          'TLS certificate reload failed; keeping the current certificate',
        );
        throw err;
      } finally {
        this.reloading = null;
      }
    })();
    return this.reloading;
  }

  /** Watches both files' directories; a change reloads after `debounceMs` of quiet. */
  watch(): void {
    if (this.watchers.length > 0) return;
    const names = new Map<string, Set<string>>();
    for (const f of [this.certFile, this.keyFile]) {
      const set = names.get(dirname(f)) ?? new Set<string>();
      set.add(basename(f));
      names.set(dirname(f), set);
    }
    for (const [dir, files] of names) {
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          if (name === null || files.has(name.toString())) this.changed();
        });
        w.on('error', (err) => this.logger.warn({ err, dir }, 'watching TLS certificate files failed; reload with SIGHUP'));
        this.watchers.push(w);
      } catch (err) {
        this.logger.warn({ err, dir }, 'cannot watch TLS certificate files; reload with SIGHUP');
      }
    }
  }

  private changed(): void {
    if (this.debounce !== null) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = null;
      this.reload().catch(() => {}); // logged by reload()
    }, this.debounceMs);
    this.debounce.unref();
  }

  close(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    if (this.debounce !== null) clearTimeout(this.debounce);
    this.debounce = null;
  }
}

/**
 * An encrypted listener's settings, validated against its schema (defaults
 * filled in, `transport` set), the certificate and key files they name,
 * and the fields their errors name ({@link certificateFields}); throws
 * `ConfigError` naming the bad or missing field (`listener`: "a tls
 * listener").
 */
export function parseCertifiedOptions<S extends TSchema>(
  schema: S,
  transport: 'tls' | 'https',
  options: object,
  path: string,
  listener: string,
): { settings: Static<S>; files: { cert: string; key: string; fields: CertificateFields } } {
  const settings = parseOptions(schema, { ...options, transport }, path) as Static<S> & { readonly cert?: string; readonly key?: string };
  const fields = certificateFields(options, path);
  if (settings.cert === undefined) throw new ConfigError(fields.cert, `is required for ${listener} (PEM certificate file)`);
  if (settings.key === undefined) throw new ConfigError(fields.key, `is required for ${listener} (PEM private key file)`);
  return { settings, files: { cert: settings.cert, key: settings.key, fields } };
}

/** A stream listener with certificate files: watched while it listens, reloaded on demand. */
export abstract class CertifiedStreamServer<C extends TrackedConnection> extends StreamServer<C> {
  /** The certificate files (reloaded on change). */
  abstract readonly certificates: CertificateFiles;

  protected override prepare(): Promise<void> {
    this.certificates.watch();
    return Promise.resolve();
  }

  protected override closed(): void {
    this.certificates.close();
  }

  async reloadCertificates(): Promise<void> {
    await this.certificates.reload();
  }
}
