/**
 * A subscriber to an engine's KV-event stream in vLLM's ZeroMQ format,
 * keeping a {@link ReplicaCacheView} of that replica.
 *
 * The stream: a PUB socket sends multipart messages `[topic, seq, payload]`,
 * seq an 8-byte big-endian counter that rises by one per batch, payload a
 * msgpack event batch (events.ts). PUB/SUB drops messages when a
 * subscriber is slow or joins late, so the publisher also keeps its recent
 * batches behind a ROUTER "replay" socket. The replay protocol, as vLLM's
 * ZmqEventPublisher._service_replay serves it:
 *
 * - the client (here a DEALER) sends `["", start_seq]` (an empty delimiter
 *   frame and the 8-byte big-endian start); the ROUTER receives it as
 *   `[client_id, "", start_seq]` and refuses any other frame count;
 * - the publisher answers with one message per buffered batch whose seq is
 *   >= start, oldest first: `["", topic, seq, payload]` (vLLM since the
 *   topic was added to replies) or `["", seq, payload]` (earlier vLLM,
 *   SGLang);
 * - and ends with the marker seq -1 (eight 0xff bytes) and an empty payload.
 *
 * When a live message's seq skips ahead, the subscriber holds it, asks for
 * a replay from the first missing seq, applies what comes back in order,
 * and then the held message (a duplicate by then, when the buffer had it).
 * Batches the buffer no longer has are counted as lost; a replay that does
 * not answer within replayTimeoutMs is given up the same way, so the live
 * stream never stalls behind it.
 */
import { decodeEventBatch, decodeSequence, encodeSequence, type KvEventBatch } from './events.js';
import { ReplicaCacheView } from './view.js';
import { checkInt, checkOptionsObject, describeValue } from '../util/check.js';

type Zmq = typeof import('zeromq');
type Subscriber = InstanceType<Zmq['Subscriber']>;
type Dealer = InstanceType<Zmq['Dealer']>;

/** What engine event streams need, and how to get it. */
export const ZEROMQ_HINT = 'engine event streams need the optional package zeromq: `npm install zeromq`';

let zeromq: Promise<Zmq> | undefined;

/** zeromq, imported once. @throws Error saying to install zeromq when it is absent. */
export function loadZeromq(): Promise<Zmq> {
  zeromq ??= import('zeromq').then(
    (module) => module,
    (error: unknown) => {
      zeromq = undefined;
      throw new Error(`cachesage: ${ZEROMQ_HINT} (${error instanceof Error ? error.message : String(error)})`);
    },
  );
  return zeromq;
}

export interface KvEventSubscriberOptions {
  /** The engine's PUB endpoint, e.g. `tcp://127.0.0.1:5557` (vLLM's `endpoint`, with a host). */
  endpoint: string;
  /** Its ROUTER replay endpoint (vLLM's `replay_endpoint`); without one, gaps are counted, not repaired. */
  replayEndpoint?: string | null;
  /** Topic prefix to subscribe to (vLLM's `topic`); default '' (every message). */
  topic?: string;
  /** Names the replica in the view; default the endpoint. */
  replica?: string;
  /** A view to keep up to date; default a new one. */
  view?: ReplicaCacheView;
  /** Milliseconds to wait for each replay message; default 2000. */
  replayTimeoutMs?: number;
  /**
   * The sequence the view should start from (usually 0, for an engine that
   * started after the subscriber is set up): a first message above it is a
   * gap and is replayed. Default null: the first message received starts
   * the view, as vLLM's example subscriber does.
   */
  startSequence?: number | null;
}

const OPTIONS = ['endpoint', 'replayEndpoint', 'topic', 'replica', 'view', 'replayTimeoutMs', 'startSequence'];

function checkEndpoint(value: unknown, name: string): string {
  if (typeof value !== 'string' || !/^(tcp|ipc|inproc):\/\/\S+$/.test(value)) {
    throw new TypeError(`KvEventSubscriber: ${name} must be a ZeroMQ endpoint like tcp://127.0.0.1:5557, got ${describeValue(value)}`);
  }
  return value;
}

export class KvEventSubscriber {
  readonly view: ReplicaCacheView;
  readonly endpoint: string;
  readonly replayEndpoint: string | null;
  readonly #zmq: Zmq;
  readonly #sub: Subscriber;
  readonly #timeoutMs: number;
  readonly #startSequence: number | null;
  #dealer: Dealer | null = null;
  #closed = false;
  #loop: Promise<void> = Promise.resolve();
  #failure: string | null = null;
  readonly #waiters = new Set<() => void>();

  private constructor(zmq: Zmq, options: KvEventSubscriberOptions) {
    this.#zmq = zmq;
    this.endpoint = options.endpoint;
    this.replayEndpoint = options.replayEndpoint ?? null;
    this.view = options.view ?? new ReplicaCacheView(options.replica ?? options.endpoint);
    this.#timeoutMs = options.replayTimeoutMs ?? 2000;
    this.#startSequence = options.startSequence ?? null;
    this.#sub = new zmq.Subscriber({ linger: 0 });
  }

