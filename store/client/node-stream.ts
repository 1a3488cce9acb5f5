/**
 * An OpenStream on node:http and node:https, for watches over TLS: fetch
 * cannot be given a CA or a client certificate without undici's own Agent
 * (not a dependency), while https.get takes them as options.
 */
import http from 'node:http';
import https from 'node:https';
import type { ClientTls } from '../../lib/tls.js';
import type { OpenStream, StreamResponse } from './client.js';
import { parseSse } from './sse.js';

/** Largest error body read from a refused watch. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

export function nodeStream(tls: ClientTls): OpenStream {
  return (url, signal, headers) =>
    new Promise<StreamResponse>((resolve, reject) => {
      const secure = url.startsWith('https:');
      const options = { headers: { accept: 'text/event-stream', ...headers }, ...(signal === undefined ? {} : { signal }), ...(secure ? tls : {}) };
      const req = (secure ? https : http).get(url, options, (res) => {
        const status = res.statusCode ?? 0;
        // Leaving the parser's loop early destroys `res`, which closes the connection.
        if (status < 400) return resolve({ status: 200, messages: parseSse(res) });
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (text.length < MAX_ERROR_BODY_BYTES) text += chunk;
        });
        res.on('end', () => resolve({ status, text }));
        res.on('error', reject);
      });
      req.on('error', reject);
    });
}
