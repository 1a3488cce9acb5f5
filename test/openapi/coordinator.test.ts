/**
 * Goal: the coordinator's OpenAPI document (coordinator/service/openapi.ts)
 * says what the server does. Every route the express app registers is
 * documented and every documented operation is a route (with and without
 * the fault routes); the app serves the document at /openapi.json, with
 * /v1/transactions; and the answers to a representative set of requests,
 * successes and errors, match the schema documented for their status.
 * In process: CoordinatorService over a MemoryTxStore, supertest on its app.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpenApiDocument } from '../../lib/openapi.js';
import { coordinatorOpenApi } from '../../coordinator/service/openapi.js';
import { startCoordinator, type CoordinatorUnderTest } from '../routes/support.js';
import { documentedRoutes, expectWellFormed, expressRoutes, ResponseChecker } from './support.js';

let c: CoordinatorUnderTest;
let doc: OpenApiDocument;
let checker: ResponseChecker;

beforeAll(async () => {
  c = await startCoordinator();
  doc = (await request(c.app).get('/openapi.json').expect(200).expect('content-type', /application\/json/)).body as OpenApiDocument;
  checker = new ResponseChecker(doc);
});
afterAll(async () => {
  await c?.stop();
});

const parts = (...names: string[]): { name: string; url: string }[] => names.map((name) => ({ name, url: `http://${name}` }));

describe('the coordinator document', () => {
  it('is served at /openapi.json, well formed, with /v1/transactions', () => {
    expectWellFormed(doc);
    expect(Object.keys(doc.paths['/v1/transactions'] ?? {}).sort()).toEqual(['get', 'post']);
    expect(doc).toEqual(coordinatorOpenApi(c.service.config, { faultRoutes: false }));
  });

  it('documents every route the app registers, and only those; the fault routes exactly when served', async () => {
    expect(documentedRoutes(doc)).toEqual(expressRoutes(c.app));
    const withFaults = await startCoordinator({}, true);
    try {
      const served = (await request(withFaults.app).get('/openapi.json').expect(200)).body as OpenApiDocument;
      expect(expressRoutes(withFaults.app)).toContain('PUT /v1/admin/faults');
      expect(documentedRoutes(served)).toEqual(expressRoutes(withFaults.app));
    } finally {
      await withFaults.stop();
    }
  });
});

describe('coordinator answers match the document', () => {
  const http = () => request(c.app);

  it('begin, enlist, commit, abort, get and list, and their errors', async () => {
    const begun = checker.check('post', '/v1/transactions', await http().post('/v1/transactions').send({ participants: parts('a') }), 201);
    const id = (begun.body as { id: string }).id;
    checker.check('post', '/v1/transactions', await http().post('/v1/transactions').set('idempotency-key', 'k1'), 201);
    checker.check('post', '/v1/transactions', await http().post('/v1/transactions').send({ timeoutMs: 5 }), 400, 'invalid_timeout');
    checker.check('post', '/v1/transactions', await http().post('/v1/transactions').set('idempotency-key', 'a b'), 400, 'invalid_idempotency_key');
    checker.check('post', '/v1/transactions/{id}/participants', await http().post(`/v1/transactions/${id}/participants`).send(parts('b')[0]), 200);
    checker.check('post', '/v1/transactions/{id}/participants', await http().post(`/v1/transactions/${id}/participants`).send({ name: 'b', url: 'http://elsewhere' }), 409, 'participant_conflict');
    checker.check('post', '/v1/transactions/{id}/participants', await http().post('/v1/transactions/nothing/participants').send(parts('b')[0]), 404, 'tx_not_found');
    checker.check('get', '/v1/transactions/{id}', await http().get(`/v1/transactions/${id}`), 200);
    const outcome = checker.check('post', '/v1/transactions/{id}/commit', await http().post(`/v1/transactions/${id}/commit`), 200);
    expect(outcome.body).toEqual({ id, outcome: 'committed', votes: { a: 'yes', b: 'yes' } });
    checker.check('post', '/v1/transactions/{id}/participants', await http().post(`/v1/transactions/${id}/participants`).send(parts('z')[0]), 409, 'tx_not_active');
    checker.check('post', '/v1/transactions/{id}/abort', await http().post(`/v1/transactions/${id}/abort`), 409, 'already_committed');
    checker.check('post', '/v1/transactions/{id}/commit', await http().post('/v1/transactions/nothing/commit'), 404, 'tx_not_found');
    checker.check('get', '/v1/transactions/{id}', await http().get(`/v1/transactions/${id}`), 200);
    checker.check('get', '/v1/transactions/{id}', await http().get('/v1/transactions/nothing'), 404, 'tx_not_found');
    checker.check('get', '/v1/transactions/{id}', await http().get('/v1/transactions/-bad'), 400, 'invalid_tx_id');

    const other = (await http().post('/v1/transactions').send({ participants: parts('a'), metadata: { why: 'test' } })).body as { id: string };
    const aborted = checker.check('post', '/v1/transactions/{id}/abort', await http().post(`/v1/transactions/${other.id}/abort`).send({ reason: 'changed my mind' }), 200);
    expect(aborted.body).toMatchObject({ outcome: 'aborted', reason: expect.stringContaining('changed my mind') });
    checker.check('get', '/v1/transactions/{id}', await http().get(`/v1/transactions/${other.id}`), 200);

    const listed = checker.check('get', '/v1/transactions', await http().get('/v1/transactions?limit=1'), 200);
    expect(listed.body).toMatchObject({ transactions: [{}], next: expect.any(String) });
    checker.check('get', '/v1/transactions', await http().get('/v1/transactions?state=committed'), 200);
    checker.check('get', '/v1/transactions', await http().get('/v1/transactions?state=lost'), 400, 'invalid_request');
    checker.check('get', '/v1/transactions', await http().get('/v1/transactions?limit=0'), 400, 'invalid_request');
  });

  it('health, readiness, metrics, and the shared error body', async () => {
    checker.check('get', '/healthz', await http().get('/healthz'), 200);
    expect(checker.check('get', '/readyz', await http().get('/readyz'), 200).body).toMatchObject({ ready: true });
    checker.check('get', '/metrics', await http().get('/metrics'), 200);
    checker.check('post', '/v1/transactions', await http().post('/v1/transactions').set('content-type', 'application/json').send('{"participants":'), 400, 'invalid_json');
    checker.check('post', '/v1/transactions', await http().post('/v1/transactions').send({ metadata: { pad: 'x'.repeat(70_000) } }), 413, 'body_too_large');
    checker.check('get', '/v1/transactions/{id}', await http().get('/v1/transactions/%E0%A4%A'), 400, 'invalid_path');
    checker.checkUnrouted(await http().get('/v1/nothing'), 404, 'not_found');
    checker.checkUnrouted(await http().delete('/v1/transactions'), 404, 'not_found');
  });
});
