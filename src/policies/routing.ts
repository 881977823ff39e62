/**
 * Routing across serving replicas, in front of one runtime per replica.
 * The cache-aware router keeps each replica's cache contents (block hash ->
 * tier) current from the block events the replicas publish, and sends a
 * request where its prompt's longest prefix is cached on device, less a
 * penalty for the replica's load (SGLang's cache-aware router, scored as
 * one number). Round-robin and session-sticky routing are the baselines.
 */
import { EventKind, Tier, type BlockEvents } from '../blocks/types.js';
import { checkInt, checkNumber, checkOptionsObject, describeValue } from '../util/check.js';

/** The router kinds, as `--router` spells them. */
export const ROUTER_KINDS = ['cache', 'round-robin', 'sticky'] as const;
export type RouterKind = (typeof ROUTER_KINDS)[number];

/** Options of {@link createRouter}. */
export interface RouterOptions {
  /** Default 'cache'. */
  kind?: RouterKind;
  replicas: number;
  /** Tokens of prefix match one outstanding request (waiting or running) on a replica is worth; >= 0. Default 16 (one block of the default size). */
  loadPenaltyTokens?: number;
}

/** A request as the router sees it. */
export interface RouteRequest {
  session: string;
  /** Full blocks of the prompt. */
  hashes: BigUint64Array;
  blockSize: number;
}

export interface Router {
  readonly kind: RouterKind;
  readonly replicas: number;
  /** A replica's block events (drained by its runtime), in order. */
  noteBlocks(replica: number, events: BlockEvents): void;
  /** The replica for a request, given each replica's outstanding requests. */
  route(request: RouteRequest, outstanding: readonly number[]): number;
  /** Leading prompt blocks the router believes replica `replica` holds on device. */
  deviceMatch(replica: number, hashes: BigUint64Array): number;
  /** A session ended: sticky routing forgets it. */
  endSession(session: string): void;
}

const DEFAULT_LOAD_PENALTY_TOKENS = 16;

/**
 * Creates a router.
 *
 * @throws TypeError when `options` is not an object, names an unknown
 *   option, or an option has the wrong type.
 * @throws RangeError when `kind` is unknown, `replicas` is not in
 *   [1, 1024] or `loadPenaltyTokens` is negative.
 */
export function createRouter(options: RouterOptions): Router {
  const o = checkOptionsObject(options, 'router', ['kind', 'replicas', 'loadPenaltyTokens']);
  const kind = o['kind'] ?? 'cache';
  if (typeof kind !== 'string') throw new TypeError(`router: options.kind must be a string, got ${describeValue(kind)}`);
  if (!(ROUTER_KINDS as readonly string[]).includes(kind)) {
    throw new RangeError(`router: options.kind must be one of ${ROUTER_KINDS.join(', ')}, got ${JSON.stringify(kind)}`);
  }
  const replicas = checkInt(o['replicas'], 'router: options.replicas', 1, 1024);
  const loadPenalty = checkNumber(o['loadPenaltyTokens'] ?? DEFAULT_LOAD_PENALTY_TOKENS, 'router: options.loadPenaltyTokens', 0, Number.MAX_VALUE);
  /** Per replica: block hash -> tier, from its events. */
  const contents = Array.from({ length: replicas }, () => new Map<bigint, number>());
  const sticky = new Map<string, number>();
  let next = 0;
  const roundRobin = () => {
    const r = next;
    next = (next + 1) % replicas;
    return r;
  };
  const deviceMatch = (replica: number, hashes: BigUint64Array): number => {
    const held = contents[replica]!;
    let n = 0;
    while (n < hashes.length && held.get(hashes[n]!) === Tier.Device) n++;
    return n;
  };

  return {
    kind: kind as RouterKind,
    replicas,
    noteBlocks(replica: number, events: BlockEvents): void {
      const held = contents[replica]!;
      for (let i = 0; i < events.kind.length; i++) {
        if (events.kind[i] === EventKind.Removed) held.delete(events.hash[i]!);
        else held.set(events.hash[i]!, events.tier[i]!);
      }
    },
    route(request: RouteRequest, outstanding: readonly number[]): number {
      if (kind === 'round-robin') return roundRobin();
      if (kind === 'sticky') {
        let r = sticky.get(request.session);
        if (r === undefined) sticky.set(request.session, (r = roundRobin()));
        return r;
      }
      let best = 0;
      let bestScore = -Infinity;
      for (let r = 0; r < replicas; r++) {
        const score = deviceMatch(r, request.hashes) * request.blockSize - loadPenalty * outstanding[r]!;
        // Ties: the less loaded, then the lower index.
        if (score > bestScore || (score === bestScore && outstanding[r]! < outstanding[best]!)) {
          best = r;
          bestScore = score;
        }
      }
      return best;
    },
    deviceMatch,
    endSession(session: string): void {
      sticky.delete(session);
    },
  };
}
