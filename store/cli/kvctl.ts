/**
 * kvctl: the built-in store's command-line client, in the manner of etcdctl.
 *
 *   npm run kvctl -- [--endpoints http://127.0.0.1:2379,...] [--json] COMMAND ...
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
 *
 * Human-readable output by default; --json prints the store's answer as one
 * JSON document. Exit codes: 0 ok; 1 the store answered an error (its code is
 * printed, e.g. `Error: key_not_found: ...`, or as {"error":{...}} with
 * --json, on stderr); 2 bad usage or input; 3 a CAS whose compare failed.
 * Endpoints default to $KVCTL_ENDPOINTS, else the three of `npm start`.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { StoreClient, StoreError, type KeyValue, type TxnCompare, type TxnOp } from '../client/index.js';

const DEFAULT_ENDPOINTS = 'http://127.0.0.1:2379,http://127.0.0.1:2380,http://127.0.0.1:2381';

const USAGE = `usage: kvctl [--endpoints URL,...] [--json] [--timeout-ms N] COMMAND
commands:
  get KEY [--serializable]
  put KEY [VALUE]                 (VALUE from stdin when omitted)
  cas KEY EXPECTED VALUE | cas KEY --absent VALUE
  del KEY
  range --prefix P [--limit N] [--after KEY] [--serializable]
  txn [--file FILE]               ({compare, success, failure} JSON; stdin without --file)
  status
  members [add ID CLIENT_URL PEER_ADDRESS [--voter] | promote ID | remove ID]
  leader transfer ID
exit codes: 0 ok, 1 store error, 2 usage or input error, 3 CAS compare failed`;

/** A usage or input error: exit 2. */
class UsageError extends Error {
  constructor(
    message: string,
    readonly code = 'invalid_usage',
  ) {
    super(message);
  }
}

interface Output {
  readonly json: boolean;
  out(text: string): void;
  err(text: string): void;
}

function need(positionals: readonly string[], n: number, usage: string): string[] {
  if (positionals.length !== n) throw new UsageError(`expected: ${usage}`);
  return positionals.slice();
}

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read standard input: ${String(e)}`, 'invalid_input');
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
    throw new UsageError('the transaction is not valid JSON', 'invalid_input');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new UsageError('the transaction must be a JSON object {compare, success, failure}', 'invalid_input');
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d)) {
    if (!['compare', 'success', 'failure'].includes(k)) throw new UsageError(`unknown transaction field "${k}"`, 'invalid_input');
  }
  const list = (name: string): unknown[] => {
    const v = d[name];
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw new UsageError(`"${name}" must be an array`, 'invalid_input');
    return v;
  };
  // The store validates each element; the CLI only checks the shape.
  return { compare: list('compare') as TxnCompare[], success: list('success') as TxnOp[], failure: list('failure') as TxnOp[] };
}

function parseCommandLine(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    options: {
      endpoints: { type: 'string' },
      json: { type: 'boolean' },
      'timeout-ms': { type: 'string' },
      absent: { type: 'boolean' },
      prefix: { type: 'string' },
      limit: { type: 'string' },
      after: { type: 'string' },
      serializable: { type: 'boolean' },
      file: { type: 'string' },
      voter: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
}

type Flags = ReturnType<typeof parseCommandLine>['values'];

/** One subcommand's inputs: its positional arguments, the flags, the client and the output. */
interface Invocation {
  readonly args: readonly string[];
  readonly values: Flags;
  readonly client: StoreClient;
  readonly o: Output;
}

/** A subcommand: resolves to the exit code; a store error or usage error is thrown. */
type Command = (c: Invocation) => Promise<number>;

/** The client for --endpoints (or $KVCTL_ENDPOINTS, or the demo's three) and --timeout-ms. */
function connect(values: Flags): StoreClient {
  const endpoints = (values.endpoints ?? process.env['KVCTL_ENDPOINTS'] ?? DEFAULT_ENDPOINTS)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const e of endpoints) {
    if (!/^http:\/\/[^/]+\/?$/.test(e)) throw new UsageError(`bad endpoint "${e}": want http://host:port`);
  }
  const timeoutMs = values['timeout-ms'] === undefined ? 10_000 : Number(values['timeout-ms']);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new UsageError('--timeout-ms must be a positive integer');
  return new StoreClient({ endpoints, deadlineMs: timeoutMs, requestTimeoutMs: Math.min(timeoutMs, 3_000) });
}

