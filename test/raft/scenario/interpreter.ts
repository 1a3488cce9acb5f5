/**
 * The scenario commands. Each returns its output text; the trace of the
 * Readies the command caused follows the command's own result.
 *
 *   cluster n=3 [prevote=true] [checkquorum=true] [election=10] [heartbeat=1]
 *           [max-msg-entries=N] [max-inflight=N] [seed=1]   nodes 1..n, all voters
 *   campaign <id>                      start an election (a pre-election with PreVote)
 *   propose <id> <data> [<data>...]    several data words are one batch (one append)
 *   deliver [from=<id>] [to=<id>] [type=<msg type>] [drop=true]
 *                                      one network hop for the matching queued messages
 *   stabilize [quiet=true]             readies and deliveries until nothing moves
 *   msgs                               the queued messages
 *   tick <id|all> [n] [quiet=true]     n ticks (default 1), readies handled after each
 *   tick-election <id|all> [quiet=true]
 *                                      tick until a node's timer fires (it campaigns, or its
 *                                      role or term changes, as a leader's under CheckQuorum),
 *                                      at most 3 election timeouts (the randomized one is < 2)
 *   partition <ids> | <ids> [| ...]    messages across the cut are dropped; `heal` ends it
 *   crash <id>, restart <id>           restart rebuilds the node from its MemoryStorage
 *   compact <id> [keep=N]              snapshot at the applied index, keep N entries before it
 *   add-learner <leader> <id>          creates the empty peer if needed; add-voter, remove alike
 *   transfer <leader> <to>
 *   read-index <id> <requestId>...     several ids share one Ready, hence one heartbeat round
 *   status [<id>...], log <id>, progress <leader>
 *   app [<id>...]                      the state machine: last applied index, writes, digest
 *
 * Repeated identical rounds of `tick` output are printed once with the tick
 * range, so a leader ticking twenty times does not print twenty heartbeats.
 */
import type { ConfChange, NodeId, RaftConfig, RawNode } from '../../../store/raft/index.js';
import { fmtEntry, fmtMessage, fmtProgress, fmtPropose, fmtSnapshot, fmtStatus } from './format.js';
import { type Command, parseCommand } from './script.js';
import { ScenarioError, World } from './world.js';

const OK = 'ok';

export class Interpreter {
  private world: World | undefined;

  /** Runs one command line; script mistakes come back as `error: ...` output. */
  run(text: string): string {
    try {
      const lines = this.exec(parseCommand(text));
      return lines.length === 0 ? OK : lines.join('\n');
    } catch (e) {
      if (e instanceof ScenarioError) return `error: ${e.message}`;
      throw e;
    }
  }

  private get w(): World {
    if (this.world === undefined) throw new ScenarioError('no cluster yet: start with `cluster n=3`');
    return this.world;
  }

  private exec(c: Command): string[] {
    switch (c.name) {
      case 'cluster':
        return this.cluster(c);
      case 'campaign':
        this.node(c, 0).campaign();
        return this.traced(c);
      case 'propose':
        return this.propose(c);
      case 'deliver':
        return this.deliver(c);
      case 'stabilize': {
        const trace = this.w.stabilize();
        return quiet(c) ? [] : trace;
      }
      case 'msgs': {
        const q = this.w.cluster.inflight;
        return q.length === 0 ? ['(none)'] : q.map(fmtMessage);
      }
      case 'tick':
        return this.tick(c);
      case 'tick-election':
        return this.tickElection(c);
      case 'partition':
        return [this.w.partition(splitGroups(c.args))];
      case 'heal':
        this.w.heal();
        return [];
      case 'crash':
        this.w.live(arg(c, 0));
        this.w.cluster.crash(arg(c, 0));
        return [];
      case 'restart':
        return this.restart(c);
      case 'compact':
        return this.compact(c);
      case 'add-learner':
        return this.confChange(c, 'addLearner');
      case 'add-voter':
        return this.confChange(c, 'addVoter');
      case 'remove':
        return this.confChange(c, 'remove');
      case 'transfer':
        return [this.node(c, 0).transferLeadership(arg(c, 1)), ...this.traced(c)];
      case 'read-index':
        return this.readIndex(c);
      case 'status':
        return this.status(c);
      case 'log':
        return this.log(c);
      case 'app':
        return (c.args.length > 0 ? c.args : this.w.ids()).map((id) => {
          const p = this.w.peer(id);
          return p.alive ? `${id}: index=${p.app.index} writes=${p.app.count} digest=${p.app.digest}` : `${id}: down`;
        });
      case 'progress': {
        const lines = fmtProgress(this.node(c, 0).status());
        return lines.length === 0 ? ['(not leader)'] : lines;
      }
      default:
        throw new ScenarioError(`unknown command ${c.name}`);
    }
  }

