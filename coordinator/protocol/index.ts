/** The 2PC kernel that coordinators and participants share: key layout, codecs, the commit rule, compacted records. Pure. */
export * from './kernel.js';
export * from './compacted.js';
