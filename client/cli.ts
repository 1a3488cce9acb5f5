/**
 * The transactions CLI, on the SDK:
 *
 *   raft2pc tx list   [--state S] [--limit N] [--after POS]
 *   raft2pc tx get    TX_ID
 *   raft2pc tx commit TX_ID
 *   raft2pc tx abort  TX_ID [--reason TEXT]
 *
 * with --coordinators URL,... (or RAFT2PC_COORDINATORS) and --json (one JSON
 * document on stdout) on each. Exit codes: 0 done; 1 an error (the
 * coordinator's code and message on stderr); 2 bad usage; 3 the transaction
 * ended the other way (commit found it aborted, abort found it committed).
 * Also runnable alone: `node --import tsx client/cli.ts list ...`.
 */
import { readFileSync } from 'node:fs';
import { isValidTxId } from '../coordinator/protocol/index.js';
import { defineCommand, defineGroup, isEntryPoint, runMain, UsageError, type CommandContext } from '../lib/cli.js';
import { keepAliveTimers } from '../lib/timers.js';
import { CLIENT_TLS_FLAGS, clientTlsFromFiles } from '../lib/tls.js';
import { CoordinatorClient } from './coordinator-client.js';
import { CoordinatorError } from './errors.js';
import { LISTED_STATES, type GetAnswer, type ListAnswer, type OutcomeAnswer } from './types.js';

/** The transaction ended the other way from the one asked for. */
const EXIT_OTHER_OUTCOME = 3;
const EXIT_ERROR = 1;

/** The flags every tx command takes. */
const COMMON = {
  coordinators: { type: 'list', default: ['http://127.0.0.1:7070'], placeholder: 'URL,...', description: 'the coordinators, tried in turn' },
  json: { type: 'boolean', description: 'print one JSON document instead of text' },
  'call-timeout-ms': { type: 'int', default: 10_000, min: 1, max: 3_600_000, description: 'one attempt at one coordinator, in ms' },
  'retry-window-ms': { type: 'int', default: 30_000, min: 0, max: 3_600_000, description: 'how long to keep retrying and failing over, in ms' },
  'token-file': { type: 'string', placeholder: 'FILE', description: 'a file holding a bearer token (raft2pc token create --out), for coordinators with --auth-tokens' },
  ...CLIENT_TLS_FLAGS,
} as const;

type Common = {
  readonly coordinators: readonly string[];
  readonly 'call-timeout-ms': number;
  readonly 'retry-window-ms': number;
  readonly json: boolean;
  readonly 'trusted-ca-file'?: string | undefined;
  readonly 'cert-file'?: string | undefined;
  readonly 'key-file'?: string | undefined;
  readonly 'token-file'?: string | undefined;
};

