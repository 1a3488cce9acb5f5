// Goal: the same 2PC crash-recovery suite (crash.case.ts), every failpoint of
// it, on a real 3-member etcd cluster (Debian's etcd-server, clients
// 37040-37042, peers 37043-37045); the coordinators and participants killed
// and restarted are the same processes, given `--store etcd://...` (on
// 37451-37463). The whole suite runs: it takes about as long as on the
// built-in store (35 s on the 2-core test machine). Skipped with a message
// when etcd is not installed, except in CI, where that fails.
import { crashSuite } from './crash.case.js';
import { etcdBackend } from './support/procs.js';

crashSuite(etcdBackend('test/twopc/crash-etcd.test.ts', 37400, 37040));
