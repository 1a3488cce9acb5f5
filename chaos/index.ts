/** The chaos runner's public surface: run it, parse its options, read its summary. */
export { runChaos, type ChaosSummary } from './run.js';
export { parseChaosArgs, replayCommand, FAULT_KINDS, USAGE, UsageError, type ChaosOptions, type FaultKind, type StoreChoice } from './options.js';
export { FaultPlan, describeFault, type PlannedFault, type Lane } from './schedule.js';
