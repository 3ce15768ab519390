/*! consent-ledger consent.js 1.0.0: records a visitor's cookie choices in the consent ledger.
 * Docs: docs/integrators/websites.md ("The script"). No dependencies, no build step.
 * A released version is never edited: a change is a new file with a new version. */

export const version = "1.0.0";

const COOKIE = "consent_ledger_device";
/** 13 months, the catalogue's retention of a cookie choice: the banner asks again after it. */
const COOKIE_SECONDS = 396 * 24 * 3600;
const LANGUAGES = ["fi", "sv", "en"];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const WORDS = {
  fi: {
    title: "Evästeet tällä sivustolla",
    intro: "Käytämme alla lueteltuja evästeitä vain, jos sallit ne. Sivuston toiminnalle välttämättömät evästeet ovat aina käytössä. Voit muuttaa valintaasi milloin tahansa.",
    gpc: "Selaimesi lähettää Global Privacy Control -signaalin, ja noudatamme sitä: markkinointievästeet pysyvät pois päältä, ellet itse salli niitä tässä.",
    legend: "Valitse luokittain",
    accept: "Hyväksy kaikki", reject: "Hylkää kaikki", save: "Tallenna valinnat",
    policy: "Lue lisää tietosuojaselosteesta",
    failed: "Valintaasi ei voitu tallentaa. Yritä uudelleen.",
    cookies_analytics: ["Analytiikka", "Evästeet, joiden avulla näemme, miten sivustoa käytetään, ja voimme parantaa sitä."],
    cookies_marketing: ["Käyntiesi mukaan valitut mainokset", "Evästeet, joiden avulla me ja mainoskumppanimme voimme näyttää sinulle mainoksia sen perusteella, miten olet käyttänyt verkkosivujamme."],
  },
  sv: {
    title: "Kakor på den här webbplatsen",
    intro: "Vi använder kakorna nedan bara om du tillåter dem. Kakor som webbplatsen behöver för att fungera är alltid på. Du kan ändra ditt val när som helst.",
    gpc: "Din webbläsare skickar en Global Privacy Control-signal och vi respekterar den: marknadsföringskakor förblir avstängda om du inte själv slår på dem här.",
    legend: "Välj per kategori",
    accept: "Godkänn alla", reject: "Avvisa alla", save: "Spara valen",
    policy: "Läs mer i dataskyddsbeskrivningen",
    failed: "Ditt val kunde inte sparas. Försök igen.",
    cookies_analytics: ["Analys", "Kakor som visar oss hur webbplatsen används så att vi kan förbättra den."],
    cookies_marketing: ["Annonser utifrån dina besök", "Kakor som låter oss och våra annonspartner visa dig annonser utifrån hur du har använt våra webbplatser."],
  },
  en: {
    title: "Cookies on this site",
    intro: "We use the cookies below only if you allow them. Cookies the site needs to work are always on. You can change your choice at any time.",
    gpc: "Your browser sends a Global Privacy Control signal, and we honour it: marketing cookies stay off unless you switch them on here yourself.",
    legend: "Choose by category",
    accept: "Accept all", reject: "Reject all", save: "Save choices",
    policy: "Read more in the privacy policy",
    failed: "Your choice could not be saved. Please try again.",
    cookies_analytics: ["Analytics", "Cookies that show us how the site is used, so that we can improve it."],
    cookies_marketing: ["Ads based on your visits", "Cookies that let us and our advertising partners show you ads based on how you have used our websites."],
  },
};
/** purposes the ledger treats as direct marketing, which GPC keeps off */
const MARKETING = new Set(["cookies_marketing"]);

