/**
 * The demo from the command line, through the transfer app's API:
 *
 *   npm run transfer -- --from bank-a:alice --to bank-b:bob --amount 10
 *   npm run audit
 *
 * Both take --app http://127.0.0.1:7100 (or --base-port P, for a demo
 * started with one) and --json (print the app's answer as it is).
 * Exit status: 0 committed, 1 aborted or failed, 2 bad usage.
 */
import { defineCommand, defineGroup, isEntryPoint, runMain, type CommandContext } from '../lib/cli.js';
import { errorMessage, fetchJson, type JsonAnswer } from './common/http.js';
import { DEFAULT_BASE_PORT, HOST, urlOf } from './supervisor/layout.js';

const APP_FLAGS = {
  app: { type: 'string', placeholder: 'URL', description: "the transfer app's URL (default: the demo's, from --base-port)" },
  'base-port': { type: 'int', default: DEFAULT_BASE_PORT, min: 1, max: 65_535, description: 'the base port the demo was started with' },
  json: { type: 'boolean', description: "print the app's answer as it is" },
} as const;

/** Calls longer than this are given up (a transfer's own timeouts are far shorter). */
const CALL_TIMEOUT_MS = 60_000;

function appUrl(values: { readonly app: string | undefined; readonly 'base-port': number }): string {
  return (values.app ?? urlOf(HOST, values['base-port'])).replace(/\/+$/, '');
}

function parseAccountRef(text: string): { bank: string; account: string } {
  const [bank, account, extra] = text.split(':');
  if (bank === undefined || bank === '' || account === undefined || account === '' || extra !== undefined) throw new Error('want BANK:ACCOUNT, e.g. bank-a:alice');
  return { bank, account };
}

/** Non-200: say why (and how to start the demo when nothing answered); true when it failed. */
function failed(a: JsonAnswer, what: string, app: string, json: boolean, ctx: CommandContext): boolean {
  if (a.status === 200) return false;
  if (!json) ctx.err(`${what} failed: ${errorMessage(a)}${a.status === 0 ? ` (is the demo running? npm start; app at ${app})` : ''}`);
  return true;
}

const transferCommand = defineCommand({
  name: 'transfer',
  summary: 'move an amount between two accounts, in one transaction across banks',
  flags: {
    ...APP_FLAGS,
    from: { type: 'string', required: true, parse: parseAccountRef, placeholder: 'BANK:ACCOUNT', description: 'the account debited' },
    to: { type: 'string', required: true, parse: parseAccountRef, placeholder: 'BANK:ACCOUNT', description: 'the account credited' },
    amount: { type: 'int', required: true, min: 1, description: 'how much' },
  },
  async run(values, _positionals, ctx) {
    const app = appUrl(values);
    const body = { from: values.from, to: values.to, amount: values.amount };
    const a = await fetchJson(`${app}/v1/transfers`, { method: 'POST', body, timeoutMs: CALL_TIMEOUT_MS });
    if (values.json) ctx.out(JSON.stringify(a.body, null, 2));
    if (failed(a, 'transfer', app, values.json, ctx)) return 1;
    const o = a.body as { txId: string; outcome: string; reason?: string; elapsedMs: number };
    if (!values.json) ctx.out(`${o.outcome}  ${body.from.bank}:${body.from.account} -> ${body.to.bank}:${body.to.account}  ${body.amount}  tx ${o.txId}  (${o.elapsedMs} ms)${o.reason === undefined ? '' : `\n  reason: ${o.reason}`}`);
    return o.outcome === 'committed' ? 0 : 1;
  },
});

interface AuditAnswer {
  txId: string;
  outcome: string;
  reason?: string;
  attempts: number;
  total?: number;
  banks?: { name: string; total: number; accounts: { id: string; balance: number }[] }[];
}

const auditCommand = defineCommand({
  name: 'audit',
  summary: 'read every balance in every bank at once, under locks, and add them up',
  flags: APP_FLAGS,
  async run(values, _positionals, ctx) {
    const app = appUrl(values);
    const a = await fetchJson(`${app}/v1/audit`, { method: 'POST', body: {}, timeoutMs: CALL_TIMEOUT_MS });
    if (values.json) ctx.out(JSON.stringify(a.body, null, 2));
    if (failed(a, 'audit', app, values.json, ctx)) return 1;
    const o = a.body as AuditAnswer;
    if (!values.json) {
      if (o.outcome !== 'committed') ctx.out(`aborted after ${o.attempts} attempt(s): ${o.reason ?? ''}`);
      else {
        for (const b of o.banks ?? []) ctx.out(`${b.name.padEnd(8)} ${b.accounts.map((x) => `${x.id}=${x.balance}`).join('  ')}   total ${b.total}`);
        ctx.out(`total across banks: ${o.total}  (read under locks in every bank at once, tx ${o.txId})`);
      }
    }
    return o.outcome === 'committed' ? 0 : 1;
  },
});

export const demoCliCommand = defineGroup({
  name: 'demo-cli',
  summary: 'transfers and audits against a running demo (npm run transfer, npm run audit)',
  details: 'exit status: 0 committed, 1 aborted or failed, 2 bad usage',
  flags: APP_FLAGS,
  subcommands: [transferCommand, auditCommand],
});

if (isEntryPoint(import.meta.url)) runMain(demoCliCommand);
