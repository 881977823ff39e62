/**
 * Fairness between tenants (workloads) sharing one engine: caps on each
 * workload's share of the device KV tier and of the batch, and on each
 * agent's share of the batch, all work-conserving: a share nobody else
 * needs is lent out, and taken back when its owner needs it.
 *
 * - KV: a workload holding more device blocks than its share has its
 *   blocks scored below everyone else's, so eviction takes from it first
 *   (in the order the other scoring policies give, LRU when none). While
 *   no eviction is needed nothing is taken from it: the share is lent.
 * - Batch: in the engine's waiting queue, a request whose workload (or
 *   agent) already holds its share of the running requests goes behind
 *   the requests of those under theirs; with nobody else waiting it is
 *   admitted as before.
 *
 * Shares are fractions; 'equal' splits evenly between the workloads with
 * live sessions. Per-agent KV shares are not enforced: a block is shared by
 * every agent whose prompts contain it, so it has no one agent to charge.
 */
import { Tier } from '../blocks/types.js';
import type { Policy, PolicyContext, RuntimeEvent, WaitingRequest } from './types.js';
import { checkNumber, checkOptionsObject, describeValue } from '../util/check.js';

/** Options of {@link createFairnessPolicy}. */
export interface FairnessOptions {
  /** Each workload's share of the device tier, in (0, 1], or 'equal' (the default). */
  kvShare?: number | 'equal';
  /** Each workload's share of the running requests, in (0, 1], or 'equal' (the default). */
  slotShare?: number | 'equal';
  /** Each agent's share of the running requests, in (0, 1]; default 1 (no cap). */
  agentSlotShare?: number;
}

/** Retention taken off an over-share workload's blocks: far below any other policy's scores, well within float32. */
export const OVER_SHARE_PENALTY = 1e4;
/** Priority taken off a request over its batch share (the queue's scores add up). */
export const OVER_SLOTS_PENALTY = 2 ** 42;

function shareOption(value: unknown, name: string, allowEqual: boolean): number | 'equal' {
  if (allowEqual && value === 'equal') return 'equal';
  if (typeof value !== 'number') {
    throw new TypeError(`fairness policy: options.${name} must be a number${allowEqual ? " or 'equal'" : ''}, got ${describeValue(value)}`);
  }
  checkNumber(value, `fairness policy: options.${name}`, 0, 1);
  if (value === 0) throw new RangeError(`fairness policy: options.${name} must be > 0, got 0`);
  return value;
}

/**
 * Creates the fairness policy: it observes sessions and requests, scores
 * classes (an over-share workload's at -{@link OVER_SHARE_PENALTY}, the
 * others at 0) and orders the waiting queue.
 *
 * @throws TypeError when `options` is not an object, names an unknown
 *   option, or an option has the wrong type.
 * @throws RangeError when a share is not in (0, 1].
 */
