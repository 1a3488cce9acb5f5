/**
 * TLS and authentication to etcd (docs/SECURITY.md): what the etcd adapter
 * shows and trusts, read from the environment of the process, and the
 * checks made when the store is opened so that a wrong CA or password is a
 * clear error at start rather than retries until a deadline.
 *
 *   RAFT2PC_ETCD_CA_FILE        the CA (PEM) that signs etcd's certificates (default: the system's)
 *   RAFT2PC_ETCD_CERT_FILE      a client certificate (PEM), for etcd's --client-cert-auth
 *   RAFT2PC_ETCD_KEY_FILE       its private key (PEM)
 *   RAFT2PC_ETCD_USER           an etcd user (etcd's auth: Authenticate, then the token on every call)
 *   RAFT2PC_ETCD_PASSWORD       its password, or RAFT2PC_ETCD_PASSWORD_FILE: a file holding it
 *
 * Any of the TLS variables, or an `etcds://` store, means TLS; the variables
 * apply to `etcd://` too (then the endpoints become https).
 */
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { TxStoreError } from '../txstore.js';

export const ETCD_ENV = {
  caFile: 'RAFT2PC_ETCD_CA_FILE',
  certFile: 'RAFT2PC_ETCD_CERT_FILE',
  keyFile: 'RAFT2PC_ETCD_KEY_FILE',
  user: 'RAFT2PC_ETCD_USER',
  password: 'RAFT2PC_ETCD_PASSWORD',
  passwordFile: 'RAFT2PC_ETCD_PASSWORD_FILE',
} as const;

/** PEM text; each optional (no CA: the system's). */
export interface EtcdTls {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

export interface EtcdAuth {
  readonly username: string;
  readonly password: string;
}

export interface EtcdSecurity {
  /** Undefined: plain gRPC, unless an endpoint is https (then the system's CAs). */
  readonly tls?: EtcdTls;
  readonly auth?: EtcdAuth;
}

/** How long the TLS check at open waits for one member's handshake. */
const TLS_CHECK_TIMEOUT_MS = 5_000;

function readText(file: string, variable: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new TxStoreError('invalid_config', 400, `${variable}: cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The settings from the variables; a certificate without its key, or a user without a password, is an error. */
export function etcdSecurityFromEnv(env: NodeJS.ProcessEnv): EtcdSecurity {
  const v = (name: string): string | undefined => (env[name] === undefined || env[name] === '' ? undefined : env[name]);
  const [caFile, certFile, keyFile] = [v(ETCD_ENV.caFile), v(ETCD_ENV.certFile), v(ETCD_ENV.keyFile)];
  if ((certFile === undefined) !== (keyFile === undefined)) throw new TxStoreError('invalid_config', 400, `give ${ETCD_ENV.certFile} and ${ETCD_ENV.keyFile} together`);
  const file = (f: string | undefined, name: string): string | undefined => (f === undefined ? undefined : readText(f, name));
  const ca = file(caFile, ETCD_ENV.caFile);
  const cert = file(certFile, ETCD_ENV.certFile);
  const key = file(keyFile, ETCD_ENV.keyFile);
  const anyTls = ca !== undefined || cert !== undefined;
  const tlsPart: EtcdTls = { ...(ca === undefined ? {} : { ca }), ...(cert === undefined ? {} : { cert }), ...(key === undefined ? {} : { key }) };
  const user = v(ETCD_ENV.user);
  const passwordFile = v(ETCD_ENV.passwordFile);
  // A password file ends with a newline when written by an editor or echo: it is not part of the password.
  const password = v(ETCD_ENV.password) ?? (passwordFile === undefined ? undefined : readText(passwordFile, ETCD_ENV.passwordFile).replace(/\r?\n$/, ''));
  if (user !== undefined && password === undefined) throw new TxStoreError('invalid_config', 400, `${ETCD_ENV.user} needs ${ETCD_ENV.password} or ${ETCD_ENV.passwordFile}`);
  if (user === undefined && password !== undefined) throw new TxStoreError('invalid_config', 400, `${ETCD_ENV.password} needs ${ETCD_ENV.user}`);
  return { ...(anyTls ? { tls: tlsPart } : {}), ...(user === undefined || password === undefined ? {} : { auth: { username: user, password } }) };
}

/** http:// endpoints become https:// when TLS is asked for: the same members, over TLS. */
export function secureEndpoints(endpoints: readonly string[], security: EtcdSecurity): string[] {
  return security.tls === undefined ? [...endpoints] : endpoints.map((e) => e.replace(/^http:\/\//, 'https://'));
}

/** The HTTP/2 client preface and an empty SETTINGS frame: what makes etcd's gRPC port answer. */
const H2_PREFACE = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]);

type HandshakeResult = { ok: true } | { ok: false; tlsError: boolean; message: string };

function handshake(endpoint: string, t: EtcdTls): Promise<HandshakeResult> {
  const url = new URL(endpoint);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return new Promise((resolve) => {
    let tcpUp = false;
    const socket = tls.connect({ host, port: Number(url.port || 2379), ...t, ...(/^[\d.:]+$/.test(host) ? {} : { servername: host }), ALPNProtocols: ['h2'] });
    const done = (r: HandshakeResult): void => {
      socket.destroy();
      resolve(r);
    };
    socket.setTimeout(TLS_CHECK_TIMEOUT_MS, () => done({ ok: false, tlsError: false, message: 'no answer' }));
    socket.once('connect', () => (tcpUp = true));
    // Under TLS 1.3 etcd checks our certificate after our side is done, so
    // wait for its first HTTP/2 frame (it answers our preface with SETTINGS) or its alert.
    socket.once('secureConnect', () => socket.write(H2_PREFACE));
    socket.once('data', () => done({ ok: true }));
    socket.once('error', (e) => done({ ok: false, tlsError: tcpUp, message: e.message }));
    socket.once('end', () => done({ ok: false, tlsError: tcpUp, message: 'etcd closed the connection during the TLS handshake' }));
  });
}

/**
 * Shakes hands with every https member. If every one that answered refused
 * the handshake (a CA that does not sign etcd's certificate, a client
 * certificate etcd does not accept), opening fails with that reason: gRPC
 * would only say "No connection established" after retrying until its
 * deadline. Members that are down are not an error here (etcd may come up
 * later; calls retry).
 */
export async function checkEtcdTls(endpoints: readonly string[], t: EtcdTls): Promise<void> {
  const secure = endpoints.filter((e) => e.startsWith('https://'));
  const results = await Promise.all(secure.map(async (e) => ({ e, r: await handshake(e, t) })));
  const refused = results.filter((x) => !x.r.ok && x.r.tlsError);
  if (refused.length === 0 || results.some((x) => x.r.ok)) return;
  const why = refused.map((x) => `${x.e}: ${x.r.ok ? '' : x.r.message}`).join('; ');
  throw new TxStoreError('etcd_tls_failed', 502, `TLS to etcd failed (check ${ETCD_ENV.caFile}, ${ETCD_ENV.certFile}, ${ETCD_ENV.keyFile}): ${why}`);
}