/** The store's answer as one JSON document with --json, else the human-readable form. */
function answer(o: Output, res: unknown, human: () => void): void {
  if (o.json) o.out(JSON.stringify(res, null, 2));
  else human();
}

async function getCommand({ args, values, client, o }: Invocation): Promise<number> {
  const [key] = need(args, 1, 'get KEY') as [string];
  const kv = await client.get(key, { serializable: values.serializable === true });
  if (kv === null) throw new StoreError('key_not_found', 404, `key ${JSON.stringify(key)} not found`, { key });
  answer(o, kv, () => printKv(o, kv));
  return 0;
}

async function putCommand({ args, client, o }: Invocation): Promise<number> {
  if (args.length !== 1 && args.length !== 2) throw new UsageError('expected: put KEY [VALUE]');
  const key = args[0] as string;
  const value = args[1] ?? readStdin();
  const res = await client.put(key, value);
  answer(o, res, () => o.out('OK'));
  return 0;
}

async function casCommand({ args, values, client, o }: Invocation): Promise<number> {
  let key: string;
  let expected: string | null;
  let value: string;
  if (values.absent === true) {
    [key, value] = need(args, 2, 'cas KEY --absent VALUE') as [string, string];
    expected = null;
  } else {
    [key, expected, value] = need(args, 3, 'cas KEY EXPECTED VALUE (or cas KEY --absent VALUE)') as [string, string, string];
  }
  const res = await client.cas(key, expected, value);
  answer(o, res, () => o.out(res.succeeded ? `OK (revision ${res.revision})` : `FAILED: the current value is ${res.previous === null ? 'absent' : JSON.stringify(res.previous)}`));
  return res.succeeded ? 0 : 3;
}

async function deleteCommand({ args, client, o }: Invocation): Promise<number> {
  const [key] = need(args, 1, 'del KEY') as [string];
  const res = await client.delete(key);
  answer(o, res, () => o.out(res.deleted ? '1' : '0'));
  return 0;
}

async function rangeCommand({ args, values, client, o }: Invocation): Promise<number> {
  need(args, 0, 'range --prefix P [--limit N] [--after KEY]');
  if (values.prefix === undefined) throw new UsageError('range needs --prefix (use --prefix "" for every key)');
  let limit: number | undefined;
  if (values.limit !== undefined) {
    limit = Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be a positive integer');
  }
  const res = await client.range(values.prefix, {
    ...(limit === undefined ? {} : { limit }),
    ...(values.after === undefined ? {} : { after: values.after }),
    serializable: values.serializable === true,
  });
  answer(o, res, () => {
    for (const kv of res.kvs) printKv(o, kv);
    const last = res.kvs[res.kvs.length - 1];
    if (res.more && last) o.err(`(more keys: continue with --after ${JSON.stringify(last.key)})`);
  });
  return 0;
}

