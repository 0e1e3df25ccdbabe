/** A span a detector flagged: [start, end) in UTF-16 code units of the scanned string. */
export interface Finding {
  detector: string;
  start: number;
  end: number;
}

/**
 * Appends its findings to `out` in increasing start order, never overlapping
 * each other. Lanes hand it text already normalised (normalize.ts), so it
 * need only know ASCII digits, letters and separators. Every implementation must run in time linear in the input,
 * whatever the input: prompts are attacker-controlled.
 */
export interface Detector {
  readonly name: string;
  scan(text: string, out: Finding[]): void;
}
