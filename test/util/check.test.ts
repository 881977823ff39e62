/**
 * The shared argument checks: which error class each failure raises and the
 * exact message, since every layer's errors are built from these.
 */
import { describe, expect, it } from 'vitest';

import {
  checkBoolean,
  checkInt,
  checkNumber,
  checkOptionsObject,
  describeValue,
  isRecord,
} from '../../src/util/check.js';

describe('describeValue', () => {
  it('describes each kind of value', () => {
    expect(describeValue(null)).toBe('null');
    expect(describeValue(undefined)).toBe('undefined');
    expect(describeValue([1, 2])).toBe('an array');
    expect(describeValue({})).toBe('an Object');
    expect(describeValue(new Int32Array(1))).toBe('an Int32Array');
    expect(describeValue(new Map())).toBe('a Map');
    expect(describeValue(Object.create(null))).toBe('an object');
    expect(describeValue('abc')).toBe('the string "abc"');
    expect(describeValue(1.5)).toBe('number 1.5');
    expect(describeValue(NaN)).toBe('number NaN');
    expect(describeValue(true)).toBe('boolean true');
    expect(describeValue(5n)).toBe('bigint 5');
  });

  it('cuts long strings to their first 40 characters', () => {
    expect(describeValue('x'.repeat(100))).toBe(`the string "${'x'.repeat(40)}"`);
  });
});

describe('isRecord', () => {
  it('accepts objects and refuses arrays, null and primitives', () => {
    expect(isRecord({})).toBe(true);
    expect(isRecord({ a: 1 })).toBe(true);
    expect(isRecord([])).toBe(false);
    expect(isRecord(null)).toBe(false);
    expect(isRecord(undefined)).toBe(false);
    expect(isRecord('x')).toBe(false);
    expect(isRecord(3)).toBe(false);
  });
});

describe('checkInt', () => {
  it('returns an integer within [min, max], bounds included', () => {
    expect(checkInt(0, 'n', 0, 10)).toBe(0);
    expect(checkInt(10, 'n', 0, 10)).toBe(10);
    expect(checkInt(-3, 'n', -5, 5)).toBe(-3);
  });

  it('throws a TypeError for a non-number', () => {
    expect(() => checkInt('3', 'options.size', 0, 10)).toThrow(
      new TypeError('options.size must be a number, got the string "3"'),
    );
    expect(() => checkInt(undefined, 'options.size', 0, 10)).toThrow(TypeError);
    expect(() => checkInt(3n, 'options.size', 0, 10)).toThrow('options.size must be a number, got bigint 3');
  });

  it('throws a RangeError for a fraction, NaN or infinity', () => {
    expect(() => checkInt(1.5, 'n', 0, 10)).toThrow(new RangeError('n must be an integer, got 1.5'));
    expect(() => checkInt(NaN, 'n', 0, 10)).toThrow(new RangeError('n must be an integer, got NaN'));
    expect(() => checkInt(Infinity, 'n', 0, 10)).toThrow(new RangeError('n must be an integer, got Infinity'));
  });

  it('throws a RangeError outside [min, max]', () => {
    expect(() => checkInt(11, 'n', 0, 10)).toThrow(new RangeError('n must be in [0, 10], got 11'));
    expect(() => checkInt(-1, 'n', 0, 10)).toThrow(new RangeError('n must be in [0, 10], got -1'));
  });
});

describe('checkNumber', () => {
  it('returns a number within [min, max], fractions and infinite bounds included', () => {
    expect(checkNumber(0.25, 'x', 0, 1)).toBe(0.25);
    expect(checkNumber(Infinity, 'x', 0, Infinity)).toBe(Infinity);
  });

  it('throws a TypeError for a non-number', () => {
    expect(() => checkNumber(null, 'x', 0, 1)).toThrow(new TypeError('x must be a number, got null'));
  });

  it('throws a RangeError for NaN and values outside [min, max]', () => {
    expect(() => checkNumber(NaN, 'x', 0, 1)).toThrow(new RangeError('x must be in [0, 1], got NaN'));
    expect(() => checkNumber(1.5, 'x', 0, 1)).toThrow(new RangeError('x must be in [0, 1], got 1.5'));
    expect(() => checkNumber(-Infinity, 'x', 0, 1)).toThrow(new RangeError('x must be in [0, 1], got -Infinity'));
  });
});

describe('checkBoolean', () => {
  it('returns booleans and refuses anything else with a TypeError', () => {
    expect(checkBoolean(false, 'flag')).toBe(false);
    expect(checkBoolean(true, 'flag')).toBe(true);
    expect(() => checkBoolean(1, 'flag')).toThrow(new TypeError('flag must be a boolean, got number 1'));
    expect(() => checkBoolean('true', 'flag')).toThrow(new TypeError('flag must be a boolean, got the string "true"'));
  });
});

describe('checkOptionsObject', () => {
  const known = ['alpha', 'beta'] as const;

  it('reads undefined as an empty options object', () => {
    expect(checkOptionsObject(undefined, 'kvflow policy', known)).toEqual({});
  });

  it('returns the same object when every key is known', () => {
    const options = { alpha: 1, beta: undefined };
    expect(checkOptionsObject(options, 'kvflow policy', known)).toBe(options);
    expect(checkOptionsObject({}, 'kvflow policy', known)).toEqual({});
  });

  it('refuses a non-object with a TypeError naming the owner', () => {
    expect(() => checkOptionsObject(null, 'kvflow policy', known)).toThrow(
      new TypeError('kvflow policy: options must be an object, got null'),
    );
    expect(() => checkOptionsObject([], 'kvflow policy', known)).toThrow(
      new TypeError('kvflow policy: options must be an object, got an array'),
    );
    expect(() => checkOptionsObject(7, 'kvflow policy', known)).toThrow(
      new TypeError('kvflow policy: options must be an object, got number 7'),
    );
  });

  it('refuses an unknown key, naming it and the known ones', () => {
    expect(() => checkOptionsObject({ alpha: 1, alpah: 2 }, 'kvflow policy', known)).toThrow(
      new TypeError('kvflow policy: unknown option "alpah" (known: alpha, beta)'),
    );
    expect(() => checkOptionsObject({ x: 1 }, 'lru policy', [])).toThrow(
      new TypeError('lru policy: unknown option "x" (known: none)'),
    );
  });
});
