/**
 * kvctl: the built-in store's command-line client, in the manner of etcdctl.
 *
 *   raft2pc kvctl [--endpoints http://127.0.0.1:2379,...] [--json] COMMAND ...
 *   (or npm run kvctl -- ...; `raft2pc kvctl --help`, `raft2pc kvctl get --help`)
 *
 * Commands:
 *   get KEY [--serializable]            print the key and its value
 *   put KEY [VALUE]                     set (VALUE from stdin when omitted); prints OK
 *   cas KEY EXPECTED VALUE              compare-and-swap; exit 3 when the compare failed
 *   cas KEY --absent VALUE              create-if-absent
 *   del KEY                             delete; prints how many keys went (0 or 1)
 *   range --prefix P [--limit N] [--after K] [--serializable]
 *   txn [--file F]                      {compare, success, failure} as JSON from F or stdin
 *   status                              every endpoint's Raft status
 *   members                             the cluster's members
 *   members add ID CLIENT_URL PEER_ADDR [--voter]   add a learner (or a voter)
 *   members promote ID | members remove ID
 *   leader transfer ID                  hand leadership to ID
 *   lock NAME -- CMD [ARGS], elect NAME [PROPOSAL], elect --listen NAME,
 *   watch --prefix P                    coordination recipes (recipes-cli.ts)
 *   auth enable|disable|status|setup-2pc, user ..., role ...   users, roles and permissions (kvctl-auth.ts)
 *
 * With auth on, `--user NAME:PASSWORD` (or `--user NAME --password P`, or
 * RAFT2PC_USER and RAFT2PC_PASSWORD) authenticates, as with etcdctl.
 *
 * Human-readable output by default; --json prints the store's answer as one
 * JSON document. Exit codes: 0 ok; 1 the store answered an error (its code is
 * printed, e.g. `Error: key_not_found: ...`, or as {"error":{...}} with
 * --json, on stderr); 2 bad usage or input; 3 a CAS whose compare failed.
 * Endpoints default to $RAFT2PC_ENDPOINTS, else $KVCTL_ENDPOINTS, else the
 * three of `npm run cluster`.
 */
import { readFileSync } from 'node:fs';
import { defineCommand, defineGroup, isEntryPoint, runMain, UsageError, type Command, type FlagSpecs, type FlagValues } from '../../lib/cli.js';
import { clientTlsFromFiles, type ClientTls } from '../../lib/tls.js';
import { StoreClient, StoreError, type KeyValue, type TxnCompare, type TxnOp } from '../client/index.js';
import { authCommands, type AuthInvocation } from './kvctl-auth.js';
import { recipeCommands } from './recipes-cli.js';

const DEFAULT_ENDPOINTS = 'http://127.0.0.1:2379,http://127.0.0.1:2380,http://127.0.0.1:2381';

/** Every subcommand's flags (the group's). */
const KVCTL_FLAGS = {
  endpoints: { type: 'list', default: DEFAULT_ENDPOINTS.split(','), envAliases: ['KVCTL_ENDPOINTS'], placeholder: 'URL,...', description: "the store's members (http://host:port, or https://host:port with the TLS flags)" },
  json: { type: 'boolean', description: "print the store's answer (and errors) as JSON" },
  'timeout-ms': { type: 'int', default: 10_000, min: 1, description: 'how long one command may take, retries included, in ms' },
  user: { type: 'string', placeholder: 'NAME[:PASSWORD]', envAliases: ['KVCTL_USER'], description: 'with auth on: authenticate as NAME (the password after a colon, or from --password)' },
  password: { type: 'string', placeholder: 'PASSWORD', envAliases: ['KVCTL_PASSWORD'], description: "with auth on: the --user's password (RAFT2PC_PASSWORD keeps it off the command line)" },
  // As etcdctl's --cacert, --cert and --key.
  'trusted-ca-file': { type: 'string', placeholder: 'FILE', description: "https: the CA (PEM) that signs the store's certificates (default: the system's)" },
  'cert-file': { type: 'string', placeholder: 'FILE', description: 'https: a client certificate (PEM), for a store with --client-cert-auth' },
  'key-file': { type: 'string', placeholder: 'FILE', description: 'https: the private key (PEM) of --cert-file' },
} as const satisfies FlagSpecs;

/** Bad input (not the command line: stdin, a file): exit 2, reported like a store error. */
class InputError extends Error {
  readonly code = 'invalid_input';
}

interface Output {
  readonly json: boolean;
  out(text: string): void;
  err(text: string): void;
}