/** The token in --token-file, trimmed; a file that cannot be read, or holds no token, is a usage error. */
function tokenFrom(file: string | undefined): { token?: string } {
  if (file === undefined) return {};
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError('--token-file', `cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const token = text.trim();
  if (!/^[\x21-\x7e]{1,512}$/.test(token)) throw new UsageError('--token-file', `${file} does not hold one token`);
  return { token };
}

/** Runs `f` with a client for the flags; a CoordinatorError is one line with its code, exit 1. */
async function withClient(values: Common, ctx: CommandContext, f: (c: CoordinatorClient) => Promise<number>): Promise<number> {
  let client: CoordinatorClient;
  try {
    // keepAliveTimers: a CLI's backoff waits are all that keeps it alive between attempts.
    const tls = clientTlsFromFiles({ caFile: values['trusted-ca-file'], certFile: values['cert-file'], keyFile: values['key-file'] });
    const token = tokenFrom(values['token-file']);
    client = new CoordinatorClient({ coordinators: values.coordinators, callTimeoutMs: values['call-timeout-ms'], retryWindowMs: values['retry-window-ms'], timers: keepAliveTimers, tls, ...token });
  } catch (e) {
    throw e instanceof CoordinatorError ? new UsageError('--coordinators', e.message) : e;
  }
  try {
    return await f(client);
  } catch (e) {
    if (!(e instanceof CoordinatorError)) throw e;
    ctx.err(`${ctx.prog}: ${e.code}${e.status === 0 ? '' : ` (${e.status})`}: ${e.message}`);
    return EXIT_ERROR;
  } finally {
    client.close();
  }
}

function oneTxId(positionals: readonly string[]): string {
  if (positionals.length !== 1) throw new UsageError('TX_ID', positionals.length === 0 ? 'required' : 'give exactly one transaction id');
  const id = positionals[0] as string;
  if (!isValidTxId(id)) throw new UsageError('TX_ID', `"${id}" is not a transaction id ([A-Za-z0-9][A-Za-z0-9._-]*, at most 128 characters)`);
  return id;
}

const list = defineCommand({
  name: 'list',
  summary: 'list transactions, ordered by id',
  flags: {
    ...COMMON,
    state: { type: 'enum', values: LISTED_STATES, description: 'only transactions in this state' },
    limit: { type: 'int', min: 1, max: 1_000, description: "at most this many (the coordinator's default: 100)" },
    after: { type: 'string', placeholder: 'POS', description: 'start after this position (the "next" of the previous page)' },
  },
  run: (values, _positionals, ctx) =>
    withClient(values, ctx, async (client) => {
      const filter = { ...(values.state === undefined ? {} : { state: values.state }), ...(values.limit === undefined ? {} : { limit: values.limit }), ...(values.after === undefined ? {} : { after: values.after }) };
      const page = await client.list(filter);
      if (values.json) ctx.out(JSON.stringify(page));
      else for (const line of listLines(page)) ctx.out(line);
      return 0;
    }),
});

const get = defineCommand({
  name: 'get',
  summary: 'show one transaction: state, participants, votes, decision, acks',
  args: 'TX_ID',
  flags: COMMON,
  run: (values, positionals, ctx) => {
    const id = oneTxId(positionals);
    return withClient(values, ctx, async (client) => {
      const view = await client.get(id);
      if (values.json) ctx.out(JSON.stringify(view));
      else for (const line of viewLines(view)) ctx.out(line);
      return 0;
    });
  },
});

const commit = defineCommand({
  name: 'commit',
  summary: 'commit a transaction (waits for the votes); exit 3 if it aborted',
  args: 'TX_ID',
  flags: COMMON,
  run: (values, positionals, ctx) => {
    const id = oneTxId(positionals);
    return withClient(values, ctx, async (client) => {
      const o = await client.commit(id);
      printOutcome(o, values.json, ctx);
      return o.outcome === 'committed' ? 0 : EXIT_OTHER_OUTCOME;
    });
  },
});

const abort = defineCommand({
  name: 'abort',
  summary: 'abort a transaction; exit 3 if it had committed already',
  args: 'TX_ID',
  flags: { ...COMMON, reason: { type: 'string', placeholder: 'TEXT', description: 'why (at most 1,024 characters), kept as the outcome reason' } },
  run: (values, positionals, ctx) => {
    const id = oneTxId(positionals);
    return withClient(values, ctx, async (client) => {
      try {
        printOutcome(await client.abort(id, values.reason === undefined ? {} : { reason: values.reason }), values.json, ctx);
        return 0;
      } catch (e) {
        if (!(e instanceof CoordinatorError) || e.code !== 'already_committed') throw e;
        ctx.out(values.json ? JSON.stringify({ id, outcome: 'committed' }) : `${id} committed already: not aborted`);
        return EXIT_OTHER_OUTCOME;
      }
    });
  },
});

export const txCommand = defineGroup({
  name: 'tx',
  summary: 'list, show, commit and abort 2PC transactions through the coordinators',
  flags: COMMON,
  details: 'Exit codes: 0 done, 1 error, 2 bad usage, 3 the transaction ended the other way.',
  subcommands: [list, get, commit, abort],
});

function printOutcome(o: OutcomeAnswer, json: boolean, ctx: CommandContext): void {
  if (json) {
    ctx.out(JSON.stringify(o));
    return;
  }
  const votes = Object.entries(o.votes).map(([name, v]) => `${name}=${v ?? '-'}`);
  ctx.out(`${o.id} ${o.outcome}${votes.length === 0 ? '' : ` (votes: ${votes.join(', ')})`}`);
  if (o.reason !== undefined) ctx.out(`reason: ${o.reason}`);
}

/** Rows under a header, each column as wide as its widest cell. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

const iso = (ms: number): string => new Date(ms).toISOString();

function listLines(page: ListAnswer): string[] {
  const rows = page.transactions.map((t) => [t.id, t.state, t.participants.join(','), iso(t.createdAt), iso(t.deadline), t.collected ? 'yes' : 'no']);
  const lines = rows.length === 0 ? ['no transactions'] : table(['ID', 'STATE', 'PARTICIPANTS', 'CREATED', 'DEADLINE', 'COLLECTED'], rows);
  if (page.next !== null) lines.push(`more: --after ${page.next}`);
  return lines;
}

function viewLines(v: GetAnswer): string[] {
  const lines = [
    `id:        ${v.id}`,
    `state:     ${v.state}${v.recordState === undefined ? '' : ` (record: ${v.recordState})`}`,
    `decision:  ${v.decision ?? '-'}`,
    `created:   ${iso(v.createdAt)}`,
    `deadline:  ${iso(v.deadline)}`,
    `collected: ${v.collected ? `yes, at ${iso(v.collectedAt ?? 0)}` : 'no'}`,
  ];
  if (v.metadata !== undefined) lines.push(`metadata:  ${JSON.stringify(v.metadata)}`);
  const rows = v.participants.map((p) => {
    const vote = v.votes[p.name];
    const ack = v.acks[p.name];
    // A collected transaction's compacted record keeps names, not urls.
    return [p.name, p.url === '' ? '-' : p.url, vote === undefined ? '-' : `${vote.vote}${vote.by === p.name ? '' : ` (by ${vote.by})`}`, ack === undefined ? '-' : iso(ack), vote?.reason ?? ''];
  });
  lines.push('', ...(rows.length === 0 ? ['no participants'] : table(['PARTICIPANT', 'URL', 'VOTE', 'ACKED', 'REASON'], rows)));
  return lines;
}

if (isEntryPoint(import.meta.url)) runMain(txCommand, process.argv.slice(2), 'raft2pc tx');
