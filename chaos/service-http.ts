/**
 * The runner's calls to coordinators and banks: fetchJson with the
 * operator's bearer token when the run is `--secure` (their token files ask
 * for one; demo/supervisor/secure.ts makes it). Store calls do not go
 * through here: the store has tokens of its own (cluster.ts).
 */
import { fetchJson, type JsonAnswer, type JsonRequest } from '../demo/common/http.js';

/** Set once by the runner before the load starts; empty in a plain run. */
let serviceHeaders: Readonly<Record<string, string>> = {};

export function setServiceHeaders(headers: Readonly<Record<string, string>>): void {
  serviceHeaders = headers;
}

export function serviceJson(url: string, req: JsonRequest): Promise<JsonAnswer> {
  return fetchJson(url, { ...req, headers: { ...serviceHeaders, ...req.headers } });
}
