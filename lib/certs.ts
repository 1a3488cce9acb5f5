/**
 * Development certificates for a local cluster: `raft2pc certs --dir D
 * [--hosts h1,h2]` (or `npm run certs`) writes
 *
 *   ca.crt, ca.key          a CA for this cluster only (kept if present, so a re-run signs with the same CA)
 *   server.crt, server.key  for every service: localhost, 127.0.0.1, ::1 and --hosts; serverAuth and clientAuth,
 *                           so a store member shows it both ways on its peer links (--peer-cert-file)
 *   client.crt, client.key  for clients (CN raft2pc-client); clientAuth
 *
 * by running Debian's `openssl` binary: no npm dependency (docs/DECISIONS.md
 * says why). Keys are written readable by their owner only. Not for
 * production: a real deployment brings its own CA.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { defineCommand, UsageError } from './cli.js';

const run = promisify(execFile);

/** How long a dev certificate is valid. */
const DEFAULT_VALID_DAYS = 365;
/** Each openssl call is bounded: a stuck one fails the command instead of hanging it. */
const OPENSSL_TIMEOUT_MS = 30_000;
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];
/** P-256 keys: quick to make, and every TLS client takes them. */
const KEY_ARGS = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export interface DevCertOptions {
  readonly dir: string;
  /** Names and addresses the server certificate is also valid for, besides loopback. */
  readonly hosts?: readonly string[];
  readonly validDays?: number;
}

/** The files written, by role. */
export interface DevCertFiles {
  readonly caFile: string;
  readonly caKeyFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
}

export function devCertFiles(dir: string): DevCertFiles {
  const f = (name: string): string => join(dir, name);
  return { caFile: f('ca.crt'), caKeyFile: f('ca.key'), serverCertFile: f('server.crt'), serverKeyFile: f('server.key'), clientCertFile: f('client.crt'), clientKeyFile: f('client.key') };
}

async function openssl(args: readonly string[]): Promise<void> {
  try {
    await run('openssl', args, { timeout: OPENSSL_TIMEOUT_MS });
  } catch (e) {
    const err = e as { code?: unknown; stderr?: unknown; message?: string };
    if (err.code === 'ENOENT') throw new Error('openssl is not installed (Debian: apt-get install openssl)');
    throw new Error(`openssl ${args[0] ?? ''} failed: ${String(err.stderr ?? err.message ?? e).trim()}`);
  }
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

async function makeCa(files: DevCertFiles, days: number): Promise<void> {
  const subject = `/CN=raft2pc dev CA ${randomBytes(4).toString('hex')}`;
  await openssl(['req', '-x509', ...KEY_ARGS, '-keyout', files.caKeyFile, '-out', files.caFile, '-subj', subject, '-days', String(days), '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await chmod(files.caKeyFile, 0o600);
}

/** A leaf key and certificate signed by the CA, with `extensions` (an openssl extfile's lines). */
async function makeLeaf(files: DevCertFiles, out: { cert: string; key: string }, commonName: string, extensions: readonly string[], days: number): Promise<void> {
  const csr = `${out.cert}.csr`;
  const ext = `${out.cert}.ext`;
  try {
    await openssl(['req', '-new', ...KEY_ARGS, '-keyout', out.key, '-out', csr, '-subj', `/CN=${commonName}`]);
    await chmod(out.key, 0o600);
    await writeFile(ext, `${extensions.join('\n')}\n`);
    const serial = `0x${randomBytes(16).toString('hex')}`;
    await openssl(['x509', '-req', '-in', csr, '-CA', files.caFile, '-CAkey', files.caKeyFile, '-set_serial', serial, '-days', String(days), '-out', out.cert, '-extfile', ext]);
  } finally {
    await rm(csr, { force: true });
    await rm(ext, { force: true });
  }
}

function subjectAltName(hosts: readonly string[]): string {
  const names = [...new Set([...LOOPBACK_NAMES, ...hosts])];
  return `subjectAltName=${names.map((h) => (isIP(h) === 0 ? `DNS:${h}` : `IP:${h}`)).join(',')}`;
}

/** Makes (or reuses) the CA, then issues new server and client certificates. */
export async function makeDevCertificates(opts: DevCertOptions): Promise<DevCertFiles> {
  const days = opts.validDays ?? DEFAULT_VALID_DAYS;
  const files = devCertFiles(opts.dir);
  await mkdir(opts.dir, { recursive: true, mode: 0o700 });
  if (!(await exists(files.caFile)) || !(await exists(files.caKeyFile))) await makeCa(files, days);
  const leaf = ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment'];
  await makeLeaf(files, { cert: files.serverCertFile, key: files.serverKeyFile }, 'raft2pc-server', [...leaf, 'extendedKeyUsage=serverAuth,clientAuth', subjectAltName(opts.hosts ?? [])], days);
  await makeLeaf(files, { cert: files.clientCertFile, key: files.clientKeyFile }, 'raft2pc-client', [...leaf, 'extendedKeyUsage=clientAuth'], days);
  return files;
}

export const certsCommand = defineCommand({
  name: 'certs',
  summary: 'make a development CA and server and client certificates for a local cluster (needs openssl)',
  flags: {
    dir: { type: 'string', default: join('data', 'certs'), placeholder: 'DIR', description: 'where the files go (a CA already there is reused)' },
    hosts: { type: 'list', default: [], placeholder: 'HOST,...', description: 'names and addresses the server certificate is valid for, besides localhost, 127.0.0.1 and ::1' },
    days: { type: 'int', default: DEFAULT_VALID_DAYS, min: 1, max: 3_650, description: 'how long the certificates are valid, in days' },
  },
  async run(values, _positionals, ctx) {
    for (const h of values.hosts) if (!/^[A-Za-z0-9.:*-]+$/.test(h)) throw new UsageError('--hosts', `${JSON.stringify(h)} is not a host name or address`);
    const files = await makeDevCertificates({ dir: values.dir, hosts: values.hosts, validDays: values.days });
    ctx.out(`CA           ${files.caFile}`);
    ctx.out(`server       ${files.serverCertFile}  ${files.serverKeyFile}`);
    ctx.out(`client       ${files.clientCertFile}  ${files.clientKeyFile}`);
    ctx.out(`serve with   --cert-file ${files.serverCertFile} --key-file ${files.serverKeyFile} --trusted-ca-file ${files.caFile}`);
    return 0;
  },
});