/** Exactly `n` positional arguments, or a usage error quoting the synopsis. */
function need(positionals: readonly string[], n: number, usage: string): string[] {
  if (positionals.length !== n) throw new UsageError(undefined, `expected: ${usage}`);
  return positionals.slice();
}

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read standard input: ${String(e)}`);
  }
}

function printKv(o: Output, kv: KeyValue): void {
  o.out(kv.key);
  o.out(kv.value);
}

function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

function parseTxn(text: string): { compare: TxnCompare[]; success: TxnOp[]; failure: TxnOp[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new InputError('the transaction is not valid JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new InputError('the transaction must be a JSON object {compare, success, failure}');
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d)) {
    if (!['compare', 'success', 'failure'].includes(k)) throw new InputError(`unknown transaction field "${k}"`);
  }
  const list = (name: string): unknown[] => {
    const v = d[name];
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw new InputError(`"${name}" must be an array`);
    return v;
  };
  // The store validates each element; the CLI only checks the shape.
  return { compare: list('compare') as TxnCompare[], success: list('success') as TxnOp[], failure: list('failure') as TxnOp[] };
}

type KvValues<F extends FlagSpecs> = FlagValues<typeof KVCTL_FLAGS & F>;

/** One subcommand's inputs: its positional arguments, the flags, the client and the output. */
interface Invocation<F extends FlagSpecs> {
  readonly args: readonly string[];
  readonly values: KvValues<F>;
  readonly client: StoreClient;
  readonly o: Output;
}

/** `--user NAME:PASSWORD`, or `--user NAME` with `--password`, as etcdctl takes them. */
function credentials(user: string | undefined, password: string | undefined): { user?: string; password?: string } {
  if (user === undefined) {
    if (password !== undefined) throw new UsageError('--password', 'give --user too');
    return {};
  }
  const colon = user.indexOf(':');
  const [name, pw] = colon < 0 ? [user, password] : [user.slice(0, colon), user.slice(colon + 1)];
  if (name === '' || pw === undefined || pw === '') throw new UsageError('--user', 'want NAME:PASSWORD, or NAME with --password');
  return { user: name, password: pw };
}

/** The client for --endpoints, --timeout-ms, the TLS files and the credentials. */
function connect(common: FlagValues<typeof KVCTL_FLAGS>): StoreClient {
  for (const e of common.endpoints) {
    if (!/^https?:\/\/[^/]+\/?$/.test(e)) throw new UsageError('--endpoints', `bad endpoint "${e}": want http://host:port or https://host:port`);
  }
  const timeoutMs = common['timeout-ms'];
  let tls: ClientTls;
  try {
    tls = clientTlsFromFiles({ caFile: common['trusted-ca-file'], certFile: common['cert-file'], keyFile: common['key-file'] });
  } catch (e) {
    throw new UsageError('--trusted-ca-file', e instanceof Error ? e.message : String(e));
  }
  const auth = credentials(common.user, common.password);
  return new StoreClient({ endpoints: [...common.endpoints], deadlineMs: timeoutMs, requestTimeoutMs: Math.min(timeoutMs, 3_000), tls, ...auth });
}

/**
 * A kvctl subcommand: `handler` resolves to the exit code; what it throws is
 * reported here, as `Error: code: message` or {"error": {...}} with --json:
 * a store error exits 1, bad input 2. A command-line mistake (UsageError)
 * goes to lib/cli.ts, which prints it with the usage.
 */
function kvCommand<const F extends FlagSpecs>(
  name: string,
  summary: string,
  args: string | undefined,
  flags: F,
  handler: (c: Invocation<F>) => Promise<number>,
): Command {
  return defineCommand({
    name,
    summary,
    ...(args === undefined ? {} : { args }),
    flags: { ...KVCTL_FLAGS, ...flags },
    async run(values, positionals, ctx) {
      // The group's flags, typed as such (TypeScript does not resolve them through the generic F).
      const common = values as unknown as FlagValues<typeof KVCTL_FLAGS>;
      const o: Output = { json: common.json, out: ctx.out, err: ctx.err };
      const client = connect(common);
      try {
        return await handler({ args: positionals, values: values as KvValues<F>, client, o });
      } catch (e) {
        if (e instanceof UsageError) throw e;
        return report(e, o);
      }
    },
  });
}

function report(e: unknown, o: Output): number {
  let body: { code: string; message: string; status?: number; [k: string]: unknown };
  let code: number;
  if (e instanceof StoreError) {
    body = { ...e.details, code: e.code, message: e.message, status: e.status };
    code = 1;
  } else if (e instanceof InputError) {
    body = { code: e.code, message: e.message };
    code = 2;
  } else {
    body = { code: 'internal', message: e instanceof Error ? e.message : String(e) };
    code = 1;
  }
  if (o.json) o.err(JSON.stringify({ error: body }));
  else o.err(`Error: ${body.code}: ${body.message}`);
  return code;
}

