/**
 * The one switch for fault injection. Chaos runs start store nodes and
 * coordinators with RAFT2PC_FAULTS=1, which adds `/v1/admin/faults` routes
 * that cut a process off from chosen peers; without it those routes do not
 * exist, so a production process never exposes them.
 */
export const FAULTS_ENV = 'RAFT2PC_FAULTS';

export function faultInjectionEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[FAULTS_ENV] === '1';
}
