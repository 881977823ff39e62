/**
 * ChatDev-style role play: every phase is a fresh conversation between an
 * assistant agent and a user agent on one phase prompt. The assistant sends
 * [its system prompt, the phase prompt as user, ...]; the user agent
 * [its system prompt, the phase prompt as assistant, the assistant's reply
 * as user, ...] (camel/agents/role_playing.py on ChatDev's chatdev1.0
 * branch). System prompts embed the task, so each session draws its own.
 */
import type { TraceSegment } from '../trace/format.js';
import type { GapDist, TokenDist } from './random.js';
import { asAssistant, asUser, type Reply, type SessionBuilder } from './session.js';

/** The role-play phases of one session. */
export class RolePlay {
  readonly #s: SessionBuilder;
  readonly #systemSizes: Readonly<Record<string, TokenDist>>;
  readonly #gap: GapDist;
  readonly #systems = new Map<string, TraceSegment>();
  readonly #promptTokens = new Map<string, number>();
  #phases = 0;

  /**
   * @param systems system prompt size per agent, drawn once per session.
   * @param gap pause before each call.
   */
  constructor(s: SessionBuilder, systems: Readonly<Record<string, TokenDist>>, gap: GapDist) {
    this.#s = s;
    this.#systemSizes = systems;
    this.#gap = gap;
  }

  /** The agent's system prompt in this session. */
  system(agent: string): TraceSegment {
    let segment = this.#systems.get(agent);
    if (segment === undefined) {
      const dist = this.#systemSizes[agent];
      if (dist === undefined) throw new RangeError(`role play: no system prompt size for ${JSON.stringify(agent)}`);
      segment = this.#s.fresh(this.#s.rng.tokens(dist));
      this.#systems.set(agent, segment);
    }
    return segment;
  }

  /**
   * One phase: a fresh conversation between `assistant` and `user` on a
   * phase prompt. `stateLabel` names the text the prompt shows; phases with
   * equal labels send identical prompts, so only the first one's
   * `promptTokens` counts. `outputs[k]` is the size of turn
   * k's reply (turns alternate assistant, user, ...), or a fixed reply id to
   * repeat earlier text.
   */
  phase(
    assistant: string,
    user: string,
    promptTokens: number,
    stateLabel: string | null,
    outputs: readonly (number | Reply)[],
  ): Reply[] {
    const s = this.#s;
    const label = stateLabel ?? `phase-${this.#phases}`;
    this.#phases++;
    const tokens = this.#promptTokens.get(label) ?? promptTokens;
    this.#promptTokens.set(label, tokens);
    const asSeenBy = [
      [this.system(assistant), s.local(`${label}/user`, tokens)],
      [this.system(user), s.local(`${label}/assistant`, tokens)],
    ] as const;
    const conversations: TraceSegment[][] = [[...asSeenBy[0]], [...asSeenBy[1]]];
    const replies: Reply[] = [];
    for (let turn = 0; turn < outputs.length; turn++) {
      const side = turn % 2;
      const agent = side === 0 ? assistant : user;
      const planned = outputs[turn] as number | Reply;
      const options = typeof planned === 'number' ? {} : { outputId: planned.outputId };
      const output = typeof planned === 'number' ? planned : planned.outputTokens;
      const reply = s.call(agent, conversations[side] as TraceSegment[], output, {
        ...options,
        gapS: s.rng.gap(this.#gap),
      });
      replies.push(reply);
      (conversations[side] as TraceSegment[]).push(asAssistant(reply));
      (conversations[1 - side] as TraceSegment[]).push(asUser(reply));
    }
    return replies;
  }
}