  private node(c: Command, i: number): RawNode {
    return this.w.live(arg(c, i));
  }

  /** The Readies a command caused, unless the script asked for quiet. */
  private traced(c: Command): string[] {
    const trace = this.w.processAll();
    return quiet(c) ? [] : trace;
  }

  private cluster(c: Command): string[] {
    const n = intOpt(c, 'n', 3);
    const cfg: Partial<RaftConfig> = {
      preVote: boolOpt(c, 'prevote'),
      checkQuorum: boolOpt(c, 'checkquorum'),
      electionTicks: intOpt(c, 'election', 10),
      heartbeatTicks: intOpt(c, 'heartbeat', 1),
      maxMsgEntries: intOpt(c, 'max-msg-entries', 512),
      maxInflightMsgs: intOpt(c, 'max-inflight', 256),
    };
    const ids = Array.from({ length: n }, (_, i) => String(i + 1));
    this.world = new World(ids, cfg, intOpt(c, 'seed', 1));
    // The bootstrap entries are committed on every founder; applying them is not news.
    this.w.processAll();
    return this.statusLines(ids);
  }

  private propose(c: Command): string[] {
    const data = c.args.slice(1);
    if (data.length === 0) throw new ScenarioError('propose <id> <data>...');
    const node = this.node(c, 0);
    const res = data.length === 1 ? node.propose(data[0] as string) : node.proposeBatch(data);
    return [fmtPropose(res), ...this.traced(c)];
  }

  /** Several request ids are registered before the next Ready, so they share one heartbeat round. */
  private readIndex(c: Command): string[] {
    const node = this.node(c, 0);
    const ids = c.args.slice(1);
    if (ids.length === 0) throw new ScenarioError('read-index <id> <requestId>...');
    const results = ids.map((rid) => (ids.length === 1 ? node.readIndex(rid) : `${rid}: ${node.readIndex(rid)}`));
    return [...results, ...this.traced(c)];
  }

  private deliver(c: Command): string[] {
    const from = c.opts.get('from');
    const to = c.opts.get('to');
    const type = c.opts.get('type');
    const drop = boolOpt(c, 'drop');
    const matches = (m: { from: NodeId; to: NodeId; type: string }): boolean =>
      (from === undefined || m.from === from) && (to === undefined || m.to === to) && (type === undefined || m.type === type);
    const all = this.w.cluster.inflight;
    const chosen = all.filter(matches);
    this.w.cluster.inflight = all.filter((m) => !matches(m));
    if (chosen.length === 0) return ['(no messages)'];
    const out = chosen.map((m) => (drop ? `drop ${fmtMessage(m)}` : this.w.deliver(m)));
    return [...out, ...this.traced(c)];
  }

  private tick(c: Command): string[] {
    const target = arg(c, 0);
    const n = c.args[1] === undefined ? 1 : toInt(c.args[1], 'tick count');
    const rounds: string[][] = [];
    for (let i = 0; i < n; i++) rounds.push(this.tickRound(target));
    return quiet(c) ? [] : collapseRounds(rounds);
  }

  private tickRound(target: string): string[] {
    const ids = target === 'all' ? this.w.ids() : [target];
    if (target !== 'all') this.w.live(target);
    for (const id of ids) this.w.cluster.peers.get(id)?.node?.tick();
    return this.w.processAll();
  }

  private tickElection(c: Command): string[] {
    const target = arg(c, 0);
    const watched = target === 'all' ? this.w.ids().filter((id) => this.w.peer(id).alive) : [target];
    const before = new Map(watched.map((id) => [id, this.w.live(id).status()] as const));
    const limit = 3 * this.w.electionTicks;
    const rounds: string[][] = [];
    this.w.takeCampaigners();
    for (let t = 1; t <= limit; t++) {
      rounds.push(this.tickRound(target));
      const campaigners = this.w.takeCampaigners();
      const changed: string[] = [];
      for (const id of watched) {
        const was = before.get(id);
        const now = this.w.peer(id).node?.status();
        if (was === undefined || now === undefined) continue;
        // A pre-candidate whose timer fires again campaigns without changing role or term.
        if (was.role !== now.role || was.term !== now.term || campaigners.has(id)) {
          changed.push(`${id} ${was.role}->${now.role} term=${now.term}`);
        }
      }
      if (changed.length > 0) return [`after ${t} ticks: ${changed.join(', ')}`, ...(quiet(c) ? [] : collapseRounds(rounds))];
    }
    return [`no change after ${limit} ticks`, ...(quiet(c) ? [] : collapseRounds(rounds))];
  }

