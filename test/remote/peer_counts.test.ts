/** TransitionModel.setPeerCounts: other replicas' counts as part of the prior, replaced not accumulated. */
import { describe, expect, it } from 'vitest';

import { END, START, TransitionModel } from '../../src/policies/cachesage/transitions.js';

function peer(handoffs: Array<[string | typeof START, string | typeof END]>): ReturnType<TransitionModel['toJSON']> {
  const model = new TransitionModel({ halfLife: Infinity });
  for (const [from, to] of handoffs) model.observeHandoff(from, to);
  return model.toJSON();
}

describe('TransitionModel.setPeerCounts', () => {
  it('reads probabilities from own plus peer counts plus alpha, keeping exports its own', () => {
    const model = new TransitionModel({ halfLife: Infinity, alpha: 0.1 });
    model.observeHandoff(START, 'a');
    model.setPeerCounts([peer([[START, 'a'], [START, 'b']]), peer([[START, 'b']])]);
    // States START, END, a, b: START's row moves to END, a or b. Own: a 1; peers: a 1, b 2.
    expect(model.probability(START, 'a')).toBeCloseTo((2 + 0.1) / (4 + 0.3), 12);
    expect(model.probability(START, 'b')).toBeCloseTo((2 + 0.1) / (4 + 0.3), 12);
    expect(model.transitionMatrix()[0 * 4 + 3]).toBeCloseTo((2 + 0.1) / (4 + 0.3), 12);
    expect(model.peerCount(START, 'b')).toBe(2);
    expect(model.count(START, 'b')).toBe(0);
    expect(model.toJSON().handoffs).toBe(1);
    expect(model.agents).toEqual(['a', 'b']);
  });

  it('replaces earlier peer counts instead of adding to them', () => {
    const model = new TransitionModel({ halfLife: Infinity });
    const snapshot = peer([[START, 'a']]);
    model.setPeerCounts([snapshot]);
    model.setPeerCounts([snapshot]);
    expect(model.peerCount(START, 'a')).toBe(1);
    model.setPeerCounts([]);
    expect(model.peerCount(START, 'a')).toBe(0);
  });

  it('checks every snapshot before changing anything, naming the bad one', () => {
    const model = new TransitionModel();
    model.setPeerCounts([peer([[START, 'a']])]);
    expect(() => model.setPeerCounts([peer([[START, 'z']]), { format: 'nope' }])).toThrow(/setPeerCounts: peers\[1\]: .*format must be/);
    expect(model.peerCount(START, 'a')).toBe(1);
    expect(model.hasAgent('z')).toBe(false);
  });
});
