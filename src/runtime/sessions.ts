/**
 * The session model: the one record of every session's lifecycle (live,
 * current agent, step running, step times) and its last prompts, owned by the
 * runtime and read by policies through their context. Framework events
 * move it; so do tagged engine calls, which open an implicit step when no
 * framework step of their agent is running (an engine-only integration
 * reports no steps) and close it at their release.
 *
 * Each transition returns the events policies observe for it, in order;
 * the book itself never calls a policy.
 *
 * A session's time should not go back: each framework event and tagged
 * engine call of a session carries a time no earlier than the session's
 * latest. One that does is applied as given (refusing it would leave a
 * request pinned or a step open) and counted in RuntimeStats.timeWentBack,
 * which names the last one. Sessions are not ordered among themselves: a
 * simulator or a framework may report one session's event after a later
 * event of another.
 */
import type { AgentRef, FrameworkEvent, ObservedFrameworkEvent, SessionView, StepOrigin } from '../policies/types.js';
import type { NameRegistry } from './names.js';

interface SessionRecord extends SessionView {
  live: boolean;
  agent: string | null;
  inStep: boolean;
  implicitStep: boolean;
  stepStartedAt: number;
  stepEndedAt: number | null;
  lastEventAt: number;
}

/** A session's latest time, and what carried it (an event type or an engine call). */
interface SessionClock {
  time: number;
  what: string;
}

/** Times that went back within their session (RuntimeStats.timeWentBack). */
export interface TimeWentBack {
  /** Events and tagged engine calls whose time was earlier than their session's latest. */
  count: number;
  /** The largest step back, seconds. */
  largestSeconds: number;
  /** The last one: session, what it was, both times. */
  last: string | null;
}

/** The last prompt of each agent in a session, and of any agent. */
interface SessionPrompts {
  byAgent: Map<string, BigUint64Array>;
  any: BigUint64Array | undefined;
}

export class SessionBook {
  readonly #registry: NameRegistry;
  readonly #byName = new Map<string, SessionRecord>();
  readonly #byId = new Map<number, SessionRecord>();
  readonly #liveByWorkload = new Map<number, Set<SessionRecord>>();
  /** By session name, kept across a session's restarts: its blocks may still be cached. */
  readonly #prompts = new Map<string, SessionPrompts>();
  /** By session name, kept across restarts. */
  readonly #clocks = new Map<string, SessionClock>();

  readonly #timeWentBack: TimeWentBack;

  /** `timeWentBack` is counted into as times go back (the runtime's stats hold it). */
  constructor(registry: NameRegistry, timeWentBack: TimeWentBack = { count: 0, largestSeconds: 0, last: null }) {
    this.#registry = registry;
    this.#timeWentBack = timeWentBack;
  }

  get(name: string): SessionView | undefined {
    return this.#byName.get(name);
  }

  byId(id: number): SessionView | undefined {
    return this.#byId.get(id);
  }

  /** Every session, in the order each first started. */
  all(): Iterable<SessionView> {
    return this.#byName.values();
  }

  liveOf(workloadId: number): Iterable<SessionView> {
    return this.#liveByWorkload.get(workloadId) ?? [];
  }