export function createFairnessPolicy(options?: FairnessOptions): Policy {
  const o = checkOptionsObject(options, 'fairness policy', ['kvShare', 'slotShare', 'agentSlotShare']);
  const kvShare = shareOption(o['kvShare'] ?? 'equal', 'kvShare', true);
  const slotShare = shareOption(o['slotShare'] ?? 'equal', 'slotShare', true);
  const agentSlotShare = shareOption(o['agentSlotShare'] ?? 1, 'agentSlotShare', false) as number;
  let context: PolicyContext | undefined;
  /** Live sessions per workload name. */
  const live = new Map<string, number>();
  /** Running requests: id -> [workload, workload/agent]; and counts per key. */
  const requests = new Map<number, [string, string]>();
  const running = new Map<string, number>();
  /** Workload ids over their KV share, as last scored. */
  let over = new Set<number>();
  /**
   * Device blocks per workload id, kept from the block events: each block
   * is counted under the workload it was last seen on device with (+1; 0:
   * not counted), so a tier change or a reuse moves it exactly once.
   */
  const used = new Map<number, number>();
  let countedAs = new Int32Array(0);

  const recount = (id: number): void => {
    const m = context!.manager.metadata;
    const was = countedAs[id]! - 1;
    const is = m.tier[id] === Tier.Device && m.committed[id] === 1 ? m.workload[id]! : -1;
    if (was === is) return;
    if (was >= 0) used.set(was, used.get(was)! - 1);
    if (is >= 0) used.set(is, (used.get(is) ?? 0) + 1);
    countedAs[id] = is + 1;
  };

  const bump = (key: string, by: number) => running.set(key, (running.get(key) ?? 0) + by);
  const activeWorkloads = () => {
    let n = 0;
    for (const count of live.values()) if (count > 0) n++;
    return Math.max(1, n);
  };

  /** Recomputes who is over its KV share; invalidates the classes of workloads that changed. */
  const refreshOver = (): void => {
    const ctx = context!;
    const share = (kvShare === 'equal' ? 1 / activeWorkloads() : kvShare) * ctx.manager.deviceBlocks;
    const now = new Set<number>();
    for (const [w, blocks] of used) if (blocks > share) now.add(w);
    const changed = [...now].filter((w) => !over.has(w)).concat([...over].filter((w) => !now.has(w)));
    over = now;
    if (changed.length === 0) return;
    const classes: number[] = [];
    for (const w of changed) {
      classes.push(...ctx.classesOfWorkload(w));
      for (const session of ctx.sessions()) if (session.workloadId === w) classes.push(...ctx.classesOfSession(session.id));
    }
    ctx.invalidate(classes);
  };

  return {
    name: 'fairness',
    scoring: 'classes',
    attach(attached: PolicyContext): void {
      context = attached;
      countedAs = new Int32Array(attached.manager.numBlockIds);
    },
    observe(event: RuntimeEvent): void {
      switch (event.type) {
        case 'session.start':
          live.set(event.workload, (live.get(event.workload) ?? 0) + 1);
          break;
        case 'session.end': {
          const workload = context?.session(event.session)?.workload;
          if (workload !== undefined) live.set(workload, Math.max(0, (live.get(workload) ?? 0) - 1));
          break;
        }
        case 'blocks':
          for (const id of event.events.block) recount(id);
          break;
        case 'prefill.done':
          for (const id of event.blockIds) recount(id);
          break;
        case 'admit':
          // A prompt's blocks take its workload (or -1 when shared by several) without a block event.
          for (const id of event.blockIds) recount(id);
          if (event.agent !== undefined) {
            const keys: [string, string] = [event.agent.workload, `${event.agent.workload}\u0000${event.agent.agent}`];
            requests.set(event.requestId, keys);
            for (const key of keys) bump(key, 1);
          }
          break;
        case 'release': {
          const keys = requests.get(event.requestId);
          if (keys !== undefined) {
            requests.delete(event.requestId);
            for (const key of keys) bump(key, -1);
          }
          break;
        }
        default:
          break;
      }
    },
    scoreClasses(classIds: Int32Array, out: Float32Array): void {
      if (context === undefined) throw new RangeError('fairness policy: scoreClasses() called before attach()');
      for (let i = 0; i < classIds.length; i++) {
        const cls = context.scoreClass(classIds[i]!);
        out[i] = cls !== undefined && over.has(cls.workload) ? -OVER_SHARE_PENALTY : 0;
      }
    },
    act(): [] {
      if (context === undefined) throw new RangeError('fairness policy: act() called before attach()');
      refreshOver();
      return [];
    },
    scoreWaiting(queue: readonly WaitingRequest[], out: Float64Array): void {
      // Slots: the running requests plus those waiting, split between the
      // workloads that are running or waiting.
      const tenants = new Set<string>();
      let total = queue.length;
      for (const [key, count] of running) {
        if (count > 0 && !key.includes('\u0000')) tenants.add(key);
      }
      total += requests.size;
      for (const r of queue) if (r.agent !== undefined) tenants.add(r.agent.workload);
      const workloadSlots = Math.max(1, Math.ceil((slotShare === 'equal' ? 1 / Math.max(1, tenants.size) : slotShare) * total));
      const agentSlots = Math.max(1, Math.ceil(agentSlotShare * total));
      const taken = new Map(running);
      const byArrival = queue.map((_, i) => i).sort((a, b) => queue[a]!.position - queue[b]!.position);
      for (const i of byArrival) {
        const agent = queue[i]!.agent;
        if (agent === undefined) continue;
        const keys = [agent.workload, `${agent.workload}\u0000${agent.agent}`];
        const [w, a] = keys.map((k) => taken.get(k) ?? 0) as [number, number];
        if (w >= workloadSlots || a >= agentSlots) {
          out[i] = -OVER_SLOTS_PENALTY;
          continue;
        }
        for (const key of keys) taken.set(key, (taken.get(key) ?? 0) + 1);
      }
    },
  };
}
