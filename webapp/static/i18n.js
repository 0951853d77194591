// The page's languages: one module per language under i18n/ (English, Japanese, Simplified Chinese, Russian),
// each { name, messages, groups, tags }. `messages` holds every text of the page by key; a text may have
// {placeholders}, and one that counts something is an object of plural forms (Intl.PluralRules' categories:
// one / few / many / other) chosen by its {count}. `groups` and `tags` translate the model's group and tag
// names for display only: share links, files and the module keep the model's own names, and a name a
// language does not know is shown as the model spells it.
//
// The language is the visitor's choice (the switch, kept in localStorage), else the first of the browser's
// languages the page has, else English. Static texts in the page are marked data-i18n="key" (the element's
// text) and data-i18n-attr="attribute:key; ..." (attributes); applyStatic() fills them in.

import en from './i18n/en.js';
import ja from './i18n/ja.js';
import ru from './i18n/ru.js';
import zh from './i18n/zh.js';

export const LANGUAGES = { en, ja, zh, ru };
const STORAGE_KEY = 'kyara.language';

let code = 'en';
let plural = new Intl.PluralRules('en');

/** The language code in use. */
export const language = () => code;

function stored() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;   // storage refused (some private windows): the browser's language
  }
}

/** The visitor's language: the one chosen before, else the first of the browser's the page has, else en. */
export function pickLanguage() {
  const chosen = stored();
  if (chosen && chosen in LANGUAGES) return chosen;
  for (const tag of navigator.languages ?? [navigator.language]) {
    const base = String(tag).toLowerCase().split('-')[0];
    if (base in LANGUAGES) return base;
  }
  return 'en';
}

/** Use language `next` (remembered when `remember`), and mark the document with it. */
export function setLanguage(next, { remember = false } = {}) {
  code = next in LANGUAGES ? next : 'en';
  plural = new Intl.PluralRules(code);
  document.documentElement.lang = code === 'zh' ? 'zh-Hans' : code;
  if (remember) {
    try {
      localStorage.setItem(STORAGE_KEY, code);
    } catch {
      // not remembered where storage is refused; the page still switches
    }
  }
}

/** The text for `key` in the language in use (English where missing), with {placeholders} filled in. */
export function t(key, params = {}) {
  let message = LANGUAGES[code].messages[key] ?? en.messages[key] ?? key;
  if (typeof message === 'object') message = message[plural.select(Number(params.count ?? 0))] ?? message.other;
  return message.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/** A model's tag name for display. */
export const tagName = (tag) => LANGUAGES[code].tags[tag] ?? tag;

/** A model's group name for display. */
export const groupName = (group) => LANGUAGES[code].groups[group] ?? group;

/** A share from 0 to 1 as a percentage ("75 %", "75%") in the language's style. */
export const percent = (share) => new Intl.NumberFormat(code, { style: 'percent', maximumFractionDigits: 0 }).format(share);

/** A value to two decimals at most, in the language's style. */
export const number = (value) => new Intl.NumberFormat(code, { maximumFractionDigits: 2 }).format(value);

/** Names joined by the language's separator ("a, b", "a、b"). */
export const list = (items) => items.join(t('list.separator'));

/** Fill in the page's static texts (data-i18n and data-i18n-attr) under `root`. */
export function applyStatic(root = document) {
  for (const node of root.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  for (const node of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of node.dataset.i18nAttr.split(';')) {
      const [attribute, key] = pair.split(':').map((part) => part.trim());
      if (attribute && key) node.setAttribute(attribute, t(key));
    }
  }
}
