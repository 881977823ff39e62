/**
 * The safety policy on a runtime: tool, hand-off and per-session call
 * rules, deny (the event is refused, with a typed denial naming the rule)
 * and log (counted, reported by info()).
 */
import { describe, expect, it } from 'vitest';

import type { AgentRef, FrameworkEvent } from '../../src/policies/types.js';
import { Runtime } from '../../src/runtime/runtime.js';

const coder: AgentRef = { workload: 'w', agent: 'coder' };
const reviewer: AgentRef = { workload: 'w', agent: 'reviewer' };
const planner: AgentRef = { workload: 'w', agent: 'planner' };

const RULES = {
  rules: [
    { id: 'reviewer-no-shell', agent: 'reviewer', tool: 'shell', action: 'deny' },
    { id: 'planner-to-reviewer', agent: 'planner', handoffTo: 'reviewer', action: 'log' },
    { id: 'coder-no-planner', agent: 'coder', handoffTo: 'planner', action: 'deny' },
    { id: 'coder-two-calls', agent: 'coder', maxCalls: 2, action: 'deny' },
    { id: 'search-once', agent: '*', tool: 'search', maxCalls: 1, action: 'log' },
  ],
};

function runtime(rules: unknown = RULES): Runtime {
  const rt = new Runtime({ blocks: { blockSize: 4, deviceBlocks: 8 }, policies: ['lru', { name: 'safety', options: { rules } }], now: () => 0 });
  rt.observe({ type: 'session.start', time: 0, session: 's', workload: 'w' });
  return rt;
}

const step = (time: number, agent: AgentRef): FrameworkEvent => ({ type: 'step.start', time, session: 's', agent });
const stepEnd = (time: number, agent: AgentRef): FrameworkEvent => ({ type: 'step.end', time, session: 's', agent });
const tool = (time: number, agent: AgentRef, name: string): FrameworkEvent => ({ type: 'tool.start', time, session: 's', agent, tool: name });

describe('safety policy', () => {
  it('denies a forbidden tool call with a typed answer naming the rule, and does not apply it', () => {
    const rt = runtime();
    expect(rt.observe(step(1, reviewer))).toBeNull();
    expect(rt.observe(tool(2, reviewer, 'shell'))).toEqual({
      type: 'deny',
      policy: 'safety',
      rule: 'reviewer-no-shell',
      reason: 'agent "reviewer" may not call tool "shell"',
    });
    expect(rt.observe(tool(2, coder, 'shell'))).toBeNull();
    expect(rt.observe(tool(2, reviewer, 'editor'))).toBeNull();
    expect(rt.info()['policyInfo']).toEqual({ safety: { rules: 5, denied: { 'reviewer-no-shell': 1 }, logged: {}, isolated: [] } });
  });

  it('denies a forbidden hand-off; the session stays on the agent it was on', () => {
    const rt = runtime();
    rt.observe(step(1, coder));
    rt.observe(stepEnd(2, coder));
    const denial = rt.observe(step(3, planner));
    expect(denial).toMatchObject({ type: 'deny', rule: 'coder-no-planner', reason: 'agent "coder" may not hand off to agent "planner"' });
    // Refused, so not applied: the coder may continue, and a reviewer may follow it.
    expect(rt.observe(step(4, reviewer))).toBeNull();
  });

  it('logs a hand-off under a log rule and lets it through', () => {
    const rt = runtime();
    rt.observe(step(1, planner));
    rt.observe(stepEnd(2, planner));
    expect(rt.observe(step(3, reviewer))).toBeNull();
    expect(rt.observe(step(4, reviewer))).toBeNull(); // the same agent again is not a hand-off
    expect((rt.info()['policyInfo'] as { safety: { logged: unknown } }).safety.logged).toEqual({ 'planner-to-reviewer': 1 });
  });

  it('denies the LLM call past an agent budget per session; another session has its own budget', () => {
    const rt = runtime();
    expect(rt.observe(step(1, coder))).toBeNull();
    rt.observe(stepEnd(2, coder));
    expect(rt.observe(step(3, coder))).toBeNull();
    rt.observe(stepEnd(4, coder));
    expect(rt.observe(step(5, coder))).toMatchObject({ rule: 'coder-two-calls', reason: 'agent "coder" has made 2 LLM calls in session "s", the most allowed' });
    rt.observe({ type: 'session.start', time: 5, session: 't', workload: 'w' });
    expect(rt.observe({ type: 'step.start', time: 6, session: 't', agent: coder })).toBeNull();
  });

  it('counts a tool budget per session and agent, and forgets it at session end', () => {
    const rt = runtime();
    expect(rt.observe(tool(1, coder, 'search'))).toBeNull();
    expect(rt.observe(tool(2, coder, 'search'))).toBeNull();
    expect(rt.observe(tool(3, coder, 'search'))).toBeNull();
    expect((rt.info()['policyInfo'] as { safety: { logged: unknown } }).safety.logged).toEqual({ 'search-once': 2 });
    rt.observe({ type: 'session.end', time: 4, session: 's' });
    rt.observe({ type: 'session.start', time: 5, session: 's', workload: 'w' });
    expect(rt.observe(tool(6, coder, 'search'))).toBeNull();
    expect((rt.info()['policyInfo'] as { safety: { logged: unknown } }).safety.logged).toEqual({ 'search-once': 2 });
  });

  it('scopes a rule to its workload', () => {
    const rt = runtime({ rules: [{ id: 'no-shell-in-x', workload: 'x', agent: '*', tool: 'shell', action: 'deny' }] });
    expect(rt.observe(tool(1, coder, 'shell'))).toBeNull();
    rt.observe({ type: 'session.start', time: 1, session: 'xs', workload: 'x' });
    expect(rt.observe({ type: 'tool.start', time: 2, session: 'xs', agent: { workload: 'x', agent: 'a' }, tool: 'shell' })).toMatchObject({ rule: 'no-shell-in-x' });
  });

  it('with no rules it answers nothing', () => {
    const rt = runtime({});
    expect(rt.observe(tool(1, reviewer, 'shell'))).toBeNull();
  });
});
