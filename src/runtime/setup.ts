/**
 * What the Runtime constructor resolves: the policies' context over the
 * runtime's parts, and the backend, block manager and policies its options
 * name.
 */
import { readOnlyView } from '../blocks/view.js';
import type { BlockManagerLike } from '../blocks/types.js';
import { cpuBackend, selectionOf, type BackendSelection } from '../compute/backend.js';
import { createPolicy } from '../policies/registry.js';
import type { Policy, PolicyContext, ScoreClass } from '../policies/types.js';
import { Staleness } from './classes.js';
import type { RuntimeParts } from './parts.js';
import type { PolicySpec, RuntimeOptions } from './types.js';

/** The policies' view of the runtime: the session model, the class book and a read-only block manager. */
export function policyContext(parts: RuntimeParts, hostToDeviceBytesPerSecond: number): PolicyContext {
  const { manager, registry, sessions, scoring } = parts;
  return {
    manager: readOnlyView(manager),
    registry,
    scoreClass: (id: number): ScoreClass | undefined => scoring.classes.get(id),
    classesOfSession: (sessionId: number) => scoring.classes.ofSession(sessionId),
    classesOfWorkload: (workloadId: number) => scoring.classes.ofWorkload(workloadId),
    markStale: (blockIds: ArrayLike<number>) => scoring.classes.classify(blockIds, Staleness.Stale),
    markDead: (blockIds: ArrayLike<number>) => scoring.classes.classify(blockIds, Staleness.Dead),
    invalidate: (classIds: Iterable<number>) => scoring.invalidate(classIds),
    lastPrompt: (session: string, agent?: string) => sessions.lastPrompt(session, agent),
    session: (name: string) => sessions.get(name),
    sessionById: (id: number) => sessions.byId(id),
    sessions: () => sessions.all(),
    liveSessions: (workloadId: number) => sessions.liveOf(workloadId),
    bytesPerBlock: Math.max(1, manager.bytesPerBlock),
    hostToDeviceBytesPerSecond,
    backend: parts.selection.backend,
  };
}

export function resolveBackend(value: RuntimeOptions['backend']): BackendSelection {
  if (value === undefined || value === 'cpu') return selectionOf(cpuBackend(), value === undefined ? 'the default' : 'asked for by name');
  if (typeof value === 'string') {
    throw new RangeError(`backend '${value}' needs an asynchronous selection: use await Runtime.create({backend: '${value}', ...})`);
  }
  if (typeof value === 'object' && value !== null) {
    if ('backend' in value && 'requested' in value) return value;
    if ('survival' in value && 'hitScoring' in value && 'createDataPlane' in value) return selectionOf(value);
  }
  throw new TypeError("backend must be 'cpu', a ComputeBackend or a BackendSelection");
}

export function isManager(value: unknown): value is BlockManagerLike {
  return typeof value === 'object' && value !== null && typeof (value as BlockManagerLike).admit === 'function';
}

export function resolvePolicy(spec: PolicySpec): Policy {
  if (typeof spec === 'string') return createPolicy(spec);
  if (isPolicyObject(spec)) return spec;
  if (typeof spec === 'object' && spec !== null && typeof spec.name === 'string') {
    return createPolicy(spec.name, (spec as { options?: unknown }).options);
  }
  throw new TypeError('a policy must be a name, {name, options} or a Policy object');
}

/** A Policy implements at least one primitive; {name, options} names a registered one. */
function isPolicyObject(value: unknown): value is Policy {
  if (typeof value !== 'object' || value === null) return false;
  const p = value as Record<string, unknown>;
  return typeof p.name === 'string' && ['observe', 'scoreClasses', 'scoreBlocks', 'predict', 'act', 'attach', 'answer', 'saltOf'].some((k) => typeof p[k] === 'function');
}
