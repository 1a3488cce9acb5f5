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
import { intFlag, parseFlags, stringFlag } from '../lib/args.js';
import { errorMessage, fetchJson } from './common/http.js';
import { DEFAULT_BASE_PORT, HOST, urlOf } from './supervisor/layout.js';

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: npm run transfer -- --from BANK:ACCOUNT --to BANK:ACCOUNT --amount N [--app URL | --base-port P] [--json]\n       npm run audit [-- --app URL | --base-port P] [--json]\n`);
  process.exit(2);
}

function account(text: string | undefined, flag: string): { bank: string; account: string } {
  const [bank, acct, extra] = (text ?? '').split(':');
  if (bank === undefined || bank === '' || acct === undefined || acct === '' || extra !== undefined) usage(`--${flag} must be BANK:ACCOUNT, e.g. bank-a:alice`);
  return { bank, account: acct };
}

const [command, ...rest] = process.argv.slice(2);
let values: Record<string, string | boolean | undefined>;
try {
  values = parseFlags({ from: { type: 'string' }, to: { type: 'string' }, amount: { type: 'string' }, app: { type: 'string' }, 'base-port': { type: 'string' }, json: { type: 'boolean' } }, rest).values;
} catch (e) {
  usage(e instanceof Error ? e.message : String(e));
}
const app = (stringFlag(values, 'app') ?? urlOf(HOST, intFlag(values, 'base-port', DEFAULT_BASE_PORT))).replace(/\/+$/, '');
const json = values['json'] === true;

async function main(): Promise<number> {
  if (command === 'transfer') {
    const amountText = stringFlag(values, 'amount') ?? usage('--amount is required');
    const body = { from: account(stringFlag(values, 'from'), 'from'), to: account(stringFlag(values, 'to'), 'to'), amount: Number(amountText) };
    const a = await fetchJson(`${app}/v1/transfers`, { method: 'POST', body, timeoutMs: 60_000 });
    if (json) console.log(JSON.stringify(a.body, null, 2));
    if (a.status !== 200) {
      if (!json) console.error(`transfer failed: ${errorMessage(a)}${a.status === 0 ? ` (is the demo running? npm start; app at ${app})` : ''}`);
      return 1;
    }
    const o = a.body as { txId: string; outcome: string; reason?: string; elapsedMs: number };
    if (!json) console.log(`${o.outcome}  ${body.from.bank}:${body.from.account} -> ${body.to.bank}:${body.to.account}  ${body.amount}  tx ${o.txId}  (${o.elapsedMs} ms)${o.reason === undefined ? '' : `\n  reason: ${o.reason}`}`);
    return o.outcome === 'committed' ? 0 : 1;
  }
  if (command === 'audit') {
    const a = await fetchJson(`${app}/v1/audit`, { method: 'POST', body: {}, timeoutMs: 60_000 });
    if (json) console.log(JSON.stringify(a.body, null, 2));
    if (a.status !== 200) {
      if (!json) console.error(`audit failed: ${errorMessage(a)}${a.status === 0 ? ` (is the demo running? npm start; app at ${app})` : ''}`);
      return 1;
    }
    const o = a.body as { txId: string; outcome: string; reason?: string; attempts: number; total?: number; banks?: { name: string; total: number; accounts: { id: string; balance: number }[] }[] };
    if (!json) {
      if (o.outcome !== 'committed') console.log(`aborted after ${o.attempts} attempt(s): ${o.reason ?? ''}`);
      else {
        for (const b of o.banks ?? []) console.log(`${b.name.padEnd(8)} ${b.accounts.map((x) => `${x.id}=${x.balance}`).join('  ')}   total ${b.total}`);
        console.log(`total across banks: ${o.total}  (read under locks in every bank at once, tx ${o.txId})`);
      }
    }
    return o.outcome === 'committed' ? 0 : 1;
  }
  return usage(command === undefined ? 'which command? transfer or audit' : `unknown command ${command}`);
}

process.exit(await main());