const CSS = `
:host { all: initial; }
.banner { position: fixed; inset: auto 0 0 0; z-index: 2147483000; box-sizing: border-box;
  max-height: 90vh; overflow: auto; margin: 0 auto; max-width: 44rem; padding: 1rem 1.25rem;
  font: 1rem/1.45 var(--consent-font, system-ui, sans-serif);
  color: var(--consent-text, #1b1b1b); background: var(--consent-background, #fff);
  border: 2px solid var(--consent-text, #1b1b1b); border-bottom: 0; }
h2 { margin: 0 0 .5rem; font-size: 1.2rem; }
p { margin: 0 0 .75rem; }
fieldset { margin: 0 0 1rem; padding: .5rem .75rem; border: 1px solid currentColor; }
legend { font-weight: 600; padding: 0 .25rem; }
label { display: flex; gap: .5rem; align-items: baseline; font-weight: 600; margin-top: .25rem; }
.help { margin: 0 0 .5rem 1.75rem; font-size: .9rem; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; }
button { flex: 1 1 0; min-width: 10rem; min-height: 2.75rem; padding: .5rem 1rem; font: inherit;
  font-weight: 600; cursor: pointer; border-radius: .25rem;
  color: var(--consent-button-text, #fff); background: var(--consent-button, #1d4f91);
  border: 2px solid var(--consent-button, #1d4f91); }
button:focus-visible, input:focus-visible, a:focus-visible, .banner:focus-visible {
  outline: 3px solid var(--consent-focus, #c05600); outline-offset: 2px; }
a { color: inherit; }
.failed { font-weight: 600; color: var(--consent-error, #a00000); }
.failed:empty { display: none; }
`;

let options = null;
let choices = {};
let ready = false;
let host = null;
const listeners = new Set();

/** The visitor's GPC signal, which the browser also sends as `Sec-GPC: 1`. */
function gpc() {
  return globalThis.navigator?.globalPrivacyControl === true;
}

function pickLanguage(asked) {
  const wanted = [asked, document.documentElement.lang, ...(navigator.languages || [])];
  for (const tag of wanted) {
    const primary = String(tag || "").toLowerCase().split("-")[0];
    if (LANGUAGES.includes(primary)) return primary;
  }
  return "en";
}

function readDevice() {
  for (const part of document.cookie.split(";")) {
    const [name, value] = part.trim().split("=");
    if (name === COOKIE && UUID.test(value || "")) return value;
  }
  return null;
}

function writeDevice(id) {
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `${COOKIE}=${id}; Path=/; Max-Age=${COOKIE_SECONDS}; SameSite=Lax${secure}`;
}

function copy() {
  return Object.fromEntries(options.purposes.map((p) => [p.id, choices[p.id] ?? null]));
}

function changed() {
  const now = copy();
  for (const callback of listeners) {
    try { callback(now); } catch (error) { console.error("consent.js: an onChange callback failed", error); }
  }
}

