/**
 * Tool-call TTL pinning, Continuum-style (arXiv 2511.02230): while a
 * session's tool call runs, keep the chain of its last request on device,
 * for at most a TTL, so the call that follows the tool finds it cached.
 */
import type { Action, Policy, PolicyContext, RuntimeEvent } from './types.js';
import { cachedChain } from './chain.js';
import { checkOptionsObject, describeValue } from '../util/check.js';

/** Options of {@link createTtlPolicy}. */
export interface TtlPolicyOptions {
  /**
   * Seconds after a tool call starts at which its pin is released even if
   * the tool has not returned; > 0, `Infinity` for no limit. Default 10.
   */
  ttlSeconds?: number;
}

const DEFAULT_TTL_SECONDS = 10;

interface ToolPin {
  key: string;
  agent: string;
  /** When the tool call started; the TTL counts from here. */
  since: number;
  /** Whether the pin action went out (and so needs an unpin). */
  pinned: boolean;
}

/** The key of a session's pin: one pin per session at a time. */
export function ttlPinKey(session: string): string {
  return `ttl:${session}`;
}

/**
 * Creates the TTL pinning policy. It scores nothing and acts in `act(now)`:
 *
 * - after a `tool.start`, it pins the chain of the session's last prompt by
 *   that agent, from the deepest of its blocks that is on device (pinning
 *   keeps blocks on device; a host block is not there to keep), under the
 *   key `ttl:<session>`. A second `tool.start` before the first ends
 *   replaces the pin and restarts the TTL;
 * - it unpins on the matching `tool.end`, on `session.end`, or once
 *   `ttlSeconds` have passed since the tool call started.
 *
 * Unpins come before pins in one `act` result, so a replaced pin is released
 * before its successor is taken. A tool call that starts and ends between
 * two `act` calls is never pinned at all.
 *
 * @throws TypeError when `options` is not an object, names an unknown
 *   option, or `ttlSeconds` is not a number.
 * @throws RangeError when `ttlSeconds` is not > 0.
 */
export function createTtlPolicy(options?: TtlPolicyOptions): Policy {
  const o = checkOptionsObject(options, 'ttl policy', ['ttlSeconds']);
  const ttlSeconds = o['ttlSeconds'] ?? DEFAULT_TTL_SECONDS;
  if (typeof ttlSeconds !== 'number') {
    throw new TypeError(`ttl policy: options.ttlSeconds must be a number, got ${describeValue(ttlSeconds)}`);
  }
  if (!(ttlSeconds > 0)) {
    throw new RangeError(`ttl policy: options.ttlSeconds must be > 0 (Infinity: no limit), got ${ttlSeconds}`);
  }

  let context: PolicyContext | undefined;
  /** Live tool calls by session, in the order they started. */
  const pins = new Map<string, ToolPin>();
  /** Keys whose pin went out and must be released at the next act. */
  const unpins: string[] = [];

  const release = (session: string): void => {
    const pin = pins.get(session);
    if (pin === undefined) return;
    pins.delete(session);
    if (pin.pinned) unpins.push(pin.key);
  };

  const leafOf = (session: string, agent: string): number | null => {
    const prompt = context!.lastPrompt(session, agent);
    if (prompt === undefined) return null;
    const { device } = cachedChain(context!.manager, prompt);
    return device.length > 0 ? device[device.length - 1]! : null;
  };

  return {
    name: 'ttl',
    attach(attached: PolicyContext): void {
      context = attached;
    },
    observe(event: RuntimeEvent): void {
      switch (event.type) {
        case 'tool.start':
          release(event.session);
          pins.set(event.session, { key: ttlPinKey(event.session), agent: event.agent.agent, since: event.time, pinned: false });
          break;
        case 'tool.end':
        case 'session.end':
          release(event.session);
          break;
        default:
          break;
      }
    },
    act(now: number): Action[] {
      if (context === undefined) throw new RangeError('ttl policy: act() called before attach()');
      const actions: Action[] = unpins.map((key): Action => ({ type: 'unpin', key }));
      unpins.length = 0;
      for (const [session, pin] of pins) {
        if (now - pin.since >= ttlSeconds) {
          pins.delete(session);
          if (pin.pinned) actions.push({ type: 'unpin', key: pin.key });
          continue;
        }
        if (pin.pinned) continue;
        const leaf = leafOf(session, pin.agent);
        if (leaf === null) {
          // Nothing of the session is on device: there is nothing to keep.
          pins.delete(session);
          continue;
        }
        pin.pinned = true;
        actions.push({ type: 'pin', key: pin.key, leafBlockId: leaf });
      }
      return actions;
    },
  };
}
