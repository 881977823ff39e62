/**
 * KvEventSubscriber against a real publisher process speaking vLLM's
 * ZeroMQ format: both event forms, a deliberate sequence gap repaired
 * through the replay socket, malformed messages counted, and the view
 * ending equal to the publisher's own account of its cache.
 */
import { afterEach, describe, expect, it } from 'vitest';

import { KvEventSubscriber } from '../../src/kvevents/subscriber.js';
import { PublisherProcess, type Truth } from './publisher_process.js';

let publisher: PublisherProcess | null = null;
let subscriber: KvEventSubscriber | null = null;

afterEach(async () => {
  await subscriber?.close();
  publisher?.kill();
  subscriber = null;
  publisher = null;
});

async function run(args: string[], replay: boolean | string): Promise<{ truth: Truth; subscriber: KvEventSubscriber }> {
  publisher = new PublisherProcess(args);
  const endpoints = await publisher.next<{ endpoint: string; replay: string }>();
  subscriber = await KvEventSubscriber.start({
    endpoint: endpoints.endpoint,
    replayEndpoint: typeof replay === 'string' ? replay : replay ? endpoints.replay : null,
    replica: 'engine-0',
    startSequence: 0,
    replayTimeoutMs: typeof replay === 'string' ? 200 : 2000,
  });
  // Let the subscription reach the publisher; whatever is missed anyway is replayed.
  await new Promise((resolve) => setTimeout(resolve, 150));
  publisher.send('go');
  const truth = await publisher.next<Truth>();
  await subscriber.waitForSequence(truth.lastSequence, 10_000);
  return { truth, subscriber };
}

describe('KvEventSubscriber', () => {
  it('repairs a deliberate gap through the replay socket and ends equal to the publisher', async () => {
    const { truth, subscriber } = await run([], true);
    const view = subscriber.view.toJSON();
    expect(view.media).toEqual(truth.media);
    expect(Object.keys(view.media).sort()).toEqual(['CPU', 'GPU']);
    expect(view.lastSequence).toBe(truth.lastSequence);
    // The withheld batches 14-16 and 30 (one replay may cover both when the publisher is ahead).
    expect(view.counts.gaps).toBeGreaterThanOrEqual(1);
    expect(view.counts.resyncs).toBe(view.counts.gaps);
    expect(view.counts.lostBatches).toBe(0);
    // The schema-breaking batch and the two-frame message.
    expect(view.counts.malformed).toBe(2);
    expect(view.lastError).toMatch(/batch\.ts must be a finite number/);
    expect(view.counts.clears).toBe(1);
    expect(subscriber.failure).toBeNull();
  });

  it("reads earlier vLLM's replay replies, which carry no topic frame", async () => {
    const { truth, subscriber } = await run(['--legacy-replay'], true);
    expect(subscriber.view.toJSON().media).toEqual(truth.media);
    expect(subscriber.view.counts.lostBatches).toBe(0);
  });

  it('without a replay endpoint counts the withheld batches as lost and goes on', async () => {
    const { truth, subscriber } = await run([], false);
    const counts = subscriber.view.counts;
    expect(subscriber.view.lastSequence).toBe(truth.lastSequence);
    expect(counts.resyncs).toBe(0);
    expect(counts.lostBatches).toBeGreaterThanOrEqual(4);
    expect(subscriber.view.toJSON().media).not.toEqual(truth.media);
  });

  it('gives up a replay that gets no answer, counts it, and keeps following the stream', async () => {
    // Nothing listens there: the request cannot even be sent within the timeout.
    const { truth, subscriber } = await run([], 'tcp://127.0.0.1:1');
    const counts = subscriber.view.counts;
    expect(subscriber.view.lastSequence).toBe(truth.lastSequence);
    expect(counts.replayFailures).toBe(counts.resyncs);
    expect(counts.replayFailures).toBeGreaterThanOrEqual(2);
    expect(counts.lostBatches).toBeGreaterThanOrEqual(4);
    expect(subscriber.view.lastError).toMatch(/replay from \d+ failed/);
  });

  it('refuses bad options, naming them', async () => {
    await expect(KvEventSubscriber.start({ endpoint: 'http://127.0.0.1:5557' })).rejects.toThrow(/options\.endpoint must be a ZeroMQ endpoint/);
    await expect(KvEventSubscriber.start({ endpoint: 'tcp://127.0.0.1:5557', replayTimeoutMs: 0 })).rejects.toThrow(/options\.replayTimeoutMs must be in/);
    await expect(KvEventSubscriber.start({ endpoint: 'tcp://127.0.0.1:5557', replay: 'x' } as never)).rejects.toThrow(/unknown option "replay"/);
  });
});