async function call(method, query, body) {
  const url = new URL("/v1/collect/consents", options.ledger);
  if (query) url.search = new URLSearchParams(query).toString();
  const headers = { Authorization: `Bearer ${options.key}` };
  if (body) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method, headers, body: body && JSON.stringify(body), mode: "cors", credentials: "omit",
  });
  if (!response.ok) {
    const error = new Error(`consent.js: the ledger answered ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

/** Start: read the device's choices from the ledger, tell the listeners, and show the banner
 * while any purpose is undecided. Resolves to the choices (get()). */
export async function init(given) {
  if (!given || !given.ledger || !given.key || !Array.isArray(given.purposes) || !given.purposes.length) {
    throw new TypeError("consent.js: init needs {ledger, key, purposes: [...]}");
  }
  options = {
    ...given,
    ledger: String(given.ledger),
    purposes: given.purposes.map((p) => (typeof p === "string" ? { id: p } : p)),
    language: pickLanguage(given.language),
  };
  const device = readDevice();
  // a device whose choices could not be read because the ledger is unreachable or busy (no
  // answer, 429, 5xx) is not asked again: its choices are unknown, so every tag stays held
  // back until a later page load; a refusal (a wrong key or origin) shows the banner, whose
  // save then says it failed
  let unknown = false;
  if (device) {
    try {
      choices = (await call("GET", { device_id: device })).choices || {};
    } catch (error) {
      unknown = !error.status || error.status === 429 || error.status >= 500;
      console.warn(error.message);
    }
  }
  ready = true;
  changed();
  if (!unknown && options.purposes.some((p) => typeof choices[p.id] !== "boolean")) showBanner();
  return copy();
}

/** The visitor's choices: purpose -> true (allowed), false (refused), null (not asked yet). */
export function get() {
  return options ? copy() : {};
}

/** Record choices (purpose -> true|false) for this device as the visitor's own (method
 * `banner`); resolves to get(). */
export async function set(given) {
  if (!options) throw new Error("consent.js: call init() first");
  const sent = {};
  for (const p of options.purposes) {
    const value = given?.[p.id];
    if (typeof value === "boolean") sent[p.id] = value;
  }
  if (!Object.keys(sent).length) {
    throw new TypeError("consent.js: set needs {purpose: true|false} for a purpose given to init");
  }
  return record(sent);
}

/** Send `sent` (purpose -> true|false) for this device; under GPC it may be empty, and the
 * ledger withdraws the marketing purposes left out that have no choice yet (method `gpc`). */
async function record(sent) {
  const device = readDevice();
  const body = {
    choices: sent,
    page_url: location.origin + location.pathname,
    banner_version: version,
    language: options.language,
  };
  if (device) body.device_id = device;
  if (options.noticeVersion) body.notice_version = options.noticeVersion;
  const answer = await call("POST", null, body);
  writeDevice(answer.device_id);
  choices = { ...choices, ...answer.choices };
  changed();
  return copy();
}

/** Call `callback(choices)` now (once init has read them) and after every change; returns a
 * function that stops the calls. */
export function onChange(callback) {
  listeners.add(callback);
  if (ready) callback(copy());
  return () => listeners.delete(callback);
}

function isMarketing(purpose) {
  return purpose.marketing ?? MARKETING.has(purpose.id);
}

function words(purpose, lang) {
  const own = purpose.texts?.[lang];
  return own ? [own.title, own.description] : WORDS[lang][purpose.id] || [purpose.id, ""];
}

function element(name, attributes = {}, ...children) {
  const node = document.createElement(name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  node.append(...children);
  return node;
}

function styled(root) {
  if ("adoptedStyleSheets" in root && typeof CSSStyleSheet.prototype.replaceSync === "function") {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } else {
    const style = element("style", options.nonce ? { nonce: options.nonce } : {}, CSS);
    root.append(style);
  }
}

function build() {
  const lang = options.language;
  const t = WORDS[lang];
  host = element("div", { "data-consent-ledger": version });
  const root = host.attachShadow({ mode: "open" });
  styled(root);
  const box = element("section", {
    class: "banner", role: "dialog", "aria-labelledby": "title", "aria-describedby": "intro",
    lang, tabindex: "-1",
  });
  const intro = element("p", { id: "intro" }, t.intro);
  box.append(element("h2", { id: "title" }, t.title), intro);
  if (gpc()) box.append(element("p", { class: "gpc" }, t.gpc));
  if (options.policyUrl) box.append(element("p", {}, element("a", { href: options.policyUrl }, t.policy)));
  const fields = element("fieldset", {}, element("legend", {}, t.legend));
  for (const p of options.purposes) {
    const [title, help] = words(p, lang);
    const tick = element("input", { type: "checkbox", name: p.id, id: `p-${p.id}`, "aria-describedby": `h-${p.id}` });
    tick.checked = choices[p.id] === true;
    fields.append(element("label", { for: `p-${p.id}` }, tick, title), element("p", { class: "help", id: `h-${p.id}` }, help));
  }
  const status = element("p", { class: "failed", role: "alert" });
  const button = (act, text) => element("button", { type: "button", "data-act": act }, text);
  const actions = element("div", { class: "actions" }, button("reject", t.reject), button("save", t.save), button("accept", t.accept));
  box.append(fields, status, actions);
  root.append(box);
  actions.addEventListener("click", async (event) => {
    const act = event.target.closest("button")?.dataset.act;
    if (!act) return;
    const picked = {};
    for (const p of options.purposes) {
      const ticked = act === "accept" ? true : act === "reject" ? false : root.getElementById(`p-${p.id}`).checked;
      // under GPC an unticked marketing box the visitor never allowed is left to the signal
      // (method `gpc`); "Reject all", and unticking an earlier yes, are the visitor's own
      const leftToGpc = act === "save" && gpc() && isMarketing(p) && !ticked && choices[p.id] !== true;
      if (!leftToGpc) picked[p.id] = ticked;
    }
    status.textContent = "";
    try {
      await record(picked);
      host.remove();
      host = null;
    } catch (error) {
      console.warn(error.message);
      status.textContent = t.failed;
    }
  });
  document.body.append(host);
  box.focus();
}

/** Show the banner, ticked as the visitor chose before (for a "Cookie settings" link). */
export function showBanner() {
  if (!options) throw new Error("consent.js: call init() first");
  if (host) host.remove();
  build();
}