/** The store's answer as one JSON document with --json, else the human-readable form. */
function answer(o: Output, res: unknown, human: () => void): void {
  if (o.json) o.out(JSON.stringify(res, null, 2));
  else human();
}

const getCommand = kvCommand('get', 'print a key and its value', 'KEY', { serializable: { type: 'boolean', description: "read this member's copy (may be stale) instead of the leader's" } }, async ({ args, values, client, o }) => {
  const [key] = need(args, 1, 'get KEY') as [string];
  const kv = await client.get(key, { serializable: values.serializable });
  if (kv === null) throw new StoreError('key_not_found', 404, `key ${JSON.stringify(key)} not found`, { key });
  answer(o, kv, () => printKv(o, kv));
  return 0;
});

const putCommand = kvCommand('put', 'set a key (VALUE from stdin when omitted); prints OK', 'KEY [VALUE]', {}, async ({ args, client, o }) => {
  if (args.length !== 1 && args.length !== 2) throw new UsageError(undefined, 'expected: put KEY [VALUE]');
  const key = args[0] as string;
  const value = args[1] ?? readStdin();
  const res = await client.put(key, value);
  answer(o, res, () => o.out('OK'));
  return 0;
});

const casCommand = kvCommand('cas', 'compare-and-swap; exit 3 when the compare failed', 'KEY EXPECTED VALUE | KEY --absent VALUE', { absent: { type: 'boolean', description: 'create the key only if it is absent' } }, async ({ args, values, client, o }) => {
  let key: string;
  let expected: string | null;
  let value: string;
  if (values.absent) {
    [key, value] = need(args, 2, 'cas KEY --absent VALUE') as [string, string];
    expected = null;
  } else {
    [key, expected, value] = need(args, 3, 'cas KEY EXPECTED VALUE (or cas KEY --absent VALUE)') as [string, string, string];
  }
  const res = await client.cas(key, expected, value);
  answer(o, res, () => o.out(res.succeeded ? `OK (revision ${res.revision})` : `FAILED: the current value is ${res.previous === null ? 'absent' : JSON.stringify(res.previous)}`));
  return res.succeeded ? 0 : 3;
});

const deleteHandler = async ({ args, client, o }: Invocation<Record<never, never>>): Promise<number> => {
  const [key] = need(args, 1, 'del KEY') as [string];
  const res = await client.delete(key);
  answer(o, res, () => o.out(res.deleted ? '1' : '0'));
  return 0;
};

const RANGE_FLAGS = {
  prefix: { type: 'string', required: true, placeholder: 'P', description: 'the keys that start with P (--prefix "" for every key)' },
  limit: { type: 'int', min: 1, description: 'most keys to print' },
  after: { type: 'string', placeholder: 'KEY', description: 'start after this key (to page on)' },
  serializable: { type: 'boolean', description: "read this member's copy (may be stale) instead of the leader's" },
} as const satisfies FlagSpecs;

const rangeCommand = kvCommand('range', 'list the keys under a prefix, in order', undefined, RANGE_FLAGS, async ({ values, client, o }) => {
  const res = await client.range(values.prefix, {
    ...(values.limit === undefined ? {} : { limit: values.limit }),
    ...(values.after === undefined ? {} : { after: values.after }),
    serializable: values.serializable,
  });
  answer(o, res, () => {
    for (const kv of res.kvs) printKv(o, kv);
    const last = res.kvs[res.kvs.length - 1];
    if (res.more && last) o.err(`(more keys: continue with --after ${JSON.stringify(last.key)})`);
  });
  return 0;
});

const txnCommand = kvCommand('txn', 'run {compare, success, failure} (JSON from --file or stdin) as one transaction', undefined, { file: { type: 'string', placeholder: 'FILE', description: 'read the transaction from FILE instead of stdin' } }, async ({ values, client, o }) => {
  let text: string;
  if (values.file !== undefined) {
    try {
      text = readFileSync(values.file, 'utf8');
    } catch (e) {
      throw new InputError(`cannot read ${values.file}: ${String(e)}`);
    }
  } else text = readStdin();
  const t = parseTxn(text);
  const res = await client.txn(t.compare, t.success, t.failure);
  answer(o, res, () => {
    o.out(res.succeeded ? 'SUCCESS' : 'FAILURE');
    o.out(`revision ${res.revision}`);
    for (const r of res.results) o.out(JSON.stringify(r));
  });
  return 0;
});

