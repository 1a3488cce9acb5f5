export { DemoSupervisor, DATA_MARKER, PROCESS_ACTIONS, type DemoSupervisorOptions, type ProcessAction } from './supervisor.js';
export { ManagedProcess, EXIT_WAIT_MS, type ProcessEvent, type ProcessInfo, type ProcessRole, type ProcessSpec, type ProcessState } from './process.js';
export { ControlClient, serveControl, type ControlServer } from './control.js';
export { DEFAULT_BANKS, DEFAULT_BASE_PORT, HOST, PORT_OFFSETS, demoLayout, layoutPorts, openingTotal, urlOf, type BankSpec, type DemoLayout, type StoreNodeSpec } from './layout.js';
