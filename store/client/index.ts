export {
  StoreClient,
  StoreError,
  fetchStream,
  type BatchResult,
  type BatchWrite,
  type ClientOptions,
  type KeyValue,
  type OpenStream,
  type StreamResponse,
  type TxnCompare,
  type TxnOp,
  type WatchEvent,
} from './client.js';
export { SseParser, parseSse, type SseMessage } from './sse.js';
