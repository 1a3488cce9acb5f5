/**
 * Generators of malformed requests for the bad-input fuzz: seeded, so a
 * failing run replays from its seed. Most requests are wrong on purpose (in
 * their JSON, types, fields, sizes, paths, methods, headers or HTTP framing);
 * about one in ten is a deliberately valid write whose result must be there
 * at the end.
 */
import { connect } from 'node:net';
import type { SeededRandom } from '../../../lib/random.js';
import { kvPath } from './http.js';

const KIB = 1024;
const MIB = 1024 * KIB;

const METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'FOO', 'PROPFIND'] as const;
/** Methods node's HTTP parser refuses itself (a bare 400) before any route runs. */
export const PARSER_REJECTED_METHODS = new Set(['FOO']);

export interface FuzzRequest {
  readonly n: number;
  readonly node: number;
  readonly method: string;
  readonly path: string;
  readonly body: string | Uint8Array | undefined;
  readonly headers: Record<string, string>;
  /** Keys this request could write if the store (wrongly or rightly) accepted it. */
  readonly keys: readonly string[];
  /** A deliberately valid write whose result must be there at the end. */
  readonly valid?: { readonly key: string; readonly value: string };
}

function randomString(rnd: SeededRandom, max: number): string {
  const alphabet = ['a', 'Z', '0', '/', ':', '%', '"', '\\', ' ', '\n', 'é', '☃', '😀', '\ud800', '\u0000', '{', '}', '?', '&', '='];
  let s = '';
  const n = rnd.int(max + 1);
  for (let i = 0; i < n; i++) s += rnd.pick(alphabet);
  return s;
}