/** Every endpoint's status, or the error it gave: one row each. */
function statusRows(client: StoreClient): Promise<Record<string, unknown>[]> {
  return Promise.all(
    client.endpoints.map(async (endpoint) => {
      try {
        return { endpoint, ...(await client.status(endpoint)) } as Record<string, unknown>;
      } catch (e) {
        const err = e instanceof StoreError ? { code: e.code, message: e.message } : { code: 'unavailable', message: String(e) };
        return { endpoint, error: err } as Record<string, unknown>;
      }
    }),
  );
}

function statusTable(rows: readonly Record<string, unknown>[]): string {
  const head = ['ENDPOINT', 'ID', 'PID', 'ROLE', 'TERM', 'LEADER', 'COMMIT', 'APPLIED', 'REVISION'];
  const body = rows.map((r) => {
    if (r['error'] !== undefined) return [String(r['endpoint']), `error: ${(r['error'] as { code: string }).code}`];
    return head.map((h) => String(h === 'ENDPOINT' ? r['endpoint'] : h === 'LEADER' ? (r['leaderId'] ?? '-') : h === 'COMMIT' ? r['commitIndex'] : h === 'APPLIED' ? r['appliedIndex'] : r[h.toLowerCase()]));
  });
  return table([head, ...body]);
}

const statusCommand = kvCommand('status', "every endpoint's Raft status", undefined, {}, async ({ client, o }) => {
  const rows = await statusRows(client);
  answer(o, rows, () => o.out(statusTable(rows)));
  if (rows.every((r) => r['error'] !== undefined)) {
    const first = rows[0]?.['error'] as { code: string; message: string } | undefined;
    throw new StoreError(first?.code ?? 'unavailable', 503, `no endpoint answered: ${first?.message ?? ''}`);
  }
  return 0;
});

const MEMBERS_ARGS = '[list | add ID CLIENT_URL PEER_ADDRESS | promote ID | remove ID]';

const membersCommand = kvCommand('members', "list the cluster's members, or change them", MEMBERS_ARGS, { voter: { type: 'boolean', description: 'members add: add a voter at once, not a learner' } }, async ({ args, values, client, o }) => {
  const [sub, ...rest] = args;
  if (sub === 'add') {
    const [id, clientUrl, peerAddress] = need(rest, 3, 'members add ID CLIENT_URL PEER_ADDRESS [--voter]') as [string, string, string];
    const res = await client.addMember({ id, clientUrl, peerAddress }, { voter: values.voter });
    answer(o, res, () => o.out(`added ${id} as ${res.learner ? 'learner' : 'voter'}`));
    return 0;
  }
  if (sub === 'promote' || sub === 'remove') {
    const [id] = need(rest, 1, `members ${sub} ID`) as [string];
    const res = sub === 'promote' ? await client.promoteMember(id) : await client.removeMember(id);
    answer(o, res, () => o.out(`${sub === 'promote' ? 'promoted' : 'removed'} ${id}`));
    return 0;
  }
  if (sub !== undefined && sub !== 'list') throw new UsageError(sub, `unknown members command; want ${MEMBERS_ARGS}`);
  need(rest, 0, 'members list');
  const res = await client.members();
  answer(o, res, () => {
    const head = ['ID', 'ROLE', 'CLIENT URL', 'PEER ADDRESS'];
    const body = res.members.map((m) => [m.id + (m.leader ? ' (leader)' : ''), m.role, m.clientUrl, m.peerAddress]);
    o.out(table([head, ...body]));
  });
  return 0;
});

const leaderCommand = kvCommand('leader', 'hand leadership to a member', 'transfer ID', {}, async ({ args, client, o }) => {
  const [sub, id] = need(args, 2, 'leader transfer ID') as [string, string];
  if (sub !== 'transfer') throw new UsageError(sub, 'unknown leader command; want leader transfer ID');
  const res = await client.transferLeader(id);
  answer(o, res, () => o.out(`leader is now ${res.leaderId}`));
  return 0;
});

export const kvctlCommand = defineGroup({
  name: 'kvctl',
  summary: "the built-in store's command-line client",
  details: 'exit codes: 0 ok, 1 store error, 2 usage or input error, 3 CAS compare failed',
  flags: KVCTL_FLAGS,
  subcommands: [
    getCommand,
    putCommand,
    casCommand,
    kvCommand('del', 'delete a key; prints how many keys went (0 or 1)', 'KEY', {}, deleteHandler),
    kvCommand('delete', 'the same as del', 'KEY', {}, deleteHandler),
    rangeCommand,
    txnCommand,
    statusCommand,
    membersCommand,
    leaderCommand,
    ...authCommands({ command: (name, summary, args, flags, handler) => kvCommand(name, summary, args, flags, (c) => handler(c as unknown as AuthInvocation)), need, table, readStdin }),
    ...recipeCommands,
  ],
});

if (isEntryPoint(import.meta.url)) runMain(kvctlCommand);