  private restart(c: Command): string[] {
    const id = arg(c, 0);
    if (this.w.peer(id).alive) throw new ScenarioError(`node ${id} is up`);
    this.w.cluster.restart(id);
    return [fmtStatus(this.w.live(id).status()), ...this.traced(c)];
  }

  private compact(c: Command): string[] {
    const id = arg(c, 0);
    this.w.live(id);
    const snap = this.w.cluster.compact(id, intOpt(c, 'keep', 0));
    if (snap === undefined) return ['nothing to compact'];
    return [`snapshot ${fmtSnapshot(snap)}, log now starts at ${this.w.live(id).status().firstIndex}`];
  }

  private confChange(c: Command, op: ConfChange['op']): string[] {
    const leader = this.node(c, 0);
    const id = arg(c, 1);
    const res = leader.proposeConfChange({ op, id });
    const out = [fmtPropose(res)];
    if (res.ok && op !== 'remove' && !this.w.cluster.peers.has(id)) {
      // The joiner starts empty and learns everything, membership included, from the leader.
      this.w.cluster.addPeer(id);
      out.push(`new node ${id} with an empty log`);
    }
    return [...out, ...this.traced(c)];
  }

  private status(c: Command): string[] {
    return this.statusLines(c.args.length > 0 ? c.args : this.w.ids());
  }

  private statusLines(ids: readonly NodeId[]): string[] {
    return ids.map((id) => {
      const node = this.w.peer(id).node;
      return node === undefined ? `${id}: down` : fmtStatus(node.status());
    });
  }

  private log(c: Command): string[] {
    const id = arg(c, 0);
    const peer = this.w.peer(id);
    if (peer.node === undefined) {
      // What survived the crash.
      const s = peer.storage;
      const head = s.snapshot ? [`(down) snapshot ${fmtSnapshot(s.snapshot)}`] : ['(down)'];
      return [...head, ...s.entries.map(fmtEntry)];
    }
    const st = peer.node.status();
    const out: string[] = [];
    if (st.firstIndex > 1) out.push(`snapshot ${st.snapshotIndex}, entries before ${st.firstIndex} compacted`);
    out.push(...peer.node.entriesBetween(st.firstIndex - 1, st.lastIndex).map(fmtEntry));
    return out.length === 0 ? ['(empty)'] : out;
  }
}

/** Consecutive identical tick rounds are printed once, with the ticks they cover. */
function collapseRounds(rounds: readonly string[][]): string[] {
  const out: string[] = [];
  const many = rounds.length > 1;
  let i = 0;
  while (i < rounds.length) {
    const cur = rounds[i] as string[];
    const key = cur.join('\n');
    let j = i;
    while (j + 1 < rounds.length && (rounds[j + 1] as string[]).join('\n') === key) j++;
    if (cur.length > 0) {
      if (many) out.push(i === j ? `[tick ${i + 1}]` : `[ticks ${i + 1}-${j + 1}, each]`);
      out.push(...cur);
    }
    i = j + 1;
  }
  return out;
}

function splitGroups(args: readonly string[]): NodeId[][] {
  const groups: NodeId[][] = [[]];
  for (const a of args) {
    if (a === '|') groups.push([]);
    else (groups[groups.length - 1] as NodeId[]).push(a);
  }
  if (groups.length < 2 || groups.some((g) => g.length === 0)) throw new ScenarioError('partition <ids> | <ids>');
  return groups;
}

function arg(c: Command, i: number): string {
  const a = c.args[i];
  if (a === undefined) throw new ScenarioError(`${c.name}: missing argument ${i + 1}`);
  return a;
}

function toInt(s: string, what: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0) throw new ScenarioError(`${what} must be a non-negative integer, got ${s}`);
  return n;
}

function intOpt(c: Command, key: string, dflt: number): number {
  const v = c.opts.get(key);
  return v === undefined ? dflt : toInt(v, key);
}

function boolOpt(c: Command, key: string): boolean {
  const v = c.opts.get(key);
  if (v === undefined || v === 'false') return false;
  if (v === 'true') return true;
  throw new ScenarioError(`${key} must be true or false, got ${v}`);
}

function quiet(c: Command): boolean {
  return boolOpt(c, 'quiet');
}