function randomJsonValue(rnd: SeededRandom, depth: number): unknown {
  switch (rnd.int(depth > 3 ? 6 : 9)) {
    case 0:
      return null;
    case 1:
      return rnd.chance(0.5);
    case 2:
      return rnd.pick([0, -1, 1.5, 1e308, -0, 2 ** 53 + 1, 42]);
    case 3:
    case 4:
      return randomString(rnd, 12);
    case 5:
      return 'x'.repeat(rnd.pick([0, 1, 1025, 4096]));
    case 6:
      return Array.from({ length: rnd.int(4) }, () => randomJsonValue(rnd, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      const fields = ['value', 'expected', 'lease', 'key', 'type', 'compare', 'success', 'failure', 'op', 'target', 'prefix', 'limit', 'junk'];
      for (let i = rnd.int(4); i > 0; i--) o[rnd.pick(fields)] = randomJsonValue(rnd, depth + 1);
      return o;
    }
  }
}

/** A txn with some valid-looking writes and at least one thing wrong with it. */
function brokenTxn(rnd: SeededRandom, key: (i: number) => string): { body: unknown; keys: string[] } {
  const keys: string[] = [];
  const success: unknown[] = [];
  for (let i = rnd.int(4); i >= 0; i--) {
    const k = key(i);
    keys.push(k);
    success.push({ type: 'put', key: k, value: `v${i}` });
  }
  const poison = rnd.int(7);
  const bad: unknown = [
    { type: 'put', key: key(99), value: 'v'.repeat(MIB + 1) },
    { type: 'put', key: '', value: 'x' },
    { type: 'put', key: key(98) },
    { type: 'delete', key: keys[0] },
    { type: 'frobnicate', key: key(97) },
    { type: 'range', prefix: 'fz/', limit: -3 },
    { type: 'put', key: key(96), value: 'x', lease: 'nope' },
  ][poison];
  success.splice(rnd.int(success.length + 1), 0, bad);
  const compare = rnd.chance(0.5) ? [] : [{ key: key(0), target: rnd.pick(['version', 'value', 'bogus']), op: rnd.pick(['=', '!=', '<>']), value: rnd.pick([0, 'x', 1.25]) }];
  return { body: rnd.chance(0.5) ? { compare, success, failure: success } : { compare, success }, keys };
}

export function fuzzRequest(rnd: SeededRandom, n: number, nodes: number): FuzzRequest {
  const node = rnd.int(nodes);
  const key = (i: number): string => `fz/bad/${n}/${i}`;
  const headers: Record<string, string> = {};
  if (rnd.chance(0.3)) headers['content-type'] = rnd.pick(['text/plain', 'application/json; charset=utf-16', 'multipart/form-data', 'application/x-www-form-urlencoded']);
  if (rnd.chance(0.2)) headers['request-id'] = rnd.pick(['', 'x', 'x:0', 'x:-5', ':', 'a:b', `fz${n}:${rnd.int(1000) + 1}`, 'a'.repeat(200) + ':1']);
  if (rnd.chance(0.05)) headers['content-encoding'] = 'gzip';

  // About one request in ten is a deliberately valid write: it must land.
  if (rnd.chance(0.1)) {
    const k = `fz/ok/${n}`;
    const value = `ok ${n} ${randomString(rnd, 8).replace(/[\ud800-\udfff]/g, '')}`;
    return { n, node, method: 'PUT', path: kvPath(k), body: JSON.stringify({ value }), headers: {}, keys: [k], valid: { key: k, value } };
  }

  // Oversize bodies (shape 8) are rare: each is megabytes.
  const roll = rnd.int(100);
  const shape = roll < 3 ? 8 : roll % 10 === 8 ? 9 : roll % 10;
  let method: string = rnd.pick(METHODS);
  let path: string;
  let body: string | Uint8Array | undefined;
  let keys: string[] = [key(0)];
  switch (shape) {
    case 0: {
      // Random JSON at a write route.
      method = rnd.pick(['PUT', 'POST']);
      path = method === 'PUT' ? kvPath(key(0)) : kvPath(key(0), '/cas');
      body = JSON.stringify(randomJsonValue(rnd, 0));
      break;
    }
    case 1: {
      // Nearly valid bodies with one field wrong.
      method = rnd.pick(['PUT', 'POST']);
      path = method === 'PUT' ? kvPath(key(0)) : kvPath(key(0), '/cas');
      const b: Record<string, unknown> = method === 'PUT' ? { value: 'x' } : { expected: null, value: 'x' };
      const field = rnd.pick(Object.keys(b));
      const mutation = rnd.int(4);
      if (mutation === 0) delete b[field];
      else if (mutation === 1) b[field] = rnd.pick([1, true, [], {}, 1.5]);
      else if (mutation === 2) b['extra'] = randomJsonValue(rnd, 2);
      else b['lease'] = rnd.pick([0, -1, 'x', 1.5, null, 2 ** 60]);
      body = JSON.stringify(b);
      break;
    }
    case 2: {
      // Truncated or garbled JSON.
      method = rnd.pick(['PUT', 'POST']);
      path = method === 'PUT' ? kvPath(key(0)) : rnd.pick([kvPath(key(0), '/cas'), '/v1/txn']);
      const text = JSON.stringify({ value: `v${n}`, expected: null });
      body = rnd.chance(0.5) ? text.slice(0, rnd.int(text.length)) : text.replace('"', rnd.pick(["'", '', '""', '\u0000']));
      break;
    }
    case 3: {
      // Random bytes.
      method = rnd.pick(['PUT', 'POST', 'DELETE', 'GET']);
      path = rnd.pick([kvPath(key(0)), kvPath(key(0), '/cas'), '/v1/txn']);
      body = Uint8Array.from({ length: rnd.int(200) + 1 }, () => rnd.int(256));
      break;
    }
    case 4: {
      const t = brokenTxn(rnd, key);
      method = 'POST';
      path = '/v1/txn';
      body = JSON.stringify(t.body);
      keys = t.keys;
      break;
    }
    case 5: {
      // Bad query parameters on reads.
      method = 'GET';
      const q = rnd.pick(['limit=0', 'limit=-2', 'limit=x', 'limit=99999', 'consistency=maybe', 'consistency=', 'prefix=%ZZ', 'after=%E0%A4%A', `prefix=${'p'.repeat(1100)}`]);
      path = rnd.chance(0.5) ? `/v1/kv?${q}` : `${kvPath(key(0))}?${q}`;
      break;
    }
    case 6: {
      // Odd paths.
      path = rnd.pick(['/', '//', '/v1', '/v1/', '/v1/kv/', '/v1//kv//x', '/%zz', '/v1/kv/%ff%fe', '/../../etc/passwd', '/v1/kv/fz/bad/%2e%2e', '/v1/watch', '/v1/leases', '/v1/members', `/v1/kv/${'k'.repeat(1100)}`, '/v1/kv/a?b=%',
        // Other routes with bad parameters (never a valid watch: that would stream forever).
        '/v1/watch?prefix=fz%2F&key=x', '/v1/watch?prefix=fz%2F&fromRevision=abc', '/v1/watch?key=fz%2Fx&fromRevision=0', '/v1/leases/abc/keepalive', '/v1/leases/0', '/v1/leases/-1', '/v1/members/%00', '/v1/members/no-such-member/promote']);
      if (method !== 'GET' && method !== 'HEAD' && rnd.chance(0.5)) body = JSON.stringify({ value: 'x' });
      keys = [];
      break;
    }
    case 7: {
      // Unknown methods on real routes.
      method = rnd.pick(['PATCH', 'OPTIONS', 'FOO', 'PROPFIND', 'HEAD']);
      path = rnd.pick([kvPath(key(0)), kvPath(key(0), '/cas'), '/v1/txn', '/v1/kv', '/v1/status']);
      if (method !== 'HEAD' && rnd.chance(0.5)) body = JSON.stringify({ value: 'x' });
      break;
    }
    case 8: {
      // Oversize values and bodies (few of them: they are big).
      method = 'PUT';
      path = kvPath(key(0));
      const size = rnd.chance(0.3) ? 2 * MIB + 10 : MIB + 1;
      body = JSON.stringify({ value: 'o'.repeat(size) });
      break;
    }
    default: {
      // Keys the store must refuse: too long, or empty segments only.
      method = rnd.pick(['PUT', 'POST']);
      const k = rnd.chance(0.5) ? `fz/bad/${n}/${'k'.repeat(1030)}` : `fz/bad/${n}/${'é'.repeat(520)}`;
      path = method === 'PUT' ? kvPath(k) : kvPath(k, '/cas');
      body = JSON.stringify(method === 'PUT' ? { value: 'x' } : { expected: null, value: 'x' });
      keys = [k];
    }
  }
  if (method === 'GET' || method === 'HEAD') body = undefined;
  return { n, node, method, path, body, headers, keys };
}

/** Garbage at the HTTP level, over a raw socket; resolves with the status line's code, or 0 when the server just closed. */
export function rawRequest(port: number, payload: string, abortAfterMs?: number): Promise<number> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    let data = '';
    const status = (): number => Number(/^HTTP\/1\.[01] (\d{3})/.exec(data)?.[1] ?? 0);
    sock.setTimeout(5_000, () => sock.destroy());
    sock.on('data', (d) => {
      data += d.toString('latin1');
      // The status line is all we need; do not wait for a keep-alive connection to close.
      if (status() !== 0) sock.destroy();
    });
    sock.on('close', () => resolve(status()));
    sock.on('error', () => undefined);
    sock.write(payload);
    if (abortAfterMs !== undefined) setTimeout(() => sock.destroy(), abortAfterMs);
  });
}

export const RAW_PAYLOADS = [
  'GARBAGE\r\n\r\n',
  'GET /v1/status HTTP/9.9\r\n\r\n',
  'PUT /v1/kv/fz/raw HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}',
  'PUT /v1/kv/fz/raw HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{"a":1',
  'PUT /v1/kv/fz/raw HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
  'PUT /v1/kv/fz/raw HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n',
  `GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
];
