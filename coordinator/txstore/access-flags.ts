/**
 * The command-line flags for a process's credentials toward its store, one
 * set for every service (coordinator, participants, the demo's banks): the
 * built-in store's user or token (docs/SECURITY.md, "Store users and
 * roles") and etcd's TLS files and user (etcds://). Each flag has its
 * RAFT2PC_<FLAG> twin (lib/cli.ts), which is the variable openTxStore and
 * etcd/security.ts already read, so a flag and a variable say the same and
 * the flag wins. Secrets come from files or variables, never from argv
 * (a command line is visible to every local user in /proc).
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../../lib/cli.js';
import { ETCD_ENV } from './etcd/security.js';
import { STORE_PASSWORD_ENV, STORE_TOKEN_ENV, STORE_USER_ENV } from './open.js';

/** A secret file is a password or a token: anything longer is a mistake. */
const MAX_SECRET_FILE_BYTES = 4_096;

export const STORE_ACCESS_FLAGS = {
  'store-user': { type: 'string', placeholder: 'USER', description: "the built-in store's user, when its auth is on (the password: --store-password-file or RAFT2PC_STORE_PASSWORD)" },
  'store-password-file': { type: 'string', placeholder: 'FILE', description: "a file holding the built-in store's password of --store-user" },
  'store-token-file': { type: 'string', placeholder: 'FILE', description: 'a file holding a token of the built-in store (instead of a user and password)' },
  'etcd-ca-file': { type: 'string', placeholder: 'FILE', description: "etcds://: the CA (PEM) that signs etcd's certificates (default: the system's)" },
  'etcd-cert-file': { type: 'string', placeholder: 'FILE', description: "etcds://: a client certificate (PEM), for etcd's --client-cert-auth" },
  'etcd-key-file': { type: 'string', placeholder: 'FILE', description: 'etcds://: the private key (PEM) of --etcd-cert-file' },
  'etcd-user': { type: 'string', placeholder: 'USER', description: "an etcd user, when etcd's auth is on (the password: --etcd-password-file or RAFT2PC_ETCD_PASSWORD)" },
  'etcd-password-file': { type: 'string', placeholder: 'FILE', description: 'a file holding the password of --etcd-user' },
} as const;

type StoreAccessValues = { readonly [K in keyof typeof STORE_ACCESS_FLAGS]?: string | undefined };

/** A password or token file's text without its trailing newline; a usage error names the flag. */
function readSecret(flag: string, path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`--${flag}`, `cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const secret = text.replace(/\r?\n$/, '');
  if (secret === '' || Buffer.byteLength(secret) > MAX_SECRET_FILE_BYTES) throw new UsageError(`--${flag}`, `${path} must hold one secret of 1..${MAX_SECRET_FILE_BYTES} bytes`);
  return secret;
}

/** The environment openTxStore takes (its third argument): `env` with what the flags say put in. */
export function storeAccessEnv(values: StoreAccessValues, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  const put = (name: string, value: string | undefined): void => {
    if (value !== undefined) out[name] = value;
  };
  put(STORE_USER_ENV, values['store-user']);
  if (values['store-password-file'] !== undefined) put(STORE_PASSWORD_ENV, readSecret('store-password-file', values['store-password-file']));
  if (values['store-token-file'] !== undefined) put(STORE_TOKEN_ENV, readSecret('store-token-file', values['store-token-file']));
  put(ETCD_ENV.caFile, values['etcd-ca-file']);
  put(ETCD_ENV.certFile, values['etcd-cert-file']);
  put(ETCD_ENV.keyFile, values['etcd-key-file']);
  put(ETCD_ENV.user, values['etcd-user']);
  put(ETCD_ENV.passwordFile, values['etcd-password-file']);
  return out;
}
