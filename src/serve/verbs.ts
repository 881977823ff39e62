/**
 * The sidecar's verbs over the in-process Runtime, shared by the JSON routes
 * and the batched endpoint so both give the same decisions: check what the
 * caller's token may touch, call the runtime, count what the metrics need.
 * Inputs arrive schema-checked; the runtime's own checks still run, and its
 * TypeError/RangeError become 400s naming the field.
 */
import type { CopyPlan } from '../blocks/types.js';
import type { FrameworkEvent, PredictQuery, Prediction } from '../policies/types.js';
import type { ActResult, AdmitDecision, AdmitRequest, Runtime } from '../runtime/runtime.js';
import type { Access } from './access.js';
import { badRequest, forbidden } from './errors.js';
import type { SidecarMetrics } from './metrics.js';
import { Ownership } from './ownership.js';

/** Runs a runtime call; its argument errors are the client's (400), anything else a bug. */
function guarded<T>(call: () => T): T {
  try {
    return call();
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) throw badRequest(error.message);
    throw error;
  }
}

function ignoredCounts(runtime: Runtime): Record<string, number> {
  return runtime.stats.ignored;
}

export class Verbs {
  readonly owners = new Ownership();

  constructor(
    readonly runtime: Runtime,
    readonly metrics: SidecarMetrics,
  ) {}

  /** A framework event; returns why the runtime ignored it (it did not fit the sessions), or null. */
  observe(access: Access, event: FrameworkEvent): string | null {
    const owners = this.owners;
    const e = { ...event, session: owners.intern(event.session) } as FrameworkEvent;
    owners.checkSession(access, e.session, e.type);
    if (e.type === 'session.start') {
      e.workload = owners.intern(e.workload);
      owners.checkWorkload(access, e.workload, `${e.type}: workload`);
    } else if (e.type !== 'session.end') {
      e.agent = { workload: owners.intern(e.agent.workload), agent: owners.intern(e.agent.agent) };
      owners.checkWorkload(access, e.agent.workload, `${e.type}: agent.workload`);
    }
    const before = ignoredCounts(this.runtime);
    guarded(() => this.runtime.observe(e));
    const after = ignoredCounts(this.runtime);
    for (const reason of Object.keys(after)) {
      if (after[reason] !== before[reason]) return reason;
    }
    if (e.type === 'session.start') owners.sessionStarted(e.session, e.workload);
    return null;
  }

  /** Admits a request: its decision, or null when the device tier cannot hold it now. */
  admit(access: Access, request: AdmitRequest): AdmitDecision | null {
    const owners = this.owners;
    owners.checkNewRequest(request.requestId, 'admit');
    let workload: string | null = null;
    if (request.agent !== undefined) {
      workload = owners.intern(request.agent.workload);
      owners.checkWorkload(access, workload, 'admit: agent.workload');
      request.agent = { workload, agent: owners.intern(request.agent.agent) };
    } else if (!access.all) {
      throw forbidden('admit: this token may only admit requests tagged with a session and an agent of its workloads');
    }
    if (request.session !== undefined) {
      request.session = owners.intern(request.session);
      owners.checkSession(access, request.session, 'admit');
    }
    const decision = guarded(() => this.runtime.admit(request));
    if (decision === null) {
      this.metrics.refused(workload ?? undefined);
      return null;
    }
    owners.admitted(request.requestId, workload);
    if (request.session !== undefined && workload !== null) owners.sessionStarted(request.session, workload);
    const blockSize = this.runtime.manager.blockSize;
    this.metrics.admitted(workload ?? undefined, request.numTokens, decision.cachedDeviceTokens, decision.loadedBlocks * blockSize);
    return decision;
  }

  prefillDone(access: Access, requestId: number, time: number | undefined): Int32Array {
    this.owners.request(access, requestId, 'prefill-done');
    return guarded(() => this.runtime.prefillDone(requestId, time));
  }

  /** New block ids for `tokens` more tokens, or null when the device tier cannot hold them now. */
  decode(access: Access, requestId: number, tokens: number, hashes: BigUint64Array | undefined, time: number | undefined): Int32Array | null {
    this.owners.request(access, requestId, 'decode');
    return guarded(() => this.runtime.decode(requestId, tokens, hashes, time));
  }

  release(access: Access, requestId: number, time: number | undefined): void {
    this.owners.request(access, requestId, 'release');
    guarded(() => this.runtime.release(requestId, time));
    this.owners.released(requestId);
  }

  /** act() moves every workload's blocks, so only a token for all workloads may call it. */
  act(access: Access, now: number | undefined): ActResult {
    if (!access.all) throw forbidden('act: act moves the blocks of every workload; it needs a token whose workloads are "*"');
    const result = guarded(() => this.runtime.act(now));
    this.metrics.actions(result);
    return result;
  }

  predict(access: Access, query: PredictQuery): Prediction | null {
    const session = this.owners.intern(query.session);
    this.owners.checkSession(access, session, 'predict');
    const prediction = guarded(() => this.runtime.predict({ ...query, session }));
    if (prediction !== null && !access.all && !access.workloads.has(prediction.workload)) {
      throw forbidden(`predict: session ${JSON.stringify(session)} belongs to a workload this token may not use`);
    }
    return prediction;
  }

  explain(access: Access, blockId: number): Record<string, unknown> {
    const view = guarded(() => this.runtime.explain(blockId));
    if (!access.all) {
      const workload = view['workload'];
      if (typeof workload !== 'string' || !access.workloads.has(workload)) {
        throw forbidden(`explain: block ${blockId} holds no data of a workload this token may use`);
      }
    }
    return view;
  }

  /** The copies queued since the last call, for the engine's data plane to run in order. */
  takeCopies(): CopyPlan {
    return this.runtime.takeCopyPlan();
  }
}
