/**
 * Malformed requests, drawn from a seeded Random so a failing seed replays:
 * broken JSON, wrong types, bodies past the cap, deep nesting, odd content
 * types and encodings, odd methods and paths. Every case is malformed on
 * purpose (an object body always carries a field no schema allows), so no
 * case may change anything.
 */
import type { SeededRandom as Random } from '../../lib/random.js';
import type { RouteUnderTest } from './support.js';

export interface FuzzCase {
  readonly kind: string;
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Buffer;
}

const JSON_TYPE = 'application/json';

const BROKEN_JSON = [
  '{',
  '{"txId":',
  "{'a':1}",
  '{"a":1,}',
  '[1,2',
  'NaN',
  'undefined',
  '{"a":1}garbage',
  '{"a" 1}',
  '\u0000',
  '{"a":"\\x41"}',
  '{"a":01}',
  '"unterminated',
  '1e99999999',
  '{"__proto__":',
  '}{',
];

const ODD_TYPES = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=----x',
  'application/json; charset=utf-16',
  'application/json; charset=iso-8859-1',
  'application/xml',
  'application/octet-stream',
  '*/*',
  'application/json, text/plain',
  'APPLICATION/JSON; charset="utf-8"; x=y',
  '',
];

const ODD_ENCODINGS = ['gzip', 'deflate', 'br', 'x-unknown', 'gzip, gzip', 'chunked'];
const ODD_METHODS = ['PATCH', 'OPTIONS', 'TRACE', 'PROPFIND', 'HEAD'];
const FIELD_NAMES = ['txId', 'work', 'decision', 'deadline', 'value', 'timeoutMs', 'participants', 'metadata', 'reason', 'lease', 'ttlSeconds', 'ops', 'compare', 'id', 'from', 'to', 'amount', 'action', 'blockedUrls'];

function pick<T>(r: Random, items: readonly T[]): T {
  return items[r.int(items.length)] as T;
}

/** A JSON value of a random kind, at most `depth` levels. */
function randomValue(r: Random, depth: number): unknown {
  const kinds = depth <= 0 ? 5 : 7;
  switch (r.int(kinds)) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return pick(r, [0, -1, 1.5, 2 ** 53 + 2, -1e308, 1e-300]);
    case 3:
      return pick(r, ['', 'x', '\u202e', '\ud800', '../../etc/passwd', 'a'.repeat(300), '<script>', '%00']);
    case 4:
      return pick(r, [[], {}]);
    case 5:
      return Array.from({ length: r.int(4) }, () => randomValue(r, depth - 1));
    default:
      return randomObject(r, depth - 1);
  }
}

/** A top-level body that is not an object: no route takes one. */
function nonObject(r: Random): unknown {
  const v = randomValue(r, 2);
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? [v] : v;
}

/** An object of known field names with values of any type, plus one field no schema allows. */
function randomObject(r: Random, depth: number): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = r.int(4); i > 0; i--) o[pick(r, FIELD_NAMES)] = randomValue(r, depth);
  o[`fuzz_${r.int(1_000)}`] = randomValue(r, 0);
  return o;
}

function jsonCase(kind: string, route: RouteUnderTest, body: string | Buffer, type = JSON_TYPE): FuzzCase {
  return { kind, method: route.method, path: route.path, headers: type === '' ? {} : { 'content-type': type }, body: Buffer.isBuffer(body) ? body : Buffer.from(body) };
}

function deepBody(r: Random, maxBodyBytes: number): string {
  const depth = Math.min(Math.floor(maxBodyBytes / 12), 101 + r.int(100_000));
  if (r.chance(0.5)) return `{"fuzz":1,"work":${'['.repeat(depth)}${']'.repeat(depth)}}`;
  return `{"txId":"t-deep","work":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)},"metadata":${'['.repeat(depth)}${']'.repeat(depth)},"fuzz":1}`;
}

function hugeBody(r: Random, maxBodyBytes: number): string {
  return `{"fuzz":"${'x'.repeat(maxBodyBytes + 1 + r.int(64 * 1024))}"}`;
}

function oddBytes(r: Random): Buffer {
  const pickOne = r.int(4);
  if (pickOne === 0) return Buffer.from([0xef, 0xbb, 0xbf, ...Buffer.from('{"fuzz":1}')]); // a BOM
  if (pickOne === 1) return Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]); // invalid UTF-8
  if (pickOne === 2) return Buffer.from('{"fuzz":1}', 'utf16le');
  return Buffer.from(Array.from({ length: 1 + r.int(256) }, () => r.int(256)));
}

function oddPath(r: Random, route: RouteUnderTest): string {
  return pick(r, [`${route.path}%`, `${route.path}/%E0%A4%A`, `/${'..%2F'.repeat(5)}etc/passwd`, `${route.path}?${'a=1&'.repeat(200)}`, `//${route.path}`, `${route.path}%00`, `/v1/kv/${'%F0%9F%92%A9'.repeat(30)}`, '*', `${route.path}?limit=-1&state=%ZZ`]);
}

/** One malformed request on `route`. */
export function fuzzCase(r: Random, route: RouteUnderTest, maxBodyBytes: number): FuzzCase {
  const roll = r.int(100);
  if (roll < 25) return jsonCase('broken-json', route, pick(r, BROKEN_JSON));
  if (roll < 50) return jsonCase('wrong-types', route, JSON.stringify(r.chance(0.3) ? nonObject(r) : randomObject(r, 3)));
  if (roll < 55) return jsonCase('huge', route, hugeBody(r, maxBodyBytes));
  if (roll < 62) return jsonCase('deep', route, deepBody(r, maxBodyBytes));
  if (roll < 72) return jsonCase('odd-type', route, JSON.stringify(randomObject(r, 1)), pick(r, ODD_TYPES));
  if (roll < 80) return { ...jsonCase('odd-encoding', route, JSON.stringify(randomObject(r, 1))), headers: { 'content-type': JSON_TYPE, 'content-encoding': pick(r, ODD_ENCODINGS) } };
  if (roll < 87) return jsonCase('odd-bytes', route, oddBytes(r), pick(r, [JSON_TYPE, 'application/json; charset=utf-8']));
  if (roll < 93) return { ...jsonCase('odd-method', route, '{"fuzz":1}'), method: pick(r, ODD_METHODS) };
  return { ...jsonCase('odd-path', route, '{"fuzz":1}'), path: oddPath(r, route) };
}
