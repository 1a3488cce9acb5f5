// Goal: the 2PC integration suite (integration.case.ts) on the built-in
// store: a real 3-node cluster of separate store processes (ports 36000-36002,
// peers 36100-36102), coordinators and participants on 36051-36065.
import { integrationSuite } from './integration.case.js';
import { builtinBackend } from './support/procs.js';

integrationSuite(builtinBackend(36000));
