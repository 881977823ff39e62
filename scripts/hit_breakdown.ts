/**
 * Where one policy's hits differ from another's (by default CacheSage's
 * from MIN's), on one trace or bundled workload replayed on the same
 * arrivals:
 *
 * - hits per agent and per how many calls that agent made in its session
 *   before (1st, 2nd, 3rd, 4th and later), beside the blocks each call
 *   could reuse from the agent's previous prompt in the session;
 * - device evictions per block owner (the agent whose call wrote the
 *   block) and where the owner's session stood when the block went (in a
 *   step of some agent, after a step of some agent, or ended), with how
 *   many of those blocks a later prompt read again: each such read was a
 *   miss the eviction caused.
 *
 *   npx tsx scripts/hit_breakdown.ts --trace ../shared/traces/mad_debate.jsonl
 *   npx tsx scripts/hit_breakdown.ts --workload react --capacity 0.25 --policies cachesage,belady,lru
 *
 * Options: --trace FILE | --workload NAME (--sessions N, default 24, as
 * `cachesage bench --quick`), --policies A,B[,...] (default cachesage,belady),
 * --capacity C (default 0.25), --host-capacity H (default 0: device only);
 * capacities in `cachesage replay`'s unit (a fraction of the peak live
 * footprint, or a whole number of blocks), every flag checked as it checks
 * them.
 */
import { EventKind } from '../src/blocks/types.js';
import type { Policy, PolicyContext, RuntimeEvent } from '../src/policies/types.js';
import { capacityFlag, integerFlag, policiesFlag, UsageError } from '../src/cli/args.js';
import { replay, type Capacity } from '../src/sim/replay.js';
import { readTraceFile } from '../src/trace/reader.js';
import type { TraceCall } from '../src/trace/format.js';
import { generateWorkload, WORKLOAD_NAMES } from '../src/workloads/index.js';

interface Options {
  trace: string | undefined;
  workload: string | undefined;
  sessions: number;
  policies: string[];
  capacity: Capacity;
  hostCapacity: Capacity;
}

const SCRIPT = 'hit_breakdown';

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

/** The flags, checked as `cachesage replay` checks its own (src/cli/args.ts). */
function parse(argv: string[]): Options {
  const o: Options = { trace: undefined, workload: undefined, sessions: 24, policies: ['cachesage', 'belady'], capacity: { fraction: 0.25 }, hostCapacity: { blocks: 0 } };
  try {
    for (let i = 0; i < argv.length; i++) {
      const flag = argv[i]!;
      const value = argv[i + 1];
      const known = ['--trace', '--workload', '--sessions', '--policies', '--capacity', '--host-capacity'];
      if (!known.includes(flag)) throw new UsageError(`${SCRIPT}: unknown flag ${JSON.stringify(flag)} (expected ${known.join(', ')})`);
      if (value === undefined) throw new UsageError(`${SCRIPT}: ${flag} needs a value`);
      i++;
      switch (flag) {
        case '--trace': o.trace = value; break;
        case '--workload':
          if (!WORKLOAD_NAMES.includes(value)) throw new UsageError(`${SCRIPT}: --workload must be one of ${WORKLOAD_NAMES.join(', ')} (got ${JSON.stringify(value)})`);
          o.workload = value;
          break;
        case '--sessions': o.sessions = integerFlag(SCRIPT, 'sessions', value, 1); break;
        case '--policies': o.policies = policiesFlag(SCRIPT, value); break;
        case '--capacity': o.capacity = capacityFlag(SCRIPT, 'capacity', value, false); break;
        case '--host-capacity': o.hostCapacity = capacityFlag(SCRIPT, 'host-capacity', value, true); break;
      }
    }
    if ((o.trace === undefined) === (o.workload === undefined)) throw new UsageError(`${SCRIPT}: give one of --trace FILE or --workload NAME`);
  } catch (error) {
    if (error instanceof UsageError) fail(error.message);
    throw error;
  }
  return o;
}

/** A capacity as the flags spell it. */
function capacityText(c: Capacity): string {
  return 'fraction' in c ? String(c.fraction) : `${c.blocks} blocks`;
}

/** Per (agent, nth call): calls, prompt blocks, blocks reusable from the agent's previous prompt, hits. */
interface CallRow { calls: number; blocks: number; reusable: number; hits: number }
/** Per (owner agent, owner session's state): device evictions, and how many of those blocks a later prompt read. */
interface EvictionRow { evicted: number; readAgain: number }

