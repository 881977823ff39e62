/**
 * NameRegistry: names interned into the small dense integers the block
 * manager stores per block, and checkName's refusals.
 */
import { describe, expect, it } from 'vitest';

import { MAX_AGENT } from '../../src/blocks/types.js';
import { checkName, NameRegistry } from '../../src/runtime/names.js';

describe('NameRegistry workloads', () => {
  it('interns workloads densely and stably', () => {
    const names = new NameRegistry();
    expect(names.workloadCount).toBe(0);
    expect(names.workloadId('chat')).toBe(0);
    expect(names.workloadId('code')).toBe(1);
    expect(names.workloadId('chat')).toBe(0);
    expect(names.workloadCount).toBe(2);
    expect(names.workloadName(0)).toBe('chat');
    expect(names.workloadName(1)).toBe('code');
    expect(names.workloadName(2)).toBeUndefined();
  });
});

describe('NameRegistry agents', () => {
  it('numbers agents from 0 within each workload', () => {
    const names = new NameRegistry();
    expect(names.agentIndex('chat', 'planner')).toBe(0);
    expect(names.agentIndex('chat', 'coder')).toBe(1);
    expect(names.agentIndex('chat', 'planner')).toBe(0);
    // A workload first seen through an agent is interned too.
    expect(names.agentIndex('code', 'coder')).toBe(0);
    expect(names.workloadId('code')).toBe(1);
    expect(names.agentName(0, 1)).toBe('coder');
    expect(names.agentName(1, 0)).toBe('coder');
    expect(names.agentName(0, 2)).toBeUndefined();
    expect(names.agentName(5, 0)).toBeUndefined();
    expect(names.agentsOf(0)).toEqual(['planner', 'coder']);
    expect(names.agentsOf(1)).toEqual(['coder']);
    expect(names.agentsOf(9)).toEqual([]);
  });

  it('files agents past the 64th under index 63, named after the 64th', () => {
    expect(MAX_AGENT).toBe(63);
    const names = new NameRegistry();
    for (let i = 0; i < 64; i++) expect(names.agentIndex('w', `a${i}`)).toBe(i);
    expect(names.agentIndex('w', 'a64')).toBe(63);
    expect(names.agentIndex('w', 'a65')).toBe(63);
    expect(names.agentIndex('w', 'a64')).toBe(63);
    expect(names.agentIndex('w', 'a0')).toBe(0);
    expect(names.agentName(0, 63)).toBe('a63');
    expect(names.agentName(0, 64)).toBeUndefined();
    const agents = names.agentsOf(0);
    expect(agents).toHaveLength(64);
    expect(agents[0]).toBe('a0');
    expect(agents[63]).toBe('a63');
  });
});

describe('NameRegistry sessions', () => {
  it('interns sessions densely and stably', () => {
    const names = new NameRegistry();
    expect(names.hasSession('s1')).toBe(false);
    expect(names.sessionId('s1')).toBe(0);
    expect(names.sessionId('s2')).toBe(1);
    expect(names.sessionId('s1')).toBe(0);
    expect(names.hasSession('s1')).toBe(true);
    expect(names.sessionName(0)).toBe('s1');
    expect(names.sessionName(1)).toBe('s2');
    expect(names.sessionName(2)).toBeUndefined();
  });

  it('forgets an ended session without reusing its id', () => {
    const names = new NameRegistry();
    names.sessionId('s1');
    names.sessionId('s2');
    names.forgetSession('s1');
    expect(names.hasSession('s1')).toBe(false);
    expect(names.sessionName(0)).toBeUndefined();
    // The other session is untouched.
    expect(names.sessionName(1)).toBe('s2');
    // Starting again gives a new id.
    expect(names.sessionId('s1')).toBe(2);
    expect(names.sessionName(2)).toBe('s1');
    // Forgetting an unknown session does nothing.
    names.forgetSession('never');
    expect(names.sessionId('s3')).toBe(3);
  });
});

describe('checkName', () => {
  it('returns a valid name', () => {
    expect(checkName('planner', 'agent')).toBe('planner');
    const longest = 'x'.repeat(256);
    expect(checkName(longest, 'agent')).toBe(longest);
  });

  it('refuses a non-string with a TypeError', () => {
    expect(() => checkName(5, 'session')).toThrow(new TypeError('session must be a string, got number 5'));
    expect(() => checkName(undefined, 'session')).toThrow(new TypeError('session must be a string, got undefined'));
    expect(() => checkName(null, 'session')).toThrow(new TypeError('session must be a string, got null'));
  });

  it('refuses an empty or too long name with a RangeError', () => {
    expect(() => checkName('', 'session')).toThrow(new RangeError('session must not be empty'));
    expect(() => checkName('x'.repeat(257), 'session')).toThrow(
      new RangeError('session is longer than 256 characters'),
    );
  });
});
