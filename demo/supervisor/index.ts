export { DemoSupervisor, DATA_MARKER, type DemoSupervisorOptions } from './supervisor.js';
export { ManagedProcess, EXIT_WAIT_MS, PROCESS_ACTIONS, type ProcessAction, type ProcessEvent, type ProcessInfo, type ProcessRole, type ProcessSpec, type ProcessState } from './process.js';
export { ControlClient, serveControl, type ControlHost, type ControlServer, type DemoTopology } from './control.js';
export { DEFAULT_BANKS, DEFAULT_BASE_PORT, HOST, PORT_OFFSETS, demoLayout, layoutPorts, openingTotal, urlOf, type BankSpec, type DemoLayout, type StoreNodeSpec } from './layout.js';
