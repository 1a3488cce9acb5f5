// Goal: the 2PC crash-recovery suite (crash.case.ts) on the built-in store:
// a real 3-node cluster of separate store processes (ports 36200-36202, peers
// 36300-36302), coordinators and participants on 36251-36263.
import { crashSuite } from './crash.case.js';
import { builtinBackend } from './support/procs.js';

crashSuite(builtinBackend(36200));
