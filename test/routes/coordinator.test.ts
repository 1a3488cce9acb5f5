/**
 * Goal: the coordinator's express app, in process under supertest, refuses
 * bad input with a 4xx carrying the documented error code (checked against
 * the app's own /openapi.json) and changes nothing in the store; answers
 * unknown routes and wrong methods with the JSON 404 body; refuses bodies
 * past its cap (64 KiB) with 413 body_too_large. Beside the real-process
 * tests of test/coordinator/service.test.ts, not instead of them.
 */
import request from 'supertest';
import type { Test } from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpenApiDocument } from '../../lib/openapi.js';
import { ResponseChecker } from '../openapi/support.js';
import { startCoordinator, storeContents, type CoordinatorUnderTest } from './support.js';

let c: CoordinatorUnderTest;
let checker: ResponseChecker;
/** An active transaction with participant `a`, for the calls that need one. */
let txId: string;

beforeAll(async () => {
  c = await startCoordinator();
  checker = new ResponseChecker((await request(c.app).get('/openapi.json').expect(200)).body as OpenApiDocument);
  txId = ((await request(c.app).post('/v1/transactions').send({ participants: [{ name: 'a', url: 'http://a' }] }).expect(201)).body as { id: string }).id;
});
afterAll(async () => {
  await c?.stop();
});

const part = (name: string, url = `http://${name}`): { name: string; url: string } => ({ name, url });
const many = (n: number): { name: string; url: string }[] => Array.from({ length: n }, (_, i) => part(`p${i}`));
const begin = (body: unknown): Test => request(c.app).post('/v1/transactions').send(body as object);

/** [what, the request, documented method and path, status, code] */
type BadCase = readonly [string, () => Test, string, string, number, string];

