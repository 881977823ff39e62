/**
 * The engine contract: admit, prefill done, decode and release of LLM
 * calls. Each call moves the block manager, files committed blocks under
 * score classes, moves the session model for tagged calls, hands the
 * events to the policies and rescores what changed.
 *
 * Misuse throws before anything changes: a TypeError for a wrong type, a
 * RangeError for a value out of range or an unknown or already admitted
 * request. Running out of device room is a normal null. A tagged call
 * earlier than its session's latest time is applied and counted
 * (sessions.ts).
 */
import { soleUnpinnedBlocks } from '../blocks/sole_blocks.js';
import { checkHashes, checkRequestId } from '../blocks/validate.js';
import type { AgentRef } from '../policies/types.js';
import { checkInt } from '../util/check.js';
import { sharedPrefixLength } from '../util/words.js';
import { HOLD_ID_BASE } from './actions.js';
import { Staleness } from './classes.js';
import { checkAgentRef, checkTime } from './events.js';
import { checkName } from './names.js';
import { drainBlockEvents, emit, rescore, type RuntimeParts } from './parts.js';
import type { AdmitDecision, AdmitRequest } from './types.js';

interface RequestState {
  requestId: number;
  session: string | undefined;
  agent: AgentRef | undefined;
  /**
   * The request's chain: its first `knownHashes` entries are the hashes the
   * engine reported (prompt, then decoded blocks). Decoded ones are
   * appended in place, the buffer doubling when full, so a decode step
   * copies nothing; entries below knownHashes never change, so views of
   * them (a session's last prompt) stay valid.
   */
  hashes: BigUint64Array;
  knownHashes: number;
  /** The request's block ids as the manager last reported them; null after an append that reported only the new ones. */
  blocks: Int32Array | null;
}

export class RequestBook {
  readonly #parts: RuntimeParts;
  readonly #requests = new Map<number, RequestState>();

  constructor(parts: RuntimeParts) {
    this.#parts = parts;
  }

  get size(): number {
    return this.#requests.size;
  }

