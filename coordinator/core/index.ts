/** The pure coordinator machine: one transaction's reconciler over what the store holds. */
export * from './machine.js';
