/**
 * TLS on the HTTP links (docs/SECURITY.md): the flags every service main
 * shares, the server's certificate files and their reload without a restart,
 * the refusal to listen beyond loopback in plain HTTP, and the client side
 * (a CA to trust, an optional client certificate) for every HTTP client of
 * the package; and the store's peer-link flags (PEER_TLS_FLAGS, used by
 * store/node/transport.ts). A reload of any certificate in a process also
 * reads the process's client files again, so clients that follow the
 * process (tlsHttpClient) show the new certificate on new connections.
 *
 * A service uses one certificate both ways: it serves with it and shows it
 * when it calls others (the dev certificates of lib/certs.ts carry both
 * serverAuth and clientAuth), and one CA file both to check the servers it
 * calls and, with --client-cert-auth, the clients that call it.
 */
import { readFileSync } from 'node:fs';
import type { SecureContextOptions } from 'node:tls';
import { envName, UsageError } from './cli.js';
import { reloadOnChange } from './file-reload.js';
import { HttpClient, type HttpClientOptions } from './http-client.js';
import type { Logger } from './logger.js';

/** The flags of every service main (lib/cli.ts adds the RAFT2PC_CERT_FILE, ... twins). */
export const TLS_FLAGS = {
  'cert-file': { type: 'string', placeholder: 'FILE', description: 'serve HTTPS with this certificate (PEM), also shown as the client certificate when this process calls others' },
  'key-file': { type: 'string', placeholder: 'FILE', description: 'the private key (PEM) of --cert-file' },
  'trusted-ca-file': { type: 'string', placeholder: 'FILE', description: 'the CA (PEM) that signs the servers this process calls, and its clients with --client-cert-auth' },
  'client-cert-auth': { type: 'boolean', default: false, description: 'refuse clients without a certificate signed by --trusted-ca-file' },
  insecure: { type: 'boolean', default: false, description: 'allow plain HTTP on an address beyond loopback' },
} as const;

/** The flags of a command-line client: what to trust, and what to show under --client-cert-auth. */
export const CLIENT_TLS_FLAGS = {
  'trusted-ca-file': { type: 'string', placeholder: 'FILE', description: 'the CA (PEM) that signs the https servers called' },
  'cert-file': { type: 'string', placeholder: 'FILE', description: 'a client certificate (PEM), for servers with --client-cert-auth' },
  'key-file': { type: 'string', placeholder: 'FILE', description: 'the private key (PEM) of --cert-file' },
} as const;

/**
 * The store's peer link (Raft between members), etcd's --peer-* twins; the
 * RAFT2PC_PEER_CERT_FILE, ... variables come with them (lib/cli.ts).
 */
export const PEER_TLS_FLAGS = {
  'peer-cert-file': { type: 'string', placeholder: 'FILE', description: 'speak TLS to the other members with this certificate (PEM; both server and client auth), shown both ways' },
  'peer-key-file': { type: 'string', placeholder: 'FILE', description: 'the private key (PEM) of --peer-cert-file' },
  'peer-trusted-ca-file': { type: 'string', placeholder: 'FILE', description: "the cluster's CA (PEM): members' certificates must be signed by it" },
  'peer-client-cert-auth': { type: 'boolean', default: false, description: 'refuse a peer connection without a certificate signed by --peer-trusted-ca-file (mutual TLS; without it any TLS client may talk Raft)' },
} as const;

export interface PeerTlsFlagValues {
  readonly 'peer-cert-file'?: string | undefined;
  readonly 'peer-key-file'?: string | undefined;
  readonly 'peer-trusted-ca-file'?: string | undefined;
  readonly 'peer-client-cert-auth': boolean;
}

