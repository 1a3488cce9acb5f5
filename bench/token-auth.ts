/**
 * The per-request cost of the bearer-token check (lib/token-auth.ts), with
 * node:perf_hooks, no HTTP: what the coordinator's and participants'
 * admission adds to a request.
 *
 *     npx tsx bench/token-auth.ts [--tokens 1000] [--n 200000]
 *
 * Measured: the route's policy (the coordinator's route table), SHA-256 of
 * the presented token, the lookup and digest compare, the expiry; a refused
 * unknown token (which builds its error); and SHA-256 alone.
 */
import { hash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { AppError } from '../lib/errors.js';
import { Router } from '../lib/http.js';
import { authorize, hashToken, newToken, routePolicyLookup, TokenTable } from '../lib/token-auth.js';
import { COORDINATOR_ROUTE_POLICIES } from '../coordinator/service/openapi.js';

const { values } = parseArgs({ options: { tokens: { type: 'string', default: '1000' }, n: { type: 'string', default: '200000' } } });
const TOKENS = Number(values.tokens);
const N = Number(values.n);

function usPerCall(f: () => void): number {
  for (let i = 0; i < Math.min(N, 20_000); i++) f(); // warm up the JIT
  const t0 = performance.now();
  for (let i = 0; i < N; i++) f();
  return ((performance.now() - t0) * 1_000) / N;
}

const token = newToken();
const entries = Array.from({ length: TOKENS }, (_, i) => ({ name: `t${i}`, roles: ['client' as const], sha256: hashToken(`token-${i}`) }));
const table = new TokenTable([...entries, { name: 'app', roles: ['client'], sha256: hashToken(token), expiresAt: '2999-01-01T00:00:00Z' }]);
// The coordinator's route table, as registered (routes.ts), for the policy lookup.
const router = new Router();
for (const key of Object.keys(COORDINATOR_ROUTE_POLICIES)) {
  const [method, pattern] = key.split(' ') as [string, string];
  router.on(method, pattern, () => ({ status: 200, body: {} }));
}
const policyOf = routePolicyLookup(router, COORDINATOR_ROUTE_POLICIES);
const header = `Bearer ${token}`;
const wrong = `Bearer ${newToken()}`;
const now = Date.now();

const results = {
  check: usPerCall(() => void authorize(table, policyOf('POST', '/v1/transactions/t-123/commit'), header, now)),
  refusedUnknown: usPerCall(() => {
    try {
      authorize(table, 'client', wrong, now);
    } catch (e) {
      if (!(e instanceof AppError)) throw e;
    }
  }),
  policyOnly: usPerCall(() => void policyOf('POST', '/v1/transactions/t-123/commit')),
  sha256Only: usPerCall(() => void hash('sha256', token, 'buffer')),
};
console.log(JSON.stringify({ tokens: TOKENS + 1, n: N, usPerCall: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, Number(v.toFixed(2))])) }));
