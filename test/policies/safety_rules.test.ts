/** The safety rules' file format: what it accepts, and errors naming the field and the file. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { parseSafetyRules, readSafetyRules } from '../../src/policies/safety/rules.js';
import { createSafetyPolicy } from '../../src/policies/safety/policy.js';

function file(content: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'safety-')), 'rules.json');
  writeFileSync(path, content);
  return path;
}

describe('safety rules', () => {
  it('reads rules of each kind from a file', () => {
    const path = file(
      JSON.stringify({
        rules: [
          { id: 't', agent: 'a', tool: 'shell', action: 'deny' },
          { id: 'h', agent: 'a', handoffTo: 'b', action: 'log', workload: 'w' },
          { id: 'b', agent: '*', maxCalls: 3, action: 'deny' },
          { id: 'bt', agent: 'a', tool: 'search', maxCalls: 0, action: 'log' },
        ],
        isolate: ['tenant'],
        secret: 'k',
      }),
    );
    expect(readSafetyRules(path)).toEqual({
      rules: [
        { kind: 'tool', id: 't', workload: null, agent: 'a', tool: 'shell', action: 'deny' },
        { kind: 'handoff', id: 'h', workload: 'w', agent: 'a', handoffTo: 'b', action: 'log' },
        { kind: 'budget', id: 'b', workload: null, agent: '*', tool: null, maxCalls: 3, action: 'deny' },
        { kind: 'budget', id: 'bt', workload: null, agent: 'a', tool: 'search', maxCalls: 0, action: 'log' },
      ],
      isolate: ['tenant'],
      secret: 'k',
    });
    expect(createSafetyPolicy({ file: path }).info!()).toEqual({ rules: 4, denied: {}, logged: {}, isolated: ['tenant'] });
  });

  it('refuses an unknown field, naming it and the file', () => {
    const path = file('{"rules": [{"id": "x", "agent": "a", "tool": "shell", "action": "deny", "severity": 3}]}');
    expect(() => readSafetyRules(path)).toThrow(
      new TypeError(`${path}: rules[0]: unknown field "severity" (known: id, workload, agent, tool, handoffTo, maxCalls, action)`),
    );
    const top = file('{"rule": []}');
    expect(() => createSafetyPolicy({ file: top })).toThrow(new TypeError(`${top}: unknown field "rule" (known: rules, isolate, secret)`));
  });

  it('refuses bad values, naming the field', () => {
    const where = 'rules.json';
    expect(() => parseSafetyRules({ rules: [{ id: 'x', agent: 'a', tool: 'shell', action: 'block' }] }, where)).toThrow(
      new RangeError('rules.json: rules[0].action must be "deny" or "log", got the string "block"'),
    );
    expect(() => parseSafetyRules({ rules: [{ id: 'x', agent: 'a', action: 'deny' }] }, where)).toThrow(
      new RangeError('rules.json: rules[0]: a rule needs one of tool, handoffTo or maxCalls'),
    );
    expect(() => parseSafetyRules({ rules: [{ id: 'x', agent: 'a', tool: 't', handoffTo: 'b', action: 'deny' }] }, where)).toThrow(/not tool and handoffTo/);
    expect(() => parseSafetyRules({ rules: [{ id: 'x', agent: 'a', maxCalls: -1, action: 'deny' }] }, where)).toThrow(
      new RangeError('rules.json: rules[0].maxCalls must be an integer >= 0, got number -1'),
    );
    expect(() => parseSafetyRules({ rules: [{ id: 'x', agent: '', tool: 't', action: 'deny' }] }, where)).toThrow(
      new TypeError('rules.json: rules[0].agent must be a non-empty string, got the string ""'),
    );
    const twice = { rules: [{ id: 'x', agent: 'a', tool: 't', action: 'deny' }, { id: 'x', agent: 'b', tool: 't', action: 'deny' }] };
    expect(() => parseSafetyRules(twice, where)).toThrow(new RangeError('rules.json: rules[1].id "x" is used twice'));
    expect(() => parseSafetyRules({ isolate: 'w' }, where)).toThrow(/isolate must be an array of workload names/);
    expect(() => parseSafetyRules([], where)).toThrow(new TypeError('rules.json: the safety rules must be an object, got an array'));
  });

  it('refuses a file that is missing or not JSON, naming it', () => {
    const bad = file('{rules: ');
    expect(() => readSafetyRules(bad)).toThrow(new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: the safety rules are not JSON`));
    expect(() => readSafetyRules('/nonexistent/rules.json')).toThrow(/^\/nonexistent\/rules.json: cannot read the safety rules/);
  });

  it('validates its options', () => {
    expect(() => createSafetyPolicy({ rulesFile: 'x' } as never)).toThrow(new TypeError('safety policy: unknown option "rulesFile" (known: file, rules)'));
    expect(() => createSafetyPolicy({ file: 'a', rules: {} })).toThrow(new TypeError('safety policy: give options.file or options.rules, not both'));
    expect(() => createSafetyPolicy({ rules: { rules: [{ id: 'x' }] } })).toThrow(/^safety policy: options.rules: rules\[0\]\.agent must be/);
  });
});