/** The peer transport's TLS files from the flags (undefined: plain TCP); incomplete settings are a usage error. */
export function peerTlsFrom(values: PeerTlsFlagValues): ServerTlsFiles | undefined {
  const cert = values['peer-cert-file'];
  const key = values['peer-key-file'];
  const ca = values['peer-trusted-ca-file'];
  if ((cert === undefined) !== (key === undefined)) throw new UsageError(cert === undefined ? '--peer-key-file' : '--peer-cert-file', 'give --peer-cert-file and --peer-key-file together');
  if (cert === undefined || key === undefined) {
    if (ca !== undefined || values['peer-client-cert-auth']) throw new UsageError('--peer-cert-file', '--peer-trusted-ca-file and --peer-client-cert-auth need --peer-cert-file and --peer-key-file');
    return undefined;
  }
  if (values['peer-client-cert-auth'] && ca === undefined) throw new UsageError('--peer-client-cert-auth', 'needs --peer-trusted-ca-file');
  return { certFile: cert, keyFile: key, clientCertAuth: values['peer-client-cert-auth'], ...(ca === undefined ? {} : { caFile: ca }) };
}

/** What the TLS flags hold, as `run` receives them. */
export interface TlsFlagValues {
  readonly 'cert-file'?: string | undefined;
  readonly 'key-file'?: string | undefined;
  readonly 'trusted-ca-file'?: string | undefined;
  readonly 'client-cert-auth': boolean;
  readonly insecure: boolean;
}

/** A server's certificate files; read at start and again on every reload. */
export interface ServerTlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile?: string;
  /** Ask every client for a certificate signed by `caFile`, and refuse the handshake without one. */
  readonly clientCertAuth: boolean;
}

/** What a client trusts and shows; every field optional (none: the system's CAs, no client certificate). */
export interface ClientTls {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

/** The TLS settings of one service process. */
export interface TlsSettings {
  /** Undefined: plain HTTP. */
  readonly server?: ServerTlsFiles;
  readonly client: ClientTls;
  /** Plain HTTP beyond loopback was asked for explicitly. */
  readonly insecure: boolean;
}

/** The settings from the flags; a certificate without its key (or the reverse) is a usage error. */
export function tlsSettingsFrom(values: TlsFlagValues): TlsSettings {
  const cert = values['cert-file'];
  const key = values['key-file'];
  const ca = values['trusted-ca-file'];
  if ((cert === undefined) !== (key === undefined)) throw new UsageError(cert === undefined ? '--key-file' : '--cert-file', 'give --cert-file and --key-file together');
  if (values['client-cert-auth'] && (cert === undefined || ca === undefined)) throw new UsageError('--client-cert-auth', 'needs --cert-file, --key-file and --trusted-ca-file');
  const server = cert === undefined || key === undefined ? undefined : { certFile: cert, keyFile: key, clientCertAuth: values['client-cert-auth'], ...(ca === undefined ? {} : { caFile: ca }) };
  return { ...(server === undefined ? {} : { server }), client: clientTlsFromFiles({ caFile: ca, certFile: cert, keyFile: key }), insecure: values.insecure };
}

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);

/**
 * The settings from the RAFT2PC_CERT_FILE, ... variables alone: for a
 * process whose command line does not declare the TLS flags yet.
 */
export function tlsSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): TlsSettings {
  const text = (flag: keyof typeof TLS_FLAGS): string | undefined => {
    const v = env[envName(flag)];
    return v === undefined || v === '' ? undefined : v;
  };
  const bool = (flag: keyof typeof TLS_FLAGS): boolean => TRUE_WORDS.has((text(flag) ?? '').toLowerCase());
  return tlsSettingsFrom({ 'cert-file': text('cert-file'), 'key-file': text('key-file'), 'trusted-ca-file': text('trusted-ca-file'), 'client-cert-auth': bool('client-cert-auth'), insecure: bool('insecure') });
}

/** Reads the client side's files (each optional). */
export function clientTlsFromFiles(f: { readonly caFile?: string | undefined; readonly certFile?: string | undefined; readonly keyFile?: string | undefined }): ClientTls {
  const read = (file: string | undefined): string | undefined => (file === undefined ? undefined : readPem(file));
  const ca = read(f.caFile);
  const cert = read(f.certFile);
  const key = read(f.keyFile);
  return { ...(ca === undefined ? {} : { ca }), ...(cert === undefined ? {} : { cert }), ...(key === undefined ? {} : { key }) };
}

