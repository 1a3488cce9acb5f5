/**
 * One server variant of bench/http/frameworks.ts in its own process:
 *
 *   node --import tsx bench/http/server-main.ts <express|lib|fastify> <coordinator|participant> <port>
 *
 * Prints `ready` on stdout once it listens; exits on SIGTERM or when its
 * parent goes (stdin closes), so no server outlives the benchmark.
 */
import { FRAMEWORKS, SERVICES, serveVariant, type Framework, type Service } from './variants.js';

const [framework, service, portText] = process.argv.slice(2);
if (!FRAMEWORKS.includes(framework as Framework) || !SERVICES.includes(service as Service) || !/^[0-9]+$/.test(portText ?? '')) {
  process.stderr.write('usage: server-main.ts <express|lib|fastify> <coordinator|participant> <port>\n');
  process.exit(2);
}
const server = await serveVariant(framework as Framework, service as Service, Number(portText));
const stop = (): void => void server.close().finally(() => process.exit(0));
process.once('SIGTERM', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.stdout.write('ready\n');
