/**
 * What every workload shape builds on: content ids, the message framing of
 * the converted traces, a per-session clock, and the shape interface.
 *
 * Segment ids follow the converted traces' meaning (traces/README.md): an id
 * stands for (role, text). A reply re-sent by the agent that wrote it keeps
 * its output id ({@link asAssistant}); the same reply forwarded to another
 * agent as a user message is a different token sequence and so a different,
 * but again shared, id ({@link asUser}). Either way it costs
 * {@link FRAMING_TOKENS} more than the reply, as in the OpenAI chat framing.
 */
import { fingerprint64 } from '../trace/hashing.js';
import type { TraceCall, TraceSegment } from '../trace/format.js';
import { Rng } from './random.js';
import type { ToolProfile } from './tools.js';

/** Tokens a chat message costs beyond its text (3 framing + 1 role). */
export const FRAMING_TOKENS = 4;

/** A 16-hex content id for `text`, the same in every run and process. */
export function contentId(text: string): string {
  const { hi, lo } = fingerprint64(text);
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}

/** A reply as the generator tracks it: its id and size. */
export interface Reply {
  /** Content id of the reply text. */
  outputId: string;
  /** Tokens of the reply. */
  outputTokens: number;
}

/** The reply re-sent as an `assistant` message by the agent that wrote it. */
export function asAssistant(reply: Reply): TraceSegment {
  return { id: reply.outputId, tokens: reply.outputTokens + FRAMING_TOKENS };
}

/** The reply forwarded to another agent as a `user` message. */
export function asUser(reply: Reply): TraceSegment {
  return { id: contentId(`user\0${reply.outputId}`), tokens: reply.outputTokens + FRAMING_TOKENS };
}

/** Service time of one call: a fixed latency plus prefill and decode at fixed rates. */
export interface ServiceTime {
  /** Seconds every call takes regardless of size (queueing, network, first token). */
  latencyS: number;
  /** Prompt tokens processed per second. */
  prefillTokensPerS: number;
  /** Output tokens generated per second. */
  decodeTokensPerS: number;
}

/** Seconds with millisecond resolution, so traces stay short and exact when re-read. */
function roundTime(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}

/** Options of {@link SessionBuilder.call}. */
export interface CallOptions {
  /** Seconds between the previous reply (or the session start) and this call. */
  gapS?: number;
  /** Reuse an earlier reply's id: the model answered with exactly the same text. */
  outputId?: string;
}

/**
 * Builds one session: hands out content ids and records calls on the
 * session's clock (each call starts after the previous reply plus its gap,
 * and lasts its service time).
 */
export class SessionBuilder {
  /** Session name, as written in the trace. */
  readonly session: string;
  /** This session's own random stream. */
  readonly rng: Rng;
  /** Calls made so far, in order. */
  readonly calls: TraceCall[] = [];
  readonly #idPrefix: string;
  readonly #workload: string;
  readonly #service: ServiceTime;
  readonly #seed: number;
  #freshCount = 0;
  #now = 0;

  /**
   * @param workload the workload name; named content is shared across its sessions.
   * @param session the session name.
   * @param seed the workload seed; fresh content differs between seeds.
   * @param rng the session's random stream.
   * @param service how long calls take.
   */
  constructor(workload: string, session: string, seed: number, rng: Rng, service: ServiceTime) {
    this.session = session;
    this.rng = rng;
    this.#workload = workload;
    this.#idPrefix = `${workload}\0${seed}\0${session}\0`;
    this.#service = service;
    this.#seed = seed;
  }

  /**
   * A random stream shared by every session of the workload that asks for
   * the same label: for properties of something several sessions have in
   * common, such as the task that several trials run.
   */
  sharedRng(label: string): Rng {
    return new Rng(`${this.#workload}/${this.#seed}/shared/${label}`);
  }

  /** A segment of new text, seen nowhere else. */
  fresh(tokens: number): TraceSegment {
    return { id: contentId(`${this.#idPrefix}${this.#freshCount++}`), tokens };
  }

