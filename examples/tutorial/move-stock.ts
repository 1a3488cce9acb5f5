/**
 * The tutorial's app (docs/TUTORIAL.md): moves stock from one warehouse to
 * another in one transaction, with the client SDK.
 *
 *   node --import tsx examples/tutorial/move-stock.ts --coordinators http://127.0.0.1:7070 \
 *     --from east=http://127.0.0.1:7201 --to west=http://127.0.0.1:7202 --sku widget --count 3
 *
 * Prints the outcome as one JSON line; exits 0 when committed, 1 when aborted.
 */
import { parseArgs } from 'node:util';
import { CoordinatorClient } from 'raft2pc/client';

const { values } = parseArgs({
  options: {
    coordinators: { type: 'string', default: 'http://127.0.0.1:7070' },
    from: { type: 'string', default: 'east=http://127.0.0.1:7201' },
    to: { type: 'string', default: 'west=http://127.0.0.1:7202' },
    sku: { type: 'string', default: 'widget' },
    count: { type: 'string', default: '1' },
  },
});

/** `name=url` as the coordinator enlists a participant. */
function warehouse(flag: string): { name: string; url: string } {
  const at = flag.indexOf('=');
  return { name: flag.slice(0, at), url: flag.slice(at + 1) };
}

const count = Number(values.count);
const client = new CoordinatorClient({ coordinators: values.coordinators.split(',') });
// One transaction: each participant gets its work, then the coordinator commits only if both vote "yes".
try {
  const outcome = await client.run({
    participants: [
      { ...warehouse(values.from), work: { moves: [{ sku: values.sku, delta: -count }] } },
      { ...warehouse(values.to), work: { moves: [{ sku: values.sku, delta: count }] } },
    ],
  });
  console.log(JSON.stringify(outcome));
  process.exitCode = outcome.outcome === 'committed' ? 0 : 1;
} finally {
  client.close(); // its keep-alive connections would hold the process open
}
