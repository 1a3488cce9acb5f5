/**
 * `raft2pc token create --file TOKENS.json --name N --roles client,admin
 * [--expires-in-s S] [--out TOKEN_FILE]`: makes a bearer token
 * (lib/token-auth.ts), appends its hash entry to the token file and writes
 * the token to --out (mode 0600), or prints it when there is no --out.
 *
 * The token file is replaced atomically (a temp file beside it, fsync,
 * rename, fsync of the directory), so a service watching it never reads
 * half a file; a file that is not a valid token file is left alone (exit 1).
 * Two runs at once on the same file may lose one entry: run them in turn.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { defineCommand, defineGroup, isEntryPoint, runMain, UsageError } from './cli.js';
import { hashToken, newToken, parseTokenFile, TOKEN_LIMITS, TOKEN_ROLES, type TokenFileEntry, type TokenRole } from './token-auth.js';

/** The longest lifetime --expires-in-s takes: ten years. */
const MAX_EXPIRES_IN_S = 10 * 365 * 86_400;

/** Writes `text` to `file` by a temp file and a rename, both fsynced; `mode` for the new file. */
export function writeFileAtomically(file: string, text: string, mode: number): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, file);
  // The rename is durable once the directory is.
  const dir = openSync(dirname(file), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/** The entries already in `file`; none when it does not exist; throws when it is not a valid token file. */
function existingEntries(file: string): TokenFileEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  parseTokenFile(text); // the whole check, before anything is written
  return (JSON.parse(text) as { tokens: TokenFileEntry[] }).tokens;
}

function parseRoles(roles: readonly string[]): TokenRole[] {
  if (roles.length === 0) throw new UsageError('--roles', `names no role (one or more of ${TOKEN_ROLES.join(', ')})`);
  for (const r of roles) if (!(TOKEN_ROLES as readonly string[]).includes(r)) throw new UsageError('--roles', `${JSON.stringify(r)} is not one of ${TOKEN_ROLES.join(', ')}`);
  return [...new Set(roles)] as TokenRole[];
}

/** The entry and the file's new text: pure, so a test can check what is appended. */
export function appendEntry(entries: readonly TokenFileEntry[], entry: TokenFileEntry): string {
  if (entries.length >= TOKEN_LIMITS.maxEntries) throw new Error(`the token file holds ${entries.length} tokens, the most it may`);
  return `${JSON.stringify({ tokens: [...entries, entry] }, null, 2)}\n`;
}

const create = defineCommand({
  name: 'create',
  summary: "make a bearer token, add its hash to a token file, and write the token to --out (or stdout)",
  flags: {
    file: { type: 'string', required: true, placeholder: 'TOKENS.json', description: 'the token file a service reads (--auth-tokens); made when missing' },
    name: { type: 'string', required: true, placeholder: 'NAME', description: "who the token is for, in the services' logs" },
    roles: { type: 'list', required: true, placeholder: 'ROLE,...', description: `its roles: ${TOKEN_ROLES.join(', ')}` },
    'expires-in-s': { type: 'int', min: 1, max: MAX_EXPIRES_IN_S, description: 'the token expires this many seconds from now (default: never)' },
    out: { type: 'string', placeholder: 'TOKEN_FILE', description: 'write the token here (mode 0600) instead of printing it' },
  },
  run(values, _positionals, ctx) {
    const roles = parseRoles(values.roles);
    if (values.name.length > TOKEN_LIMITS.maxNameChars || !/^[A-Za-z0-9][A-Za-z0-9._@-]*$/.test(values.name)) throw new UsageError('--name', `must match [A-Za-z0-9][A-Za-z0-9._@-]*, at most ${TOKEN_LIMITS.maxNameChars} characters`);
    const token = newToken();
    const expires = values['expires-in-s'];
    const entry: TokenFileEntry = { name: values.name, roles, sha256: hashToken(token), ...(expires === undefined ? {} : { expiresAt: new Date(Date.now() + expires * 1_000).toISOString() }) };
    const text = appendEntry(existingEntries(values.file), entry);
    // The token first: a token file naming a token nobody holds is harmless, the reverse loses it.
    if (values.out !== undefined) writeFileAtomically(values.out, `${token}\n`, 0o600);
    writeFileAtomically(values.file, text, 0o600);
    if (values.out === undefined) ctx.out(token);
    else ctx.out(`token ${values.name} (${roles.join(',')}) added to ${values.file}, written to ${values.out}`);
    return 0;
  },
});

export const tokenCommand = defineGroup({
  name: 'token',
  summary: 'make bearer tokens for the coordinator and participants (--auth-tokens files)',
  subcommands: [create],
});

if (isEntryPoint(import.meta.url)) runMain(tokenCommand, process.argv.slice(2), 'raft2pc token');
