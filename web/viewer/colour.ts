import { Q16_LEVELS } from '../../src/wire/encodings/q16.js';
import { HEIGHT, RGB, ViewerColourKind, colourChoices } from '../../src/wire/viewer-colour.js';
import type { ViewerField } from '../../src/wire/viewer-colour.js';
import type { ViewerFrame, ViewerFrameColour } from '../../src/wire/viewer.js';
import { rampStops } from './scene.js';

/** How a figure of the legend reads: four significant digits, no trailing zeros. */
function figure(value: number): string {
  if (value === 0) return '0';
  const abs = Math.abs(value);
  return abs >= 1e6 || abs < 1e-3 ? value.toExponential(3) : String(Number(value.toPrecision(4)));
}

/**
 * The colour picker and its legend: what the stream offers (height, RGB when its fields make it,
 * every field: src/wire/viewer-colour.ts decides, as the server does), the choice, and what the
 * colours of the last frame drawn mean (its channel's min and max, or its heights).
 */
export class ColourPicker {
  readonly #select: HTMLSelectElement;
  readonly #legend: {
    readonly box: HTMLElement;
    readonly name: HTMLElement;
    readonly bar: HTMLElement;
    readonly min: HTMLElement;
    readonly max: HTMLElement;
  };
  #colour = HEIGHT;
  /** The choice before the last request, restored if the server refuses it. */
  #previous = HEIGHT;
  #choices: string[] = [HEIGHT];

  constructor(select: HTMLSelectElement, legend: HTMLElement, choose: (colour: string) => void) {
    this.#select = select;
    const part = (selector: string): HTMLElement => {
      const found = legend.querySelector<HTMLElement>(selector);
      if (found === null) throw new Error(`${selector} is missing from the legend`);
      return found;
    };
    this.#legend = {
      box: legend,
      name: part('.legend-name'),
      bar: part('.legend-bar'),
      min: part('.legend-min'),
      max: part('.legend-max'),
    };
    this.#legend.bar.style.background = `linear-gradient(to right, ${rampStops().join(', ')})`;
    select.addEventListener('change', () => choose(select.value));
    this.#render();
  }

  /** The colour chosen. */
  get colour(): string {
    return this.#colour;
  }

  /** What the stream offers, height first. */
  get choices(): readonly string[] {
    return this.#choices;
  }

  /** The stream's fields (from `hello`, or when they change). */
  setFields(fields: readonly ViewerField[]): void {
    this.#choices = colourChoices(fields);
    this.#render();
  }

  /** A new stream: height only until it says which fields it has. */
  reset(): void {
    this.#choices = [HEIGHT];
    this.#legend.box.hidden = true;
    this.#render();
  }

  /** `colour` was asked for. */
  choose(colour: string): void {
    if (colour !== this.#colour) this.#previous = this.#colour;
    this.#colour = colour;
    this.#render();
  }

  /** The server refused the last choice: back to the one before. */
  refused(): void {
    this.#colour = this.#previous;
    this.#render();
  }

  /** The legend of a frame drawn with `colour` (undefined: by height). */
  showLegend(frame: ViewerFrame, colour: ViewerFrameColour | undefined): void {
    const legend = this.#legend;
    legend.box.hidden = false;
    legend.box.dataset.colour = colour?.name ?? HEIGHT;
    if (colour?.kind === ViewerColourKind.RGB8) {
      legend.name.textContent = 'RGB';
      legend.bar.hidden = legend.min.hidden = legend.max.hidden = true;
      return;
    }
    legend.bar.hidden = legend.min.hidden = legend.max.hidden = false;
    const z = frame.offset[2];
    const [min, max] =
      colour === undefined ? [z, z + frame.scale[2] * Q16_LEVELS] : [colour.min, colour.max];
    legend.name.textContent = colour === undefined ? 'height (z)' : colour.name;
    legend.min.textContent = figure(min);
    legend.max.textContent = figure(max);
  }

  #render(): void {
    const options = [...this.#choices];
    // A choice the stream does not offer (yet) stays shown, so the picker says what was asked.
    if (!options.includes(this.#colour)) options.push(this.#colour);
    this.#select.replaceChildren(
      ...options.map((colour) => {
        const option = document.createElement('option');
        option.value = colour;
        option.textContent =
          colour === HEIGHT
            ? 'height'
            : colour === RGB
              ? 'RGB'
              : this.#choices.includes(colour)
                ? colour
                : `${colour} (not in this stream)`;
        return option;
      }),
    );
    this.#select.value = this.#colour;
    this.#select.disabled = this.#choices.length < 2 && this.#colour === HEIGHT;
  }
}