  admit(request: AdmitRequest): AdmitDecision | null {
    const parts = this.#parts;
    const { manager, registry, sessions, stats } = parts;
    if (typeof request !== 'object' || request === null) throw new TypeError('admit: request must be an object');
    const requestId = checkRequestId(request.requestId, 'admit');
    if (requestId >= HOLD_ID_BASE) throw new RangeError(`admit: requestId must be below 2^52, got ${requestId}`);
    checkHashes(request.hashes, 'admit: hashes');
    checkInt(request.numTokens, 'admit: numTokens', 1, 0x7fffffff);
    const time = request.time === undefined ? parts.now() : checkTime(request.time, 'admit: time');
    if (request.session !== undefined) checkName(request.session, 'admit: session');
    if (request.agent !== undefined) checkAgentRef(request.agent, 'admit: agent');
    if ((request.session === undefined) !== (request.agent === undefined)) {
      throw new TypeError('admit: session and agent go together (both or neither)');
    }
    if (this.#requests.has(requestId)) throw new RangeError(`admit: request ${requestId} is already admitted`);
    const { session, agent } = request;
    if (session !== undefined && agent !== undefined) sessions.checkWorkload(session, agent, 'admit');

    const tags = session !== undefined && agent !== undefined
      ? { workload: registry.workloadId(agent.workload), agent: registry.agentIndex(agent.workload, agent.agent), session: registry.sessionId(session) }
      : undefined;
    const admitted = manager.admit(requestId, request.hashes, request.numTokens, tags);
    if (!admitted) {
      stats.refused++;
      return null;
    }
    stats.admitted++;
    const decision = parts.remote === null ? admitted : { ...admitted, remoteBlocks: parts.remote.admitted(requestId, request.hashes, admitted) };
    const fullBlocks = Math.floor(request.numTokens / manager.blockSize);
    this.#requests.set(requestId, {
      requestId,
      session,
      agent,
      hashes: request.hashes,
      knownHashes: Math.min(request.hashes.length, fullBlocks),
      blocks: admitted.blockIds,
    });
    const hits = admitted.cachedDeviceTokens / manager.blockSize + admitted.loadedBlocks;
    for (let i = 0; i < hits; i++) {
      if (parts.prefetched.delete(admitted.blockIds[i]!)) stats.prefetch.used++;
    }
    let previous: { shared: number; length: number } | undefined;
    let moved: ReturnType<typeof sessions.admitted> = [];
    if (session !== undefined && agent !== undefined) {
      sessions.noteTime(session, time, 'admit');
      // The previous prompt of this agent in this session, past where the new
      // one diverges, is dead for it (cachesage.md: stale chains). Only
      // observers and the class book care.
      if (parts.eventsRead) previous = this.#markPreviousStale(session, agent, request.hashes);
      moved = sessions.admitted(session, agent, request.hashes, time);
    }
    drainBlockEvents(parts, time);
    parts.scoring.classify(admitted.blockIds);
    if (parts.eventsRead) {
      for (const event of moved) emit(parts, event);
      // Built whole, one shape for every admit: conditional spreads cost microseconds here.
      emit(parts, {
        type: 'admit',
        time,
        requestId,
        session,
        agent,
        hashes: request.hashes,
        blockIds: admitted.blockIds,
        numTokens: request.numTokens,
        cachedDeviceTokens: admitted.cachedDeviceTokens,
        loadedBlocks: admitted.loadedBlocks,
        extendsPrevious: previous === undefined ? undefined : previous.shared >= previous.length,
        sharedWithPrevious: previous?.shared,
        previousBlocks: previous?.length,
      });
    }
    rescore(parts, admitted.blockIds);
    return decision;
  }

  prefillDone(requestId: number, time: number | undefined): Int32Array {
    const parts = this.#parts;
    const request = this.#request(requestId, 'prefillDone');
    const t = time === undefined ? parts.now() : checkTime(time, 'prefillDone: time');
    const blockIds = parts.manager.commit(requestId, request.knownHashes);
    request.blocks = blockIds;
    if (request.session !== undefined) parts.sessions.noteTime(request.session, t, 'prefillDone');
    drainBlockEvents(parts, t);
    parts.scoring.classify(blockIds);
    emit(parts, { type: 'prefill.done', time: t, requestId, session: request.session, agent: request.agent, blockIds });
    rescore(parts, blockIds);
    return blockIds;
  }

  decode(requestId: number, tokens: number, hashes: BigUint64Array | undefined, time: number | undefined): Int32Array | null {
    const parts = this.#parts;
    const request = this.#request(requestId, 'decode');
    const t = time === undefined ? parts.now() : checkTime(time, 'decode: time');
    const added = parts.manager.append(requestId, tokens, hashes);
    if (added === null) return null;
    if (request.session !== undefined) parts.sessions.noteTime(request.session, t, 'decode');
    let committed: Int32Array | undefined;
    if (hashes && hashes.length > 0) {
      const known = request.knownHashes + hashes.length;
      // After admit knownHashes is the prompt array's length (the caller's
      // array, never written here), so the first append always copies it.
      if (known > request.hashes.length) {
        const grown = new BigUint64Array(Math.max(known, 2 * request.knownHashes, 16));
        grown.set(request.hashes.subarray(0, request.knownHashes));
        request.hashes = grown;
      }
      request.hashes.set(hashes, request.knownHashes);
      request.knownHashes = known;
      // Blocks whose hashes the engine reports are computed: they join the cache.
      committed = parts.manager.commit(requestId, known);
      request.blocks = committed;
    } else if (added.length > 0) {
      request.blocks = null;
    }
    drainBlockEvents(parts, t);
    if (committed) parts.scoring.classify(committed);
    emit(parts, { type: 'decode', time: t, requestId, session: request.session, agent: request.agent, tokens });
    if (committed) rescore(parts, committed);
    return added;
  }

  release(requestId: number, time: number | undefined): void {
    const parts = this.#parts;
    const request = this.#request(requestId, 'release');
    const t = time === undefined ? parts.now() : checkTime(time, 'release: time');
    const blockIds = request.blocks ?? parts.manager.requestBlocks(requestId);
    parts.manager.release(requestId);
    this.#requests.delete(requestId);
    if (request.session !== undefined) parts.sessions.noteTime(request.session, t, 'release');
    // The prompt the session continues from includes the reply decoded so far.
    const moved = request.session === undefined
      ? []
      : parts.sessions.released(request.session, request.agent, request.hashes.subarray(0, request.knownHashes), t);
    drainBlockEvents(parts, t);
    for (const event of moved) emit(parts, event);
    emit(parts, { type: 'release', time: t, requestId, session: request.session, agent: request.agent, blockIds });
    rescore(parts, blockIds);
  }

  #request(requestId: number, op: string): RequestState {
    checkRequestId(requestId, op);
    const request = this.#requests.get(requestId);
    if (!request) throw new RangeError(`${op}: unknown request ${requestId} (never admitted or already released)`);
    return request;
  }

  /**
   * How much of the agent's previous prompt in the session the new one
   * shares (undefined when there is none). Blocks of the previous prompt
   * past the shared prefix that only this session and agent used become
   * stale.
   */
  #markPreviousStale(session: string, agent: AgentRef, hashes: BigUint64Array): { shared: number; length: number } | undefined {
    const { manager, registry, sessions, scoring } = this.#parts;
    // A session that ended and starts again with this call keeps its prompts.
    const previous = sessions.lastPrompt(session, agent.agent);
    if (!previous) return undefined;
    const shared = sharedPrefixLength(previous, hashes);
    const result = { shared, length: previous.length };
    if (shared >= previous.length || scoring.mode !== 'classes') return result;
    const match = manager.lookup(previous);
    const stale = soleUnpinnedBlocks(manager.metadata, match.blockIds, shared, registry.sessionId(session), registry.agentIndex(agent.workload, agent.agent));
    if (stale.length > 0) scoring.classes.classify(stale, Staleness.Stale);
    return result;
  }
}
