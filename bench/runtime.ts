/**
 * Runtime overhead benchmark: wall time the runtime plus a policy spend per
 * LLM call (step start, admit, prefill done, release, step end, act) with
 * 100k and 1M cached blocks and 1,000 live sessions over 50 workloads.
 *
 *   npm run --silent bench:runtime -- [--json] [--quick] [--policy cachesage]
 */
import { performance } from 'node:perf_hooks';

import { Runtime } from '../src/runtime/runtime.js';

const argv = process.argv.slice(2);
let json = false;
let quick = false;
let policy = 'cachesage';
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]!;
  if (a === '--json') json = true;
  else if (a === '--quick') quick = true;
  else if (a === '--policy' && argv[i + 1]) policy = argv[++i]!;
  else {
    process.stderr.write(`bench:runtime: unknown flag ${a} (expected --json, --quick, --policy NAME)\n`);
    process.exit(2);
  }
}

// Prompts: [the agent's system prompt, 32 blocks][the agent's context in
// the session, growing 16 blocks (a message and its reply) per call, up to
// 64 then starting over]: ~2k tokens at most, 16 new blocks per call.
const WORKLOADS = 50;
const SESSIONS = 1000;
const AGENTS = 6;
const SYSTEM_BLOCKS = 32;
const STEP_BLOCKS = 16;
const MAX_HISTORY = 64;
const BLOCK_TOKENS = 16;

/** Deterministic 64-bit values (splitmix64). */
class Rng {
  #s = 0x1234n;
  next64(): bigint {
    this.#s = BigInt.asUintN(64, this.#s + 0x9e3779b97f4a7c15n);
    let z = this.#s;
    z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
    z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
    return z ^ (z >> 31n);
  }
  int(n: number): number {
    return Number(this.next64() % BigInt(n));
  }
}

function chain(parent: bigint, content: bigint): bigint {
  let z = BigInt.asUintN(64, parent * 0x9e3779b97f4a7c15n + content);
  z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
  return z ^ (z >> 31n);
}

interface SessionState {
  name: string;
  workload: string;
  agent: number;
  /** Per agent: its view of the conversation, extended by each of its calls. */
  history: bigint[][];
}

function measure(cachedBlocks: number, samples: number): { usPerCall: number; p99Us: number; liveSessions: number; classes: number } {
  const rng = new Rng();
  const runtime = new Runtime({
    blocks: { blockSize: BLOCK_TOKENS, deviceBlocks: cachedBlocks, hostBlocks: 0, bytesPerBlock: 2 << 20, maxClasses: 1 << 18 },
    policies: [policy],
  });
  const system: BigUint64Array[][] = [];
  for (let w = 0; w < WORKLOADS; w++) {
    system.push(
      Array.from({ length: AGENTS }, () => {
        const out = new BigUint64Array(SYSTEM_BLOCKS);
        let parent = 0n;
        for (let i = 0; i < SYSTEM_BLOCKS; i++) out[i] = parent = chain(parent, rng.next64());
        return out;
      }),
    );
  }
  const sessions: SessionState[] = [];
  let time = 0;
  for (let s = 0; s < SESSIONS; s++) {
    const session = { name: `s${s}`, workload: `w${s % WORKLOADS}`, agent: 0, history: Array.from({ length: AGENTS }, () => [] as bigint[]) };
    sessions.push(session);
    runtime.observe({ type: 'session.start', time, session: session.name, workload: session.workload });
  }
  let requestId = 1;
  const oneCall = (): number => {
    const s = sessions[rng.int(SESSIONS)]!;
    const w = Number(s.workload.slice(1));
    // The next agent: the same one half the time (a tool loop), else another.
    if (rng.int(2) === 0) s.agent = rng.int(AGENTS);
    let history = s.history[s.agent]!;
    if (history.length >= MAX_HISTORY) history = s.history[s.agent] = [];
    // Each call adds a new message and the reply to the agent's context.
    for (let i = 0; i < STEP_BLOCKS; i++) history.push(rng.next64());
    const hashes = new BigUint64Array(SYSTEM_BLOCKS + history.length);
    hashes.set(system[w]![s.agent]!, 0);
    // Block hashes chain through their parent, as an engine's do: the same
    // history after another agent's system prompt is other KV.
    let parent = hashes[SYSTEM_BLOCKS - 1]!;
    for (let i = 0; i < history.length; i++) {
      parent = chain(parent, history[i]!);
      hashes[SYSTEM_BLOCKS + i] = parent;
    }
    const agent = { workload: s.workload, agent: `agent${s.agent}` };
    const id = requestId++;
    time += 0.001;
    const start = performance.now();
    runtime.observe({ type: 'step.start', time, session: s.name, agent });
    const decision = runtime.admit({ requestId: id, hashes, numTokens: hashes.length * BLOCK_TOKENS, session: s.name, agent, time });
    if (!decision) throw new Error('bench: admit refused on an unpinned cache');
    runtime.prefillDone(id, time);
    runtime.release(id, time);
    runtime.observe({ type: 'step.end', time, session: s.name, agent });
    runtime.act(time);
    runtime.takeCopyPlan();
    return (performance.now() - start) * 1000;
  };
  // Fill the device tier, then measure at steady state.
  while (runtime.manager.usedBlocks('device') < cachedBlocks) oneCall();
  for (let i = 0; i < 200; i++) oneCall();
  const times: number[] = [];
  for (let i = 0; i < samples; i++) times.push(oneCall());
  times.sort((a, b) => a - b);
  const info = runtime.info() as { liveSessions: number; liveClasses: number };
  return {
    usPerCall: times[Math.floor(times.length / 2)]!,
    p99Us: times[Math.min(times.length - 1, Math.floor(times.length * 0.99))]!,
    liveSessions: info.liveSessions,
    classes: info.liveClasses,
  };
}

const at100k = measure(100_000, quick ? 300 : 2000);
const at1M = measure(quick ? 200_000 : 1_000_000, quick ? 300 : 2000);
const result = {
  policy,
  usPerCallAt100k: Number(at100k.usPerCall.toFixed(2)),
  usPerCallAt1M: Number(at1M.usPerCall.toFixed(2)),
  p99UsAt1M: Number(at1M.p99Us.toFixed(2)),
  liveSessions: at1M.liveSessions,
  workloads: WORKLOADS,
  liveClassesAt1M: at1M.classes,
  quick,
};
if (json) {
  process.stdout.write(JSON.stringify(result) + '\n');
} else {
  process.stdout.write(`policy ${policy}, ${result.liveSessions} live sessions over ${WORKLOADS} workloads\n`);
  process.stdout.write(`median us per call at 100k blocks   ${String(result.usPerCallAt100k).padStart(8)}   target < 10\n`);
  process.stdout.write(`median us per call at ${quick ? '200k' : '1M'} blocks     ${String(result.usPerCallAt1M).padStart(8)}   target < 20\n`);
  process.stdout.write(`p99 us per call at ${quick ? '200k' : '1M'} blocks        ${String(result.p99UsAt1M).padStart(8)}   target < 50\n`);
  process.stdout.write(`live score classes                  ${String(result.liveClassesAt1M).padStart(8)}\n`);
}