  /**
   * A segment whose text is fixed by `label` within the workload: every
   * session that names the same label shares it (a system prompt, a tool
   * schema, a task description reused across trials).
   */
  named(label: string, tokens: number): TraceSegment {
    return { id: contentId(`${this.#workload}\0named\0${label}`), tokens };
  }

  /**
   * A segment whose text is fixed by `label` within this session only (a
   * phase prompt that is re-sent verbatim while the state it shows is
   * unchanged).
   */
  local(label: string, tokens: number): TraceSegment {
    return { id: contentId(`${this.#idPrefix}local\0${label}`), tokens };
  }

  /** A fresh reply id, for text the model produces. */
  freshReplyId(): string {
    return this.fresh(0).id;
  }

  /** Records a call and returns its reply. */
  call(agent: string, segments: readonly TraceSegment[], outputTokens: number, options: CallOptions = {}): Reply {
    const gap = options.gapS ?? 0;
    let promptTokens = 0;
    for (const segment of segments) promptTokens += segment.tokens;
    const service = this.#service;
    const start = roundTime(this.#now + gap);
    const duration =
      service.latencyS + promptTokens / service.prefillTokensPerS + outputTokens / service.decodeTokensPerS;
    const end = roundTime(start + duration);
    this.#now = end;
    const outputId = options.outputId ?? this.freshReplyId();
    this.calls.push({
      session: this.session,
      agent,
      seq: this.calls.length,
      t: start,
      segments: segments.map((s) => ({ id: s.id, tokens: s.tokens })),
      outputTokens,
      outputId,
      tEnd: end,
    });
    return { outputId, outputTokens };
  }
}

/**
 * The statistics of the real trace a shape was fitted to (from
 * ../shared/traces/stats.json or measured on the trace the same way), which
 * the generator's output should reproduce within the tolerances its tests
 * state.
 */
export interface FitTargets {
  /** The real trace, a file in ../shared/traces. */
  trace: string;
  /** When set, the targets describe only these agents' calls (the real trace holds no others). */
  agents?: readonly string[];
  /** Distinct agents in the real trace. */
  distinctAgents: number;
  /** Calls per session of the real trace (for the orchestrator: per worker invocation). */
  callsPerSession: number;
  /** Mean prompt tokens per call. */
  meanPromptTokens: number;
  /** Mean output tokens per call. */
  meanOutputTokens: number;
  /** Shared-prefix fraction against all earlier calls (traces/README.md). */
  sharedPrefixGlobal: number;
  /** Shared-prefix fraction against earlier calls of the same session. */
  sharedPrefixInSession: number;
  /** Per-agent mean prompt and output tokens. */
  perAgent: Readonly<Record<string, { prompt: number; output: number }>>;
}

/** Parameters every shape has. */
export interface CommonParams {
  /** How long a call takes on the serving side. */
  service: ServiceTime;
  /** Mean new sessions per second of the open-loop arrival process (Poisson). */
  arrivalRatePerS: number;
}

/** A workload shape: fitted defaults and the code that builds one session from them. */
export interface WorkloadShape<P extends CommonParams> {
  /** Registry name, also the trace header's `workload`. */
  readonly name: string;
  /** One line: what real system the shape models. */
  readonly description: string;
  /**
   * The statistics the defaults were fitted to; null for a shape with no
   * public trace to fit, whose parameters follow the published description
   * named in {@link modelledOn}.
   */
  readonly targets: FitTargets | null;
  /** The public work (paper, framework) the shape follows, when it is fitted to no trace. */
  readonly modelledOn?: string;
  /** The fitted parameters. */
  readonly defaults: P;
  /**
   * The tools its agents call in the gaps between calls (tools.ts); absent
   * for a shape with no gaps. The header declares them.
   */
  readonly tools?: ToolProfile;
  /**
   * Optional: a kind for session number `index` (say, its task type), drawn
   * before the session is built and appended to its name, so that a reader
   * of the trace can see it.
   */
  sessionKind?(rng: Rng, index: number, params: P): string;
  /** Build session number `index` into `session`; `kind` is what {@link sessionKind} drew. */
  generateSession(session: SessionBuilder, index: number, params: P, kind: string | null): void;
}