  get liveCount(): number {
    let n = 0;
    for (const set of this.#liveByWorkload.values()) n += set.size;
    return n;
  }

  lastPrompt(session: string, agent?: string): BigUint64Array | undefined {
    const p = this.#prompts.get(session);
    if (!p) return undefined;
    return agent === undefined ? p.any : p.byAgent.get(agent);
  }

  /** Records a prompt (hashes of its full blocks) as the session's last, and its agent's when given. */
  notePrompt(session: string, agent: string | undefined, hashes: BigUint64Array): void {
    let p = this.#prompts.get(session);
    if (!p) this.#prompts.set(session, (p = { byAgent: new Map(), any: undefined }));
    p.any = hashes;
    if (agent !== undefined) p.byAgent.set(agent, hashes);
  }

  /**
   * Notes the time of an event or tagged engine call applied to a session
   * (`what`: the event type or the call's name). A time earlier than the
   * session's latest is counted; the latest stays the latest.
   */
  noteTime(session: string, time: number, what: string): void {
    const latest = this.#clocks.get(session);
    if (latest === undefined) {
      this.#clocks.set(session, { time, what });
      return;
    }
    if (time >= latest.time) {
      latest.time = time;
      latest.what = what;
      return;
    }
    const back = this.#timeWentBack;
    back.count++;
    back.largestSeconds = Math.max(back.largestSeconds, latest.time - time);
    back.last = `${what} at ${time} in session ${JSON.stringify(session)}, after its ${latest.what} at ${latest.time}`;
  }

  /**
   * Why a well-formed framework event does not fit the sessions as they
   * are (the runtime counts and ignores it), or null when it fits.
   */
  misfit(e: FrameworkEvent): string | null {
    const session = this.#byName.get(e.session);
    if (e.type === 'session.start') return session?.live ? 'session.start of a live session' : null;
    if (!session || !session.live) return `${e.type} of an unknown or ended session`;
    if (e.type === 'session.end') return null;
    if (e.agent.workload !== session.workload) return `${e.type} with an agent of another workload`;
    if (e.type === 'step.end' && (!session.inStep || session.agent !== e.agent.agent)) return 'step.end without its step.start';
    return null;
  }

  /** Applies a framework event that fits (see {@link misfit}); returns what policies observe. */
  apply(e: FrameworkEvent): ObservedFrameworkEvent {
    switch (e.type) {
      case 'session.start':
        this.#start(e.session, e.workload, e.time);
        return e;
      case 'step.start':
        return this.#stepStart(this.#byName.get(e.session)!, e.agent, e.time, false);
      case 'step.end':
        return this.#stepEnd(this.#byName.get(e.session)!, e.agent, e.time, false);
      case 'tool.start':
      case 'tool.end':
        // A running tool is activity: it keeps a waiting session from looking idle.
        this.#byName.get(e.session)!.lastEventAt = e.time;
        return e;
      case 'session.end': {
        const s = this.#byName.get(e.session)!;
        s.live = false;
        s.lastEventAt = e.time;
        this.#liveByWorkload.get(s.workloadId)?.delete(s);
        return e;
      }
      default:
        return e;
    }
  }

  /**
   * A tagged engine call was admitted: starts its session if it is not
   * live and opens an implicit step unless its agent's step is running.
   * Records the prompt as the agent's last. Returns what policies observe.
   */
  admitted(name: string, agent: AgentRef, hashes: BigUint64Array, time: number): ObservedFrameworkEvent[] {
    const observed: ObservedFrameworkEvent[] = [];
    let s = this.#byName.get(name);
    if (!s || !s.live) {
      s = this.#start(name, agent.workload, time);
      observed.push({ type: 'session.start', time, session: name, workload: agent.workload });
    }
    this.notePrompt(name, agent.agent, hashes);
    if (!s.inStep || s.agent !== agent.agent) observed.push(this.#stepStart(s, agent, time, true));
    return observed;
  }

  /**
   * A tagged engine call was released: the session continues from its
   * prompt and the reply decoded so far, and an implicit step ends.
   */
  released(name: string, agent: AgentRef | undefined, hashes: BigUint64Array, time: number): ObservedFrameworkEvent[] {
    this.notePrompt(name, agent?.agent, hashes);
    const s = this.#byName.get(name);
    if (!s) return [];
    return s.implicitStep && s.inStep ? [this.#stepEnd(s, { workload: s.workload, agent: s.agent! }, time, true)] : [];
  }

  /** The session a tagged call belongs to, checked against its agent's workload. */
  checkWorkload(name: string, agent: AgentRef, op: string): void {
    const s = this.#byName.get(name);
    if (s && s.live && s.workload !== agent.workload) {
      throw new RangeError(`${op}: session ${name} belongs to workload ${s.workload}, not ${agent.workload}`);
    }
  }

  #start(name: string, workload: string, time: number): SessionRecord {
    const record: SessionRecord = {
      name,
      id: this.#registry.sessionId(name),
      workload,
      workloadId: this.#registry.workloadId(workload),
      live: true,
      agent: null,
      inStep: false,
      implicitStep: false,
      stepStartedAt: time,
      stepEndedAt: null,
      lastEventAt: time,
    };
    this.#byName.set(name, record);
    this.#byId.set(record.id, record);
    let live = this.#liveByWorkload.get(record.workloadId);
    if (!live) this.#liveByWorkload.set(record.workloadId, (live = new Set()));
    live.add(record);
    return record;
  }

  #stepStart(s: SessionRecord, agent: AgentRef, time: number, implicit: boolean): ObservedFrameworkEvent & { type: 'step.start' } {
    const previous: StepOrigin = { agent: s.agent, inStep: s.inStep, stepEndedAt: s.stepEndedAt };
    s.agent = agent.agent;
    s.inStep = true;
    s.implicitStep = implicit;
    s.stepStartedAt = time;
    s.lastEventAt = time;
    return { type: 'step.start', time, session: s.name, agent, implicit, previous };
  }

  #stepEnd(s: SessionRecord, agent: AgentRef, time: number, implicit: boolean): ObservedFrameworkEvent & { type: 'step.end' } {
    s.inStep = false;
    s.implicitStep = false;
    s.stepEndedAt = time;
    s.lastEventAt = time;
    return { type: 'step.end', time, session: s.name, agent, implicit };
  }
}