const badInput: readonly BadCase[] = [
  ['begin with an unknown field', () => begin({ colour: 'red' }), 'post', '/v1/transactions', 400, 'invalid_request'],
  ['begin with a non-integer timeout', () => begin({ timeoutMs: 'soon' }), 'post', '/v1/transactions', 400, 'invalid_request'],
  ['begin with a timeout out of range', () => begin({ timeoutMs: 5 }), 'post', '/v1/transactions', 400, 'invalid_timeout'],
  ['begin with a bad participant name', () => begin({ participants: [part('a b', 'http://a')] }), 'post', '/v1/transactions', 400, 'invalid_participant'],
  ['begin with a participant url that is not http', () => begin({ participants: [part('a', 'ftp://a')] }), 'post', '/v1/transactions', 400, 'invalid_participant'],
  ['begin naming a participant twice', () => begin({ participants: [part('a'), part('a')] }), 'post', '/v1/transactions', 400, 'duplicate_participant'],
  ['begin with more participants than configured', () => begin({ participants: many(33) }), 'post', '/v1/transactions', 400, 'too_many_participants'],
  ['begin with more participants than the protocol allows', () => begin({ participants: many(257) }), 'post', '/v1/transactions', 400, 'invalid_request'],
  ['begin with metadata over 16 KiB', () => begin({ metadata: { pad: 'x'.repeat(17_000) } }), 'post', '/v1/transactions', 400, 'invalid_argument'],
  ['begin with metadata that is not an object', () => begin({ metadata: [1] }), 'post', '/v1/transactions', 400, 'invalid_request'],
  ['begin with a JSON array body', () => begin([]), 'post', '/v1/transactions', 400, 'invalid_request'],
  ['begin with a body that is not JSON', () => request(c.app).post('/v1/transactions').set('content-type', 'application/json').send('{"timeoutMs": 1'), 'post', '/v1/transactions', 400, 'invalid_json'],
  ['begin with a bad Idempotency-Key', () => request(c.app).post('/v1/transactions').set('idempotency-key', 'k'.repeat(256)), 'post', '/v1/transactions', 400, 'invalid_idempotency_key'],
  ['enlist without a url', () => request(c.app).post(`/v1/transactions/${txId}/participants`).send({ name: 'b' }), 'post', '/v1/transactions/{id}/participants', 400, 'invalid_participant'], // the schema lets a name alone through (for a registry); without one the service wants the url
  ['enlist with a bad url', () => request(c.app).post(`/v1/transactions/${txId}/participants`).send(part('b', 'b.example')), 'post', '/v1/transactions/{id}/participants', 400, 'invalid_participant'],
  ['enlist into a bad id', () => request(c.app).post('/v1/transactions/.x/participants').send(part('b')), 'post', '/v1/transactions/{id}/participants', 400, 'invalid_tx_id'],
  ['enlist into an unknown transaction', () => request(c.app).post('/v1/transactions/nothing/participants').send(part('b')), 'post', '/v1/transactions/{id}/participants', 404, 'tx_not_found'],
  ['enlist a known name with another url', () => request(c.app).post(`/v1/transactions/${txId}/participants`).send(part('a', 'http://elsewhere')), 'post', '/v1/transactions/{id}/participants', 409, 'participant_conflict'],
  ['commit with a body', () => request(c.app).post(`/v1/transactions/${txId}/commit`).send({ force: true }), 'post', '/v1/transactions/{id}/commit', 400, 'invalid_request'],
  ['commit a path that does not decode', () => request(c.app).post('/v1/transactions/%E0%A4%A/commit'), 'post', '/v1/transactions/{id}/commit', 400, 'invalid_path'],
  ['abort with a reason over 1,024 characters', () => request(c.app).post(`/v1/transactions/${txId}/abort`).send({ reason: 'r'.repeat(1_025) }), 'post', '/v1/transactions/{id}/abort', 400, 'invalid_request'],
  ['list with a limit that is not a number', () => request(c.app).get('/v1/transactions?limit=ten'), 'get', '/v1/transactions', 400, 'invalid_request'],
  ['list with a limit past the maximum', () => request(c.app).get('/v1/transactions?limit=5000'), 'get', '/v1/transactions', 400, 'invalid_request'],
  ['list with an unknown parameter', () => request(c.app).get('/v1/transactions?owner=me'), 'get', '/v1/transactions', 400, 'invalid_request'],
  ['a body past 64 KiB', () => begin({ metadata: { pad: 'x'.repeat(64 * 1024) } }), 'post', '/v1/transactions', 413, 'body_too_large'],
];

describe('coordinator routes: bad input', () => {
  it.each(badInput)('%s: 4xx with the documented code, and the store is unchanged', async (_what, send, method, path, status, code) => {
    const before = await storeContents(c.store);
    checker.check(method, path, await send(), status, code);
    expect(await storeContents(c.store)).toEqual(before);
  });

  it('the same store check sees a change when a request makes one', async () => {
    const before = await storeContents(c.store);
    checker.check('post', '/v1/transactions/{id}/participants', await request(c.app).post(`/v1/transactions/${txId}/participants`).send(part('b')), 200);
    expect(await storeContents(c.store)).not.toEqual(before);
  });

  it('a body far past the cap is refused too, naming limitBytes', async () => {
    const res = checker.check('post', '/v1/transactions', await begin({ metadata: { pad: 'x'.repeat(1 << 20) } }), 413, 'body_too_large');
    expect(res.body).toMatchObject({ error: { limitBytes: 64 * 1024 } });
  });
});

describe('coordinator routes: no such route', () => {
  it.each([
    ['GET', '/v1/nothing'],
    ['DELETE', '/v1/transactions'],
    ['PUT', '/v1/transactions/t1/commit'],
    ['GET', '/v1/admin/faults'],
  ])('%s %s answers 404 not_found as JSON', async (method, path) => {
    const res = await request(c.app)[method.toLowerCase() as 'get' | 'delete' | 'put'](path);
    checker.checkUnrouted(res, 404, 'not_found');
    expect(res.headers['content-type']).toMatch(/^application\/json/);
  });
});
