export { StoreClient, StoreError, type ClientOptions, type KeyValue, type TxnCompare, type TxnOp } from './client.js';
