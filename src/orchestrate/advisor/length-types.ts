// What the advisor reports per length when it profiles several (issue 10; lengths.ts): the result types stay those of
// one length (advisor.ts), with these optional parts added, so a reader of one-length results reads these too.
import type { Score } from './measure';

/** A frontier plan at one of the profiled lengths: its span laws resolved there. */
export interface PlanAtLength {
  seq: number;
  /** The plan's density at this length (its laws resolved here), as the search counts it. */
  density: number;
  /** What the plan spends of the budget at this length, in the budget's unit (the density under a density budget): at most the budget. */
  cost: number;
  /** On this length's calibration windows (the choice among candidate plans used their mean over the lengths). */
  calibration: Score;
  /** On this length's evaluation windows. */
  evaluation: Score;
}

/** One profiled length. */
export interface LengthRun {
  seq: number;
  /** The calibration windows of this length and how they were kept apart from the evaluation windows. */
  calibration: string;
  evalWindows: number;
  /** The unmodified model on this length's evaluation windows (null when not asked for). */
  dense: Score | null;
  timings: { mapsMs: number; importanceMs: number };
}