function observer(calls: Map<string, CallRow>, evictions: Map<string, EvictionRow>): Policy {
  let ctx: PolicyContext | undefined;
  const nth = new Map<string, number>();
  const owner = new Map<number, string>();
  const evicted = new Map<bigint, string>();
  return {
    name: 'hit-breakdown',
    attach(context) {
      ctx = context;
    },
    observe(event: RuntimeEvent) {
      if (!ctx) return;
      if (event.type === 'admit' && event.session !== undefined && event.agent !== undefined) {
        for (const hash of event.hashes) {
          const key = evicted.get(hash);
          if (key === undefined) continue;
          evictions.get(key)!.readAgain++;
          evicted.delete(hash);
        }
        const agent = event.agent.agent;
        const k = `${event.session}\u0000${agent}`;
        const n = nth.get(k) ?? 0;
        nth.set(k, n + 1);
        const key = `${agent} #${n < 3 ? n + 1 : '4+'}`;
        const row = calls.get(key) ?? { calls: 0, blocks: 0, reusable: 0, hits: 0 };
        row.calls++;
        row.blocks += event.hashes.length;
        row.reusable += event.sharedWithPrevious ?? 0;
        row.hits += event.cachedDeviceTokens / ctx.manager.blockSize;
        calls.set(key, row);
        for (let i = 0; i < event.blockIds.length; i++) if (!owner.has(event.blockIds[i]!)) owner.set(event.blockIds[i]!, `${event.session}\u0000${agent}`);
      }
      if (event.type === 'blocks') {
        const { kind, block, hash } = event.events;
        for (let i = 0; i < kind.length; i++) {
          if (kind[i] !== EventKind.Removed && kind[i] !== EventKind.Demoted) continue;
          const who = owner.get(block[i]!);
          owner.delete(block[i]!);
          if (who === undefined) continue;
          const [session, agent] = who.split('\u0000') as [string, string];
          const s = ctx.session(session);
          const where = s === undefined || !s.live ? 'ended' : `${s.inStep ? 'in a step of' : 'after a step of'} ${s.agent ?? '-'}`;
          const key = `${agent}, its session ${where}`;
          const row = evictions.get(key) ?? { evicted: 0, readAgain: 0 };
          row.evicted++;
          evictions.set(key, row);
          evicted.set(hash[i]!, key);
        }
      }
    },
  };
}

async function callsOf(o: Options): Promise<{ name: string; calls: TraceCall[] }> {
  if (o.workload !== undefined) return { name: o.workload, calls: generateWorkload(o.workload, { sessions: o.sessions }).calls };
  try {
    return { name: o.trace!, calls: (await readTraceFile(o.trace!)).calls };
  } catch (error) {
    fail(`${SCRIPT}: --trace ${o.trace}: ${(error as Error).message}`);
  }
}

const o = parse(process.argv.slice(2));
const { name, calls } = await callsOf(o);
const callRows: Map<string, CallRow>[] = [];
const evictionRows: Map<string, EvictionRow>[] = [];
for (const policy of o.policies) {
  const c = new Map<string, CallRow>();
  const e = new Map<string, EvictionRow>();
  const report = replay(name, calls, {
    policies: [policy],
    capacity: o.capacity,
    hostCapacity: o.hostCapacity,
    observers: [observer(c, e)],
  });
  const result = report.results.find((r) => r.policy === policy)!;
  process.stdout.write(`${policy}: token hit ${(100 * result.tokenHitRate).toFixed(1)} %\n`);
  callRows.push(c);
  evictionRows.push(e);
}

const pad = (s: string | number, n: number) => String(s).padStart(n);
process.stdout.write(`\nhit blocks by agent and its nth call in the session (${name}, device ${capacityText(o.capacity)}, host ${capacityText(o.hostCapacity)})\n`);
process.stdout.write(`${'agent, call'.padEnd(28)}${pad('calls', 7)}${pad('blocks', 9)}${pad('reusable', 10)}${o.policies.map((p) => pad(p, 12)).join('')}\n`);
for (const key of [...callRows[0]!.keys()].sort()) {
  const first = callRows[0]!.get(key)!;
  process.stdout.write(`${key.padEnd(28)}${pad(first.calls, 7)}${pad(first.blocks, 9)}${pad(first.reusable, 10)}${callRows.map((c) => pad(c.get(key)?.hits ?? 0, 12)).join('')}\n`);
}
process.stdout.write('\ndevice evictions (blocks read again later) by the block\'s agent and where its session stood\n');
const keys = new Set(evictionRows.flatMap((e) => [...e.keys()]));
const total = (key: string) => evictionRows.reduce((sum, e) => sum + (e.get(key)?.evicted ?? 0), 0);
for (const key of [...keys].sort((a, b) => total(b) - total(a))) {
  process.stdout.write(`${key.padEnd(60)}${evictionRows.map((e) => pad(`${e.get(key)?.evicted ?? 0} (${e.get(key)?.readAgain ?? 0})`, 18)).join('')}\n`);
}
