/** Linearizability checking for the key-value store: format, recorder, model, checker. */
export {
  HISTORY_CLOCK,
  HISTORY_VERSION,
  HistoryFormatError,
  HistoryRecorder,
  describeCall,
  describeOperation,
  describeOutput,
  parseHistory,
  validateHistory,
  validateOutput,
} from './history.js';
export type {
  History,
  HistoryOperation,
  HistoryRecorderOptions,
  OpKind,
  OpOutput,
  OpStatus,
  OperationHandle,
  OperationSpec,
} from './history.js';
export {
  DEFAULT_MAX_STEPS,
  DEFAULT_TIMEOUT_MS,
  SearchBudget,
  checkHistory,
  searchLinearization,
} from './checker.js';
export type {
  CheckOptions,
  CheckResult,
  CheckVerdict,
  Counterexample,
  KeyResult,
  LimitName,
  LinearizedStep,
  Model,
  SearchOperation,
  SearchOutcome,
  StepResult,
} from './checker.js';
export { createKvModel, kvApply, kvInputOf, kvOutputMatches } from './kv-model.js';
export type { KvInput, KvState } from './kv-model.js';
export { generateHistory } from './generate.js';
export type { GenerateOptions } from './generate.js';
