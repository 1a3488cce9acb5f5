export { StoreClient, StoreError, type ClientOptions, type KeyValue, type TxnCompare, type TxnOp, type WatchEvent } from './client.js';