function readPem(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(undefined, `cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The server's secure context options, read from its files now. */
export function secureContextOptions(files: ServerTlsFiles): SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean } {
  const ca = files.caFile === undefined ? undefined : readPem(files.caFile);
  return { cert: readPem(files.certFile), key: readPem(files.keyFile), ...(ca === undefined ? {} : { ca }), requestCert: files.clientCertAuth, rejectUnauthorized: files.clientCertAuth };
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost', '[::1]']);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOSTS.has(host.toLowerCase()) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Plain HTTP stays the default on loopback; beyond it, only with TLS or an explicit --insecure (a usage error: exit 2). */
export function assertExposureAllowed(host: string, tls: Pick<TlsSettings, 'server' | 'insecure'>): void {
  if (tls.server !== undefined || tls.insecure || isLoopbackHost(host)) return;
  throw new UsageError('--host', `refusing to serve plain HTTP on ${host}, beyond loopback: give --cert-file and --key-file (raft2pc certs makes dev ones), or --insecure to accept it`);
}

/** Something whose certificate can be swapped (an https.Server). */
export interface SecureContextTarget {
  setSecureContext(options: SecureContextOptions): void;
}

/**
 * Reloads the certificate on SIGHUP and when a file changes, with no
 * restart: new handshakes use the new one, open connections keep theirs. A
 * reload that fails (a half-written file) keeps the old certificate and is
 * logged. Returns the stop function.
 */
export function reloadCertificatesOnChange(target: SecureContextTarget, files: ServerTlsFiles, log: Logger): () => void {
  const reload = (why: string): void => {
    try {
      target.setSecureContext(secureContextOptions(files));
      // The process's clients show the same certificate (and trust the same CA): read again too.
      refreshProcessClientTls();
      log('info', 'certificate reloaded', { why, certFile: files.certFile });
    } catch (e) {
      log('warn', 'certificate reload failed; keeping the old one', { why, error: e instanceof Error ? e.message : String(e) });
    }
  };
  return reloadOnChange({ files: [files.certFile, files.keyFile, ...(files.caFile === undefined ? [] : [files.caFile])], reload });
}

/**
 * What a service main does with its TLS flags: read them, refuse plain HTTP
 * beyond loopback (before anything else starts), and make the client side
 * the process's, so clients built deep inside (the store client of
 * openTxStore) trust the same CA and show the same certificate.
 */
export function serviceTls(values: TlsFlagValues, host: string): TlsSettings {
  const tls = tlsSettingsFrom(values);
  assertExposureAllowed(host, tls);
  setProcessClientTls(tls.client, { caFile: values['trusted-ca-file'], certFile: values['cert-file'], keyFile: values['key-file'] });
  return tls;
}

type ClientTlsFiles = Parameters<typeof clientTlsFromFiles>[0];

/** The process's client TLS: what clients built without their own use (a main sets it from its flags). */
let processClientTls: ClientTls = {};
/** Where it was read from, so a reload can read it again. */
let processClientFiles: ClientTlsFiles | undefined;

export function setProcessClientTls(tls: ClientTls, files?: ClientTlsFiles): void {
  processClientTls = tls;
  processClientFiles = files;
}

/** Reads the process's client files again (a reload): clients following the process use them for new connections. */
export function refreshProcessClientTls(): void {
  if (processClientFiles === undefined) return;
  processClientTls = clientTlsFromFiles(processClientFiles);
}

export function defaultClientTls(): ClientTls {
  return processClientTls;
}

export function hasClientTls(tls: ClientTls): boolean {
  return tls.ca !== undefined || tls.cert !== undefined;
}

/**
 * An HttpClient whose https connections trust `tls.ca` and show `tls.cert`.
 * Without `tls`, or given the process's own (defaultClientTls(), as the
 * store's forwarder and StoreClient pass it), the client follows the
 * process's settings, so a certificate reload reaches it too.
 */
export function tlsHttpClient(opts: HttpClientOptions, tls?: ClientTls): HttpClient {
  const followProcess = tls === undefined || tls === processClientTls;
  return new HttpClient({ ...opts, tls: followProcess ? defaultClientTls : tls });
}
