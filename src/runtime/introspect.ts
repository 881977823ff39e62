/** explain and info: why a block has its score, and what the runtime holds now. */
import { describeSelection } from '../compute/backend.js';
import { checkInt } from '../util/check.js';
import type { RuntimeParts } from './parts.js';

const TIER_NAMES = ['free', 'device', 'host'];

/** Why a block has its score: what it is, who used it, and each policy's view. */
export function explainBlock(parts: RuntimeParts, blockId: number): Record<string, unknown> {
  const { manager, registry, scoring } = parts;
  checkInt(blockId, 'explain: blockId', 0, manager.numBlockIds - 1);
  const m = manager.metadata;
  const workload = m.workload[blockId]!;
  const agents: string[] = [];
  const mask = m.agentMask[blockId]!;
  for (let a = 0; a < 64; a++) {
    if ((mask >> BigInt(a)) & 1n) agents.push(registry.agentName(workload, a) ?? `#${a}`);
  }
  const cls = scoring.classes.get(scoring.classes.classOf(blockId));
  const policies: Record<string, unknown> = {};
  for (const p of parts.policies) {
    const view = p.explain?.(blockId);
    if (view) policies[p.name] = view;
  }
  return {
    blockId,
    tier: TIER_NAMES[m.tier[blockId]!] ?? 'unknown',
    committed: m.committed[blockId] === 1,
    refCount: m.refCount[blockId],
    depth: m.depth[blockId],
    lastAccess: m.lastAccess[blockId],
    accessCount: m.accessCount[blockId],
    workload: workload >= 0 ? (registry.workloadName(workload) ?? null) : null,
    session: m.session[blockId]! >= 0 ? (registry.sessionName(m.session[blockId]!) ?? null) : null,
    agents: workload >= 0 ? agents : [],
    scoreClass: cls ? { ...cls, agentMask: cls.agentMask.toString(16) } : null,
    score: cls ? manager.classScores[cls.id] : m.score[blockId],
    stale: scoring.classes.isStale(blockId),
    dead: scoring.classes.isDead(blockId),
    policies,
  };
}

/** The backend, the policies, the tiers' use and what is live. */
export function runtimeInfo(parts: RuntimeParts, requests: number, holds: number): Record<string, unknown> {
  const { manager, scoring } = parts;
  return {
    backend: describeSelection(parts.selection),
    policies: parts.policies.map((p) => p.name),
    scoring: scoring.mode,
    device: { used: manager.usedBlocks('device'), capacity: manager.deviceBlocks, pinned: manager.pinnedDeviceBlocks() },
    host: { used: manager.usedBlocks('host'), capacity: manager.hostBlocks },
    liveClasses: scoring.classes.liveClasses,
    liveSessions: parts.sessions.liveCount,
    requests,
    holds,
    /** Events and tagged calls earlier than their session's latest time (RuntimeStats.timeWentBack has the last). */
    timeWentBack: parts.stats.timeWentBack.count,
  };
}
