// A circuit for the shared store. A Redis that stops answering (frozen,
// overloaded, a network black hole) keeps its TCP connection up, so ioredis
// sends every command and each one waits the whole command timeout. After a
// few timeouts in a row the store is marked down: commands fail at once, with
// the same error a timeout gives (so each budget rule's on_store_error still
// decides), until one probe command after the cool-down gets an answer.

/** What callers see while the store is marked down: a timeout, without the wait. */
export const STORE_DOWN_MESSAGE = 'Command timed out (Redis marked down after repeated timeouts; failing fast until a probe answers)';

export interface StoreCircuitOptions {
  /** Consecutive command timeouts that mark the store down. */
  timeouts: number;
  /** How long it stays down before one probe command is let through. */
  cooldownMs: number;
  /** Told when the store is marked down (true) or answers again (false). */
  onChange(down: boolean): void;
}

/** `failed`: no answer but no timeout either (the connection is closed); it neither trips nor heals the circuit. */
export type CommandOutcome = 'answered' | 'timeout' | 'failed';

export class StoreCircuit {
  private consecutive = 0;
  private downUntil = 0;
  private probing = false;
  private down = false;

  constructor(private readonly options: StoreCircuitOptions) {}

  /** Whether a command may be sent now; while down, only one probe after the cool-down. */
  allow(now: number): boolean {
    if (!this.down) return true;
    if (this.probing || now < this.downUntil) return false;
    this.probing = true;
    return true;
  }

  /** Any reply, an error reply included, means Redis is answering. Other failures (connection closed) say nothing about it. */
  record(outcome: CommandOutcome, now: number): void {
    if (outcome === 'failed') {
      // A probe that could not even be sent: the next command probes instead.
      this.probing = false;
      return;
    }
    if (outcome === 'answered') {
      this.consecutive = 0;
      this.probing = false;
      if (this.down) {
        this.down = false;
        this.options.onChange(false);
      }
      return;
    }
    this.consecutive++;
    if (this.probing || (!this.down && this.consecutive >= this.options.timeouts)) {
      this.probing = false;
      this.downUntil = now + this.options.cooldownMs;
      if (!this.down) {
        this.down = true;
        this.options.onChange(true);
      }
    }
  }

  isDown(): boolean {
    return this.down;
  }
}
