// Goal: the same 2PC integration suite (integration.case.ts) on a real
// 3-member etcd cluster (Debian's etcd-server, clients 37020-37022, peers
// 37023-37025): coordinators and participants are the same processes, given
// `--store etcd://...` (coordinators and participants on 37251-37265). Skipped
// with a message when etcd is not installed, except in CI, where that fails.
import { integrationSuite } from './integration.case.js';
import { etcdBackend } from './support/procs.js';

integrationSuite(etcdBackend('test/twopc/integration-etcd.test.ts', 37200, 37020));
