// Types of consent-ledger consent.js 1.0.0 (an ES module): docs/integrators/websites.md.

/** purpose id -> true (allowed), false (refused), null (not chosen yet) */
export type Choices = Record<string, boolean | null>;

/** A purpose's words in one language, shown on the banner. */
export interface PurposeTexts {
  title: string;
  description: string;
}

/** A purpose the banner asks about: its catalogue id, or the id with its own words. */
export type Purpose =
  | string
  | {
      id: string;
      /** whether Global Privacy Control keeps it off (default: true for cookies_marketing) */
      marketing?: boolean;
      texts?: Partial<Record<"fi" | "sv" | "en", PurposeTexts>>;
    };

export interface InitOptions {
  /** the ledger's origin, e.g. "https://consent.example.com" */
  ledger: string;
  /** the site's publishable key (pk_...) */
  key: string;
  /** the purposes the banner asks about, in order; each must be one the site collects */
  purposes: Purpose[];
  /** "fi", "sv" or "en"; default: <html lang>, then the browser's languages, then "en" */
  language?: string;
  /** the version of the privacy notice the choices are given under */
  noticeVersion?: string;
  /** a link to the privacy policy, shown on the banner */
  policyUrl?: string;
  /** the CSP nonce for the banner's <style>, used only where constructed stylesheets are not supported */
  nonce?: string;
}

/** this file's version */
export declare const version: string;
/** Read this device's choices from the ledger, call the onChange callbacks, and show the banner while any purpose is undecided. */
export declare function init(options: InitOptions): Promise<Choices>;
/** The current choices ({} before init). */
export declare function get(): Choices;
/** Record choices for this device; resolves to the choices after them. */
export declare function set(choices: Record<string, boolean>): Promise<Choices>;
/** Call `callback` now (once init has read the choices) and after every change; returns a function that stops the calls. */
export declare function onChange(callback: (choices: Choices) => void): () => void;
/** Show the banner again, ticked as the visitor chose before. */
export declare function showBanner(): void;