  /**
   * Connects and starts applying batches to the view. ZeroMQ connects in
   * the background, so this succeeds before the engine is up.
   *
   * @throws TypeError / RangeError naming a bad option; Error when zeromq is not installed.
   */
  static async start(options: KvEventSubscriberOptions): Promise<KvEventSubscriber> {
    const o = checkOptionsObject(options, 'KvEventSubscriber', OPTIONS) as unknown as KvEventSubscriberOptions;
    checkEndpoint(o.endpoint, 'options.endpoint');
    if (o.replayEndpoint !== undefined && o.replayEndpoint !== null) checkEndpoint(o.replayEndpoint, 'options.replayEndpoint');
    if (o.topic !== undefined && typeof o.topic !== 'string') throw new TypeError('KvEventSubscriber: options.topic must be a string');
    if (o.view !== undefined && !(o.view instanceof ReplicaCacheView)) throw new TypeError('KvEventSubscriber: options.view must be a ReplicaCacheView');
    if (o.replayTimeoutMs !== undefined) checkInt(o.replayTimeoutMs, 'KvEventSubscriber: options.replayTimeoutMs', 1, 600_000);
    if (o.startSequence !== undefined && o.startSequence !== null) {
      checkInt(o.startSequence, 'KvEventSubscriber: options.startSequence', 0, Number.MAX_SAFE_INTEGER);
    }
    const subscriber = new KvEventSubscriber(await loadZeromq(), o);
    subscriber.#sub.connect(o.endpoint);
    subscriber.#sub.subscribe(o.topic ?? '');
    subscriber.#loop = subscriber.#run();
    return subscriber;
  }

  /** Why the receive loop stopped early (a socket error), or null while it runs or after close(). */
  get failure(): string | null {
    return this.#failure;
  }

  /** Resolves once the view has reached `sequence`; rejects after `timeoutMs`. */
  waitForSequence(sequence: number, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.view.lastSequence < sequence) return;
        this.#waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`KvEventSubscriber: sequence ${sequence} not reached within ${timeoutMs} ms (at ${this.view.lastSequence})`));
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#sub.close();
    this.#dealer?.close();
    this.#dealer = null;
    await this.#loop;
  }

  async #run(): Promise<void> {
    try {
      for await (const frames of this.#sub) {
        await this.#handle(frames);
        for (const waiter of [...this.#waiters]) waiter();
      }
    } catch (error) {
      if (!this.#closed) this.#failure = error instanceof Error ? error.message : String(error);
    }
  }

  async #handle(frames: Buffer[]): Promise<void> {
    const view = this.view;
    if (frames.length !== 3) {
      view.noteMalformed(`message has ${frames.length} frames, expected 3 (topic, seq, payload)`);
      return;
    }
    let sequence: number;
    try {
      sequence = decodeSequence(frames[1]!, 'message');
      if (sequence < 0) throw new Error('message: the replay end marker arrived on the live stream');
    } catch (error) {
      view.noteMalformed((error as Error).message);
      return;
    }
    const next = view.lastSequence < 0 ? (this.#startSequence ?? sequence) : view.lastSequence + 1;
    if (sequence > next) {
      view.noteGap();
      await this.#replay(next, sequence);
    }
    this.#applyPayload(sequence, frames[2]!);
  }

  #applyPayload(sequence: number, payload: Uint8Array): void {
    let batch: KvEventBatch;
    try {
      batch = decodeEventBatch(payload);
    } catch (error) {
      this.view.noteMalformed(`seq ${sequence}: ${(error as Error).message}`, sequence);
      return;
    }
    this.view.apply(sequence, batch);
  }

  /** Replays from `from`; afterwards the view is at least at `before - 1`. */
  async #replay(from: number, before: number): Promise<void> {
    const view = this.view;
    if (this.replayEndpoint === null || this.#closed) {
      view.skipTo(before - 1);
      return;
    }
    view.noteResync();
    try {
      const dealer = this.#replaySocket();
      await dealer.send([Buffer.alloc(0), encodeSequence(from)]);
      for (;;) {
        const reply = await dealer.receive();
        // A DEALER keeps the ROUTER's empty delimiter frame; newer vLLM puts the topic before seq.
        const frames = reply[0]?.length === 0 ? reply.slice(1) : reply;
        const [seqFrame, payload] = frames.length === 3 ? [frames[1], frames[2]] : [frames[0], frames[1]];
        if (frames.length < 2 || frames.length > 3 || !seqFrame || !payload) {
          view.noteMalformed(`replay message has ${reply.length} frames, expected ["", topic?, seq, payload]`);
          continue;
        }
        const sequence = decodeSequence(seqFrame, 'replay message');
        if (sequence === -1) break;
        if (sequence > view.lastSequence + 1) view.skipTo(sequence - 1);
        this.#applyPayload(sequence, payload);
      }
    } catch (error) {
      // No answer in time (or a broken reply): a late answer must not be
      // read as the reply to the next request, so the socket goes.
      view.noteReplayFailure(`replay from ${from} failed: ${(error as Error).message}`);
      this.#dealer?.close();
      this.#dealer = null;
    }
    view.skipTo(before - 1);
  }

  #replaySocket(): Dealer {
    if (this.#dealer) return this.#dealer;
    const dealer = new this.#zmq.Dealer({ linger: 0, receiveTimeout: this.#timeoutMs, sendTimeout: this.#timeoutMs });
    dealer.connect(this.replayEndpoint!);
    this.#dealer = dealer;
    return dealer;
  }
}
