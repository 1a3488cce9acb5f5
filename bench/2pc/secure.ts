/**
 * bench:2pc's secure configuration (`--secure`, `--compare-secure`): the
 * demo's secure composition (demo/supervisor/secure.ts) on the benchmark's
 * processes. The built-in store serves HTTPS with client certificates, its
 * members speak mutual TLS, its auth is on and the coordinator and each
 * participant have their own least-privilege store user (the driver is
 * root); the coordinator and participants serve HTTPS with client
 * certificates, and check bearer tokens (the coordinator shows its own
 * coordinator token to the participants). The closed-loop clients speak
 * HTTPS on kept-alive connections with the operator's token (LeanHttp
 * with TLS), as a real client would.
 */
import { join } from 'node:path';
import { STORE_PASSWORD_ENV, STORE_USER_ENV } from '../../coordinator/txstore/open.js';
import { prepareSecure, ROOT_USER, type SecureSetup } from '../../demo/supervisor/secure.js';
import type { Logger } from '../../lib/logger.js';
import { defaultClientTls, serviceTls, setProcessClientTls, type TlsSettings } from '../../lib/tls.js';
import { CallToken, TokenAuth } from '../../lib/token-auth.js';
import { LeanHttp } from '../loadgen.js';

export const COORDINATOR_USER = 'bench-c1';
export const PARTICIPANTS = ['a', 'b'] as const;

/** Certificates and passwords under `dir`; this process (the driver) then trusts the CA and shows the client certificate. */
export async function prepareBenchSecure(dir: string): Promise<SecureSetup> {
  const setup = await prepareSecure(join(dir, 'secure'), { coordinators: [COORDINATOR_USER], participants: [...PARTICIPANTS] });
  setProcessClientTls(setup.clientTls);
  return setup;
}

/** The driver's store credentials (root), as openTxStore reads them. */
export function rootEnv(setup: SecureSetup): NodeJS.ProcessEnv {
  return { ...process.env, [STORE_USER_ENV]: ROOT_USER, [STORE_PASSWORD_ENV]: setup.password(ROOT_USER) };
}

/** A LeanHttp for `url`, over https (with `headers`) when the URL says so. */
export function leanHttpFor(url: string, maxSockets: number, headers: Readonly<Record<string, string>> = {}): LeanHttp {
  return new LeanHttp(url, maxSockets, url.startsWith('https:') ? { tls: defaultClientTls(), headers } : {});
}

/** The TLS flags the benchmark's coordinator and participants take (`serviceArgs` of secure.ts), as parseFlags specs. */
export const BENCH_TLS_FLAGS = {
  'cert-file': { type: 'string' },
  'key-file': { type: 'string' },
  'trusted-ca-file': { type: 'string' },
  'client-cert-auth': { type: 'boolean' },
  'auth-tokens': { type: 'string' },
  'call-token-file': { type: 'string' },
} as const;

/** The coordinator's bearer-token options (as coordinator/service/main.ts opens them), from --auth-tokens and --call-token-file. */
export function benchCoordinatorTokens(values: Record<string, string | boolean | undefined>, log: Logger): { auth?: TokenAuth; callToken?: () => string | undefined } {
  const file = values['auth-tokens'];
  const callFile = values['call-token-file'];
  const call = typeof callFile === 'string' ? new CallToken(callFile, { log }) : undefined;
  return { ...(typeof file === 'string' ? { auth: TokenAuth.open(file, { log }) } : {}), ...(call === undefined ? {} : { callToken: () => call.get() }) };
}

/** A child's TLS settings from those flags (none: plain HTTP); its store client and calls follow them too. */
export function benchServiceTls(values: Record<string, string | boolean | undefined>): TlsSettings {
  const text = (k: string): string | undefined => (typeof values[k] === 'string' ? values[k] : undefined);
  return serviceTls({ 'cert-file': text('cert-file'), 'key-file': text('key-file'), 'trusted-ca-file': text('trusted-ca-file'), 'client-cert-auth': values['client-cert-auth'] === true, insecure: false }, '127.0.0.1');
}
