/**
 * Progress on stderr. On a terminal, one bar redrawn in place; elsewhere
 * (CI logs, files) one line per finished unit of work, since carriage
 * returns would pile up into an unreadable line.
 */
import { duration } from './table.js';

/** The stream progress goes to: a TTY flag and a write. */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

/** Counts finished units of work out of a known total. */
export class Progress {
  readonly #stream: ProgressStream;
  readonly #total: number;
  readonly #started = Date.now();
  readonly #label: string;
  #done = 0;
  #drawn = false;

  /**
   * @param label what is being counted, e.g. `bench`.
   * @param total how many units `tick` will be called for.
   */
  constructor(label: string, total: number, stream: ProgressStream = process.stderr) {
    this.#label = label;
    this.#total = Math.max(1, total);
    this.#stream = stream;
  }

  /** One more unit finished; `what` describes it. */
  tick(what: string): void {
    this.#done = Math.min(this.#total, this.#done + 1);
    const elapsed = (Date.now() - this.#started) / 1000;
    const counter = `${this.#done}/${this.#total}`;
    if (!this.#stream.isTTY) {
      this.#stream.write(`${this.#label}: [${counter}] ${what} (${duration(elapsed)})\n`);
      return;
    }
    const fraction = this.#done / this.#total;
    const eta = this.#done > 0 ? (elapsed / this.#done) * (this.#total - this.#done) : 0;
    const width = 24;
    const filled = Math.round(fraction * width);
    const bar = '#'.repeat(filled) + '.'.repeat(width - filled);
    let text = `${this.#label} [${bar}] ${counter} ${(fraction * 100).toFixed(0)}% ${duration(elapsed)} eta ${duration(eta)}  ${what}`;
    const columns = this.#stream.columns ?? 100;
    if (text.length > columns - 1) text = text.slice(0, columns - 1);
    this.#stream.write(`\r\x1b[2K${text}`);
    this.#drawn = true;
  }

  /** Prints a message without breaking the bar. */
  note(message: string): void {
    if (this.#drawn) this.#stream.write('\r\x1b[2K');
    this.#stream.write(`${this.#label}: ${message}\n`);
    this.#drawn = false;
  }

  /** Ends the bar's line, if one was drawn. */
  finish(): void {
    if (this.#drawn) this.#stream.write('\n');
    this.#drawn = false;
  }
}
