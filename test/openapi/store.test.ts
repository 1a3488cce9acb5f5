/**
 * Goal: the store's OpenAPI document (store/api/openapi.ts) says what the
 * server does. Every route the router registers is documented and every
 * documented operation is a route (with and without the fault routes); the
 * node serves the document at /openapi.json; and the answers to a
 * representative set of requests, successes and errors, match the schema
 * documented for their status. In process: a real StoreNode on in-memory
 * storage (test/store2/support/memory-cluster.ts), its StoreApi behind the
 * node:http listener that supertest drives.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeListener } from '../../lib/http.js';
import type { OpenApiDocument } from '../../lib/openapi.js';
import { StoreApi } from '../../store/api/api.js';
import { storeOpenApi } from '../../store/api/openapi.js';
import { defaultNodeConfig } from '../../store/node/config.js';
import { MemoryCluster } from '../store2/support/memory-cluster.js';
import { documentedRoutes, expectWellFormed, ResponseChecker, routerKeys } from './support.js';

let cluster: MemoryCluster;
let api: StoreApi;
let listener: ReturnType<typeof nodeListener>;
let doc: OpenApiDocument;
let checker: ResponseChecker;

beforeAll(async () => {
  cluster = await MemoryCluster.start(1);
  await cluster.ready();
  api = cluster.apis.get('n1') as StoreApi;
  listener = nodeListener(api, defaultNodeConfig.maxBodyBytes);
  doc = (await request(listener).get('/openapi.json').expect(200)).body as OpenApiDocument;
  checker = new ResponseChecker(doc);
});
afterAll(async () => {
  await cluster?.stop();
});

describe('the store document', () => {
  it('is served at /openapi.json, well formed, and equal to the one built from the node config', () => {
    expectWellFormed(doc);
    expect(doc).toEqual(storeOpenApi({ maxBodyBytes: defaultNodeConfig.maxBodyBytes, faultRoutes: false }));
  });

  it('documents every route the router registers, and only those', () => {
    expect(documentedRoutes(doc)).toEqual(routerKeys(api.router.routeTable()));
  });

  it('documents the fault routes exactly when the node serves them', () => {
    const node = cluster.nodes.get('n1');
    if (node === undefined) throw new Error('no node');
    const transport = { fault: undefined, droppedMessages: () => 0 };
    const hooked = node.onApplied;
    const withFaults = new StoreApi({ node, forwarder: cluster.requester(), transport, faultRoutes: true });
    try {
      const served = withFaults.router.routeTable();
      expect(served.map((r) => `${r.method} ${r.pattern}`)).toContain('PUT /v1/admin/faults');
      expect(documentedRoutes(storeOpenApi({ maxBodyBytes: 1, faultRoutes: true }))).toEqual(routerKeys(served));
    } finally {
      withFaults.close();
      node.onApplied = hooked; // the cluster's API keeps its watches fed
    }
  });
});

describe('store answers match the document', () => {
  const http = () => request(listener);

  it('status, health, metrics, members and leases', async () => {
    checker.check('get', '/v1/status', await http().get('/v1/status'), 200);
    checker.check('get', '/healthz', await http().get('/healthz'), 200);
    expect(checker.check('get', '/readyz', await http().get('/readyz'), 200).body).toMatchObject({ ready: true, id: 'n1' });
    checker.check('get', '/metrics', await http().get('/metrics'), 200);
    checker.check('get', '/v1/members', await http().get('/v1/members'), 200);
    const granted = checker.check('post', '/v1/leases', await http().post('/v1/leases').send({ ttlMs: 60_000 }), 200);
    const id = (granted.body as { id: number }).id;
    checker.check('get', '/v1/leases', await http().get('/v1/leases'), 200);
    checker.check('post', '/v1/leases/{id}/keepalive', await http().post(`/v1/leases/${id}/keepalive`), 200);
    checker.check('post', '/v1/leases', await http().post('/v1/leases').send({ ttlMs: 60_000, id }), 409, 'lease_exists');
    checker.check('post', '/v1/leases', await http().post('/v1/leases').send({ ttlMs: 0 }), 400, 'invalid_request');
    checker.check('post', '/v1/leases/{id}/keepalive', await http().post('/v1/leases/abc/keepalive'), 400, 'invalid_lease_id');
    checker.check('delete', '/v1/leases/{id}', await http().delete(`/v1/leases/${id}`), 200);
    checker.check('delete', '/v1/leases/{id}', await http().delete(`/v1/leases/${id}`), 404, 'lease_not_found');
    checker.check('post', '/v1/leases/{id}/keepalive', await http().post(`/v1/leases/${id}/keepalive`), 404, 'lease_not_found');
    checker.check('post', '/v1/members/{id}/promote', await http().post('/v1/members/nobody/promote'), 404, 'member_not_found');
    checker.check('delete', '/v1/members/{id}', await http().delete('/v1/members/nobody'), 404, 'member_not_found');
    checker.check('post', '/v1/members', await http().post('/v1/members').send({ id: 'n9', clientUrl: 'http://n9', peerAddress: 'nowhere' }), 400, 'invalid_request');
    checker.check('post', '/v1/leader/transfer', await http().post('/v1/leader/transfer').send({ to: 'nobody' }), 400, 'invalid_target');
  });

  it('key-value reads and writes, and their errors', async () => {
    const put = (key: string, body: unknown, headers: Record<string, string> = {}) => http().put(`/v1/kv/${key}`).set(headers).send(body as object);
    checker.check('put', '/v1/kv/{key}', await put('oa%2Fa', { value: '1' }), 200);
    checker.check('put', '/v1/kv/{key}', await put('oa%2Fb', { value: '2' }, { 'request-id': 'c1:5' }), 200);
    checker.check('put', '/v1/kv/{key}', await put('oa%2Fb', { value: '3' }, { 'request-id': 'c1:4' }), 409, 'request_id_stale');
    checker.check('put', '/v1/kv/{key}', await put('oa%2Fb', { value: '3' }, { 'request-id': 'c1:0' }), 400, 'invalid_request_id');
    checker.check('put', '/v1/kv/{key}', await put('oa%2Fc', { value: 2 }), 400, 'invalid_request');
    checker.check('put', '/v1/kv/{key}', await put('oa%2Fc', { value: 'x', lease: 77 }), 404, 'lease_not_found');
    checker.check('put', '/v1/kv/{key}', await put('k'.repeat(2_000), { value: 'x' }), 413, 'key_too_large');
    checker.check('put', '/v1/kv/{key}', await put('big', { value: 'x'.repeat(defaultNodeConfig.maxValueBytes + 1) }), 413, 'value_too_large');
    checker.check('put', '/v1/kv/{key}', await put('big', { value: 'x'.repeat(defaultNodeConfig.maxBodyBytes + 1) }), 413, 'body_too_large');
    checker.check('put', '/v1/kv/{key}', await http().put('/v1/kv/oa').set('content-type', 'application/json').send('{"value":'), 400, 'invalid_json');
    checker.check('put', '/v1/kv/{key}', await http().put('/v1/kv/oa'), 400, 'invalid_request');
    checker.check('get', '/v1/kv/{key}', await http().get('/v1/kv/oa%2Fa'), 200);
    checker.check('get', '/v1/kv/{key}', await http().get('/v1/kv/oa%2Fa?consistency=serializable'), 200);
    checker.check('get', '/v1/kv/{key}', await http().get('/v1/kv/oa%2Fmissing'), 404, 'key_not_found');
    checker.check('get', '/v1/kv/{key}', await http().get('/v1/kv/oa%2Fa?consistency=eventual'), 400, 'invalid_request');
    checker.check('get', '/v1/kv/{key}', await http().get('/v1/kv/%E0%A4%A'), 400, 'invalid_path');
    const page = checker.check('get', '/v1/kv', await http().get('/v1/kv?prefix=oa/&limit=1'), 200);
    expect(page.body).toMatchObject({ kvs: [{ key: 'oa/a', value: '1' }], more: true });
    checker.check('get', '/v1/kv', await http().get('/v1/kv?prefix=oa/&limit=0'), 400, 'invalid_request');
    checker.check('get', '/v1/kv', await http().get('/v1/kv?limit=20000'), 400, 'limit_too_large');
    checker.check('get', '/v1/kv', await http().get(`/v1/kv?prefix=${'k'.repeat(2_000)}`), 413, 'key_too_large');
    checker.check('get', '/v1/kv/{key}', await http().get(`/v1/kv/${'k'.repeat(2_000)}`), 413, 'key_too_large');
    const cas = (body: unknown) => http().post('/v1/kv/oa%2Fa/cas').send(body as object);
    expect(checker.check('post', '/v1/kv/{key}/cas', await cas({ expected: '1', value: '2' }), 200).body).toMatchObject({ succeeded: true, previous: '1' });
    expect(checker.check('post', '/v1/kv/{key}/cas', await cas({ expected: null, value: '3' }), 200).body).toMatchObject({ succeeded: false, previous: '2' });
    checker.check('post', '/v1/kv/{key}/cas', await cas({ value: '2' }), 400, 'invalid_request');
    expect(checker.check('delete', '/v1/kv/{key}', await http().delete('/v1/kv/oa%2Fa'), 200).body).toMatchObject({ deleted: true, previous: '2' });
    expect(checker.check('delete', '/v1/kv/{key}', await http().delete('/v1/kv/oa%2Fa'), 200).body).toMatchObject({ deleted: false, previous: null });
    checker.check('delete', '/v1/kv/{key}', await http().delete('/v1/kv/oa%2Fa').set('request-id', 'bad id'), 400, 'invalid_request_id');
  });

  it('txn, watch and the shared error body of unrouted requests', async () => {
    const txn = (body: unknown) => http().post('/v1/txn').send(body as object);
    const ops = [
      { type: 'put', key: 'oa/t', value: 'v' },
      { type: 'get', key: 'oa/t' },
      { type: 'range', prefix: 'oa/' },
      { type: 'delete', key: 'oa/b' },
    ];
    const ran = checker.check('post', '/v1/txn', await txn({ compare: [{ key: 'oa/t', target: 'version', op: '=', value: 0 }], success: ops }), 200);
    expect(ran.body).toMatchObject({ succeeded: true, results: [{ type: 'put' }, { type: 'get' }, { type: 'range' }, { type: 'delete', deleted: true }] });
    checker.check('post', '/v1/txn', await txn({ success: [{ type: 'put', key: 'd', value: '1' }, { type: 'delete', key: 'd' }] }), 400, 'duplicate_key_in_txn');
    checker.check('post', '/v1/txn', await txn({ success: [{ type: 'jump' }] }), 400, 'invalid_request');
    checker.check('post', '/v1/txn', await txn({ success: Array.from({ length: 129 }, (_, i) => ({ type: 'get', key: `k${i}` })) }), 400, 'too_many_ops');
    checker.check('get', '/v1/watch', await http().get('/v1/watch'), 400, 'invalid_request');
    checker.check('get', '/v1/watch', await http().get('/v1/watch?prefix=a&key=b'), 400, 'invalid_request');
    checker.check('get', '/v1/watch', await http().get('/v1/watch?prefix=a&fromRevision=zero'), 400, 'invalid_revision');
    checker.checkUnrouted(await http().get('/v1/nothing'), 404, 'not_found');
    checker.checkUnrouted(await http().patch('/v1/kv/a'), 405, 'method_not_allowed');
    checker.checkUnrouted(await http().post('/v1/kv/a').send({ value: 'x' }), 404, 'not_found');
  });

  it('a watch answers with an event stream, as documented', async () => {
    // Streams stay open, so the reply is taken from the API directly: its status and headers are what node:http writes.
    const reply = await api.dispatch({ method: 'GET', path: '/v1/watch', query: new URLSearchParams('prefix=oa/'), headers: {}, body: undefined });
    expect('stream' in reply && reply.status === 200 ? reply.headers['content-type'] : undefined).toBe('text/event-stream');
    expect(Object.keys(doc.paths['/v1/watch']?.['get']?.responses['200']?.content ?? {})).toEqual(['text/event-stream']);
  });
});