async function txnCommand({ args, values, client, o }: Invocation): Promise<number> {
  need(args, 0, 'txn [--file FILE]');
  let text: string;
  if (values.file !== undefined) {
    try {
      text = readFileSync(values.file, 'utf8');
    } catch (e) {
      throw new UsageError(`cannot read ${values.file}: ${String(e)}`, 'invalid_input');
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
}

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

async function statusCommand({ args, client, o }: Invocation): Promise<number> {
  need(args, 0, 'status');
  const rows = await statusRows(client);
  answer(o, rows, () => o.out(statusTable(rows)));
  if (rows.every((r) => r['error'] !== undefined)) {
    const first = rows[0]?.['error'] as { code: string; message: string } | undefined;
    throw new StoreError(first?.code ?? 'unavailable', 503, `no endpoint answered: ${first?.message ?? ''}`);
  }
  return 0;
}

async function membersCommand({ args, values, client, o }: Invocation): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'add') {
    const [id, clientUrl, peerAddress] = need(rest, 3, 'members add ID CLIENT_URL PEER_ADDRESS [--voter]') as [string, string, string];
    const res = await client.addMember({ id, clientUrl, peerAddress }, { voter: values.voter === true });
    answer(o, res, () => o.out(`added ${id} as ${res.learner ? 'learner' : 'voter'}`));
    return 0;
  }
  if (sub === 'promote' || sub === 'remove') {
    const [id] = need(rest, 1, `members ${sub} ID`) as [string];
    const res = sub === 'promote' ? await client.promoteMember(id) : await client.removeMember(id);
    answer(o, res, () => o.out(`${sub === 'promote' ? 'promoted' : 'removed'} ${id}`));
    return 0;
  }
  if (sub !== undefined && sub !== 'list') throw new UsageError(`unknown members command "${sub}"`);
  const res = await client.members();
  answer(o, res, () => {
    const head = ['ID', 'ROLE', 'CLIENT URL', 'PEER ADDRESS'];
    const body = res.members.map((m) => [m.id + (m.leader ? ' (leader)' : ''), m.role, m.clientUrl, m.peerAddress]);
    o.out(table([head, ...body]));
  });
  return 0;
}

async function leaderCommand({ args, client, o }: Invocation): Promise<number> {
  const [sub, id] = need(args, 2, 'leader transfer ID') as [string, string];
  if (sub !== 'transfer') throw new UsageError(`unknown leader command "${sub}"`);
  const res = await client.transferLeader(id);
  answer(o, res, () => o.out(`leader is now ${res.leaderId}`));
  return 0;
}

const COMMANDS: ReadonlyMap<string, Command> = new Map([
  ['get', getCommand],
  ['put', putCommand],
  ['cas', casCommand],
  ['del', deleteCommand],
  ['delete', deleteCommand],
  ['range', rangeCommand],
  ['txn', txnCommand],
  ['status', statusCommand],
  ['members', membersCommand],
  ['leader', leaderCommand],
]);

async function run(argv: readonly string[], o: Output): Promise<number> {
  const { values, positionals } = parseCommandLine(argv);
  const [command, ...args] = positionals;
  if (values.help === true || command === undefined || command === 'help') {
    o.out(USAGE);
    return command === undefined && values.help !== true ? 2 : 0;
  }
  const client = connect(values);
  const handler = COMMANDS.get(command);
  if (handler === undefined) throw new UsageError(`unknown command "${command}"\n${USAGE}`);
  return handler({ args, values, client, o });
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const wantsJson = argv.includes('--json');
  const o: Output = {
    json: wantsJson,
    out: (t) => process.stdout.write(`${t}\n`),
    err: (t) => process.stderr.write(`${t}\n`),
  };
  let code: number;
  try {
    code = await run(argv, o);
  } catch (e) {
    let body: { code: string; message: string; status?: number; [k: string]: unknown };
    if (e instanceof StoreError) {
      body = { ...e.details, code: e.code, message: e.message, status: e.status };
      code = 1;
    } else if (e instanceof UsageError) {
      body = { code: e.code, message: e.message };
      code = 2;
    } else if (e instanceof TypeError && 'code' in e && typeof e.code === 'string' && e.code.startsWith('ERR_PARSE_ARGS')) {
      body = { code: 'invalid_usage', message: `${e.message}\n${USAGE}` };
      code = 2;
    } else {
      body = { code: 'internal', message: e instanceof Error ? e.message : String(e) };
      code = 1;
    }
    if (wantsJson) o.err(JSON.stringify({ error: body }));
    else o.err(`Error: ${body.code}: ${body.message}`);
  }
  // Flush stdout before exiting (pipes are asynchronous).
  process.stdout.write('', () => process.exit(code));
}

void main();
