// The agent runtime: a framework reports an agent session, an engine admits
// its LLM calls, and CacheSage learns the agent hand-offs to decide what
// stays on device and what to prefetch between steps.
import { hashTokenBlocks, Runtime } from 'cachesage';

const BLOCK = 16;
const runtime = new Runtime({
  // Bookkeeping only (no data plane attached), so the sizes reserve no memory.
  blocks: { blockSize: BLOCK, deviceBlocks: 256, hostBlocks: 1024, bytesPerBlock: 2 << 20 },
  policies: ['cachesage'], // or 'lru', 'lfu', 'kvflow', 'ttl', ... by name
});

// Token ids stand in for a tokenizer's output.
let conversation = Uint32Array.from({ length: 512 }, (_, i) => 1000 + i); // the system prompt
const say = (tokens) => {
  const next = new Uint32Array(conversation.length + tokens);
  next.set(conversation);
  for (let i = conversation.length; i < next.length; i++) next[i] = 50_000 + i;
  conversation = next;
};

let time = 0;
let requestId = 0;
runtime.observe({ type: 'session.start', time, session: 'ticket-42', workload: 'support' });
for (const name of ['triage', 'researcher', 'writer', 'researcher', 'writer']) {
  const agent = { workload: 'support', agent: name };
  runtime.observe({ type: 'step.start', time: (time += 0.1), session: 'ticket-42', agent });
  say(64); // the new message this agent sees
  const prompt = conversation;
  const decision = runtime.admit({
    requestId: ++requestId,
    hashes: hashTokenBlocks(prompt, BLOCK),
    numTokens: prompt.length,
    session: 'ticket-42',
    agent,
    time,
  });
  if (decision === null) throw new Error('the device is full of running work: queue the call and retry');
  // The engine prefills from decision.cachedDeviceTokens, writing KV into decision.blockTable.
  console.log(`${name.padEnd(10)} prompt ${prompt.length} tokens, ${decision.cachedDeviceTokens} cached on device`);
  runtime.prefillDone(requestId, (time += 0.2)); // full blocks join the shared cache
  say(48); // the reply joins the conversation
  runtime.release(requestId, (time += 0.5));
  runtime.observe({ type: 'step.end', time, session: 'ticket-42', agent });
  runtime.act(time); // between steps: prefetch what the next agent will need
}

const prediction = runtime.predict({ session: 'ticket-42', horizon: 2 });
console.log('after writer, next agent:', prediction.next);
console.log('P(researcher runs within 2 steps):', prediction.reuseWithin.researcher?.toFixed(2));
console.log('why block 0 (system prompt) is kept:', runtime.explain(0).policies);
runtime.observe({ type: 'session.end', time, session: 'ticket-42' });
