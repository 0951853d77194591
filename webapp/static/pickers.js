// The page's tag pickers, in two modes.
//
// Simple: random / on / off for each tag, one pick (or random) for an exclusive group, one pick, none or
// random for an at-most-one group. Advanced: every tag a slider from 0 to 1. A tag outside such groups is a
// value (its number box takes values beyond 0 to 1 too, marked as outside what the model saw in training);
// an exclusive group is a mix of its tags whose weights the visitor sets, normalised to sum to 1 (the
// percentages beside the sliders), and an at-most-one group the same with a weight for "none". Each has a
// Random box: checked, the tag or group is drawn as in simple mode (a group whose weights are all 0 is too).
//
// The choices are share.js's (RANDOM, NONE, 'on', 'off', a tag, a number, a mix); the pickers show them
// (syncPickers) and call onChange(key, choice) when the visitor changes one (key: the tag, or the group's
// name). The texts come from `text`: { t(key, params), tag(name), group(name), percent(x), number(x) }.

import { NONE, RANDOM, VALUE_RANGE, WEIGHT_RANGE, canonical, inTraining, isMix, mixValues } from './share.js';

const SWATCHES = {
  blonde: '#f3d27a', brown: '#7b4a2c', black: '#222222', blue: '#3a6fd8', pink: '#f29bc4',
  purple: '#8e5bc9', green: '#3f9a4a', red: '#c9302c', silver: '#c4c8d2', white: '#f7f7f7',
  orange: '#f08a24', aqua: '#3cc7c7', grey: '#8a8a8a', yellow: '#e8cf2f',
};
const isGroup = (group) => group.exclusive || group.at_most_one;

let view = null;   // { root, manifest, advanced, text, onChange }
const remembered = new Map();   // key -> the last number or mix set, shown while its Random box is checked

function colourOf(tag) {
  return SWATCHES[tag.split(' ')[0]] ?? '#999999';
}

const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
};

/** A tag's colour swatch; `null`: the rainbow of Random. */
function dot(tag) {
  const span = el('span', { className: tag ? 'dot' : 'dot random' });
  if (tag) span.style.setProperty('background-color', colourOf(tag));
  return span;
}

function radio(name, value, checked, text, onChange) {
  const input = el('input', { type: 'radio', name, value, checked });
  input.addEventListener('change', () => input.checked && onChange(value));
  return el('label', {}, input, text);
}

function swatch(tag, text) {
  return el('span', { className: 'swatch' }, dot(tag), el('span', { textContent: text, className: 'swatch-text' }));
}

/** Build the pickers for `manifest` in `root` (simple or advanced), showing `choices`. */
export function buildPickers(root, manifest, { advanced, choices, text, onChange }) {
  view = { root, manifest, advanced, text, onChange };
  root.replaceChildren(...manifest.groups.map((group, g) => (advanced ? advancedGroup(group, g) : simpleGroup(group, g))));
  root.classList.toggle('advanced', advanced);
  syncPickers(choices);
}

// ---------------------------------------------------------------- simple

function simpleGroup(group, g) {
  const { text, onChange } = view;
  const fieldset = el('fieldset', {}, el('legend', { textContent: capitalise(text.group(group.name)) }));
  if (group.exclusive) {
    const swatches = el('div', { className: 'swatches' });
    const set = (value) => onChange(group.name, value);
    swatches.append(radio(`g${g}`, RANDOM, true, swatch(null, text.t('random')), set));
    for (const tag of group.tags) swatches.append(radio(`g${g}`, tag, false, swatch(tag, text.tag(tag)), set));
    fieldset.append(swatches);
  } else if (group.at_most_one) {
    // One choice for the whole group: two On toggles would let the user ask for long and short hair.
    const seg = el('div', { className: 'segmented choice' });
    seg.setAttribute('role', 'radiogroup');
    seg.setAttribute('aria-label', text.group(group.name));
    const set = (value) => onChange(group.name, value);
    const options = [[RANDOM, text.t('random')], [NONE, text.t('none')], ...group.tags.map((tag) => [tag, text.tag(tag)])];
    for (const [value, label] of options) seg.append(radio(`g${g}`, value, value === RANDOM, label, set));
    fieldset.append(seg);
  } else {
    group.tags.forEach((tag, t) => {
      const seg = el('div', { className: 'segmented' });
      seg.setAttribute('role', 'radiogroup');
      seg.setAttribute('aria-label', text.tag(tag));
      const set = (value) => onChange(tag, value);
      for (const [value, label] of [[RANDOM, text.t('random')], ['on', text.t('on')], ['off', text.t('off')]]) {
        seg.append(radio(`g${g}t${t}`, value, value === RANDOM, label, set));
      }
      fieldset.append(el('div', { className: 'tag-row' }, el('span', { textContent: text.tag(tag), className: 'tag-name' }), seg));
    });
  }
  return fieldset;
}

function capitalise(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function checkRadio(name, value) {
  for (const input of view.root.querySelectorAll(`input[name="${name}"]`)) input.checked = input.value === value;
}

// ---------------------------------------------------------------- advanced

/** A checkbox "Random" for the tag or group `key`. */
function randomBox(key, label) {
  const input = el('input', { type: 'checkbox', className: 'random-box' });
  input.setAttribute('aria-label', `${label}: ${view.text.t('random')}`);
  input.dataset.key = key;
  return el('label', { className: 'check random' }, input, el('span', { textContent: view.text.t('random') }));
}

function slider(id, min, max, label) {
  const input = el('input', { type: 'range', id, min: String(min), max: String(max), step: '0.01', value: '0' });
  input.setAttribute('aria-label', label);
  return input;
}

function advancedGroup(group, g) {
  const { text } = view;
  const fieldset = el('fieldset', { className: 'adv' }, el('legend', { textContent: capitalise(text.group(group.name)) }));
  if (isGroup(group)) {
    fieldset.dataset.group = group.name;
    const rows = [...group.tags.map((tag) => [tag, text.tag(tag)]), ...(group.at_most_one ? [[NONE, text.t('none')]] : [])];
    fieldset.append(el('div', { className: 'adv-head' }, randomBox(group.name, text.group(group.name)),
      el('span', { className: 'hint', textContent: text.t(group.exclusive ? 'advanced.mixHint' : 'advanced.mixNoneHint') })));
    rows.forEach(([tag, label], t) => {
      const id = `adv-g${g}-${t}`;
      const range = slider(id, ...WEIGHT_RANGE, tag === NONE ? `${text.group(group.name)}: ${label}` : label);
      range.dataset.weight = tag;
      range.addEventListener('input', () => groupChanged(group, fieldset, false));
      fieldset.append(el('div', { className: 'slider-row weight' },
        el('label', { htmlFor: id, className: 'slider-name' }, group.exclusive ? dot(tag) : '', el('span', { textContent: label })),
        range, el('output', { className: 'share', textContent: '–' })));
    });
    fieldset.querySelector('.random-box').addEventListener('change', () => groupChanged(group, fieldset, true));
    return fieldset;
  }
  group.tags.forEach((tag, t) => {
    const id = `adv-g${g}t${t}`;
    const range = slider(id, 0, 1, text.tag(tag));
    const number = el('input', { type: 'number', min: String(VALUE_RANGE[0]), max: String(VALUE_RANGE[1]), step: '0.01', value: '0', className: 'value' });
    number.setAttribute('aria-label', text.t('advanced.valueOf', { tag: text.tag(tag) }));
    const row = el('div', { className: 'slider-row value-row' },
      el('label', { htmlFor: id, className: 'slider-name', textContent: text.tag(tag) }), range, number, randomBox(tag, text.tag(tag)),
      el('span', { className: 'beyond', textContent: text.t('advanced.beyond'), title: text.t('advanced.beyondHint'), hidden: true }));
    row.dataset.tag = tag;
    range.addEventListener('input', () => { number.value = range.value; valueChanged(tag, row, Number(range.value)); });
    number.addEventListener('input', () => {
      const value = number.value === '' ? NaN : Number(number.value);
      const ok = Number.isFinite(value) && value >= VALUE_RANGE[0] && value <= VALUE_RANGE[1];
      number.setAttribute('aria-invalid', String(!ok));
      if (ok) { range.value = String(value); valueChanged(tag, row, value); }
    });
    row.querySelector('.random-box').addEventListener('change', (event) => {
      valueChanged(tag, row, event.target.checked ? RANDOM : Number(number.value) || 0);
    });
    fieldset.append(row);
  });
  return fieldset;
}

/** A group's sliders or Random box moved: its choice is the mix of the sliders, or random. */
function groupChanged(group, fieldset, fromBox) {
  const box = fieldset.querySelector('.random-box');
  const mix = { weights: {}, none: 0 };
  for (const range of fieldset.querySelectorAll('input[type="range"]')) {
    const weight = Number(range.value);
    if (range.dataset.weight === NONE) mix.none = weight;
    else if (weight > 0) mix.weights[range.dataset.weight] = weight;
  }
  let choice;
  if (fromBox && box.checked) choice = RANDOM;
  else if (mixValues(group, mix) === null) {
    if (fromBox) {   // Random unchecked on weights all at 0: the first tag, fully
      fieldset.querySelector('input[type="range"]').value = '1';
      return groupChanged(group, fieldset, false);
    }
    choice = RANDOM;
  } else choice = mix;
  if (choice !== RANDOM) remembered.set(group.name, choice);
  showGroup(group, fieldset, choice);
  view.onChange(group.name, choice);
}

function valueChanged(tag, row, choice) {
  if (choice !== RANDOM) remembered.set(tag, choice);
  showValue(row, choice);
  view.onChange(tag, choice);
}

/** The weights a group's choice shows on its sliders (a pick is 1 for it, 0 for the others). */
function weightsOf(group, choice) {
  if (isMix(choice)) return { weights: choice.weights, none: choice.none ?? 0 };
  if (choice === NONE) return { weights: {}, none: 1 };
  if (group.tags.includes(choice)) return { weights: { [choice]: 1 }, none: 0 };
  return null;
}

function showGroup(group, fieldset, choice) {
  const random = choice === RANDOM || choice === undefined;
  const shown = weightsOf(group, random ? remembered.get(group.name) : choice);
  fieldset.querySelector('.random-box').checked = random;
  fieldset.classList.toggle('is-random', random);
  const values = !random && shown ? mixValues(group, shown) : null;
  const noneShare = values && group.at_most_one ? 1 - values.reduce((a, b) => a + b, 0) : 0;
  fieldset.querySelectorAll('.slider-row').forEach((row) => {
    const range = row.querySelector('input[type="range"]');
    const tag = range.dataset.weight;
    if (shown) range.value = String(tag === NONE ? shown.none : shown.weights[tag] ?? 0);
    const share = values ? (tag === NONE ? noneShare : values[group.tags.indexOf(tag)]) : null;
    row.querySelector('output').textContent = share === null ? '–' : view.text.percent(share);
  });
}

function showValue(row, choice) {
  const random = choice === RANDOM || choice === undefined;
  const value = random ? remembered.get(row.dataset.tag) : choice === 'on' ? 1 : choice === 'off' ? 0 : choice;
  row.querySelector('.random-box').checked = random;
  row.classList.toggle('is-random', random);
  if (typeof value === 'number') {
    row.querySelector('input[type="range"]').value = String(value);
    const number = row.querySelector('input.value');
    if (Number(number.value) !== value || number.value === '') number.value = String(value);
    number.setAttribute('aria-invalid', 'false');
  }
  const beyond = !random && typeof value === 'number' && !inTraining(value);
  row.classList.toggle('beyond-training', beyond);
  row.querySelector('.beyond').hidden = !beyond;
}

/** Show `choices` on the pickers (after a share link, a mode switch or a language switch). */
export function syncPickers(choices) {
  if (!view) return;
  const { root, manifest, advanced } = view;
  manifest.groups.forEach((group, g) => {
    if (!advanced) {
      if (isGroup(group)) checkRadio(`g${g}`, choices[group.name]);
      else group.tags.forEach((tag, t) => checkRadio(`g${g}t${t}`, choices[tag]));
      return;
    }
    if (isGroup(group)) {
      const choice = canonical(group, choices[group.name]);
      if (choice !== RANDOM) remembered.set(group.name, choice);
      showGroup(group, root.querySelector(`fieldset[data-group="${CSS.escape(group.name)}"]`), choice);
    } else {
      for (const row of root.querySelectorAll('.value-row')) {
        if (!group.tags.includes(row.dataset.tag)) continue;
        const choice = choices[row.dataset.tag];
        if (choice !== RANDOM) remembered.set(row.dataset.tag, choice === 'on' ? 1 : choice === 'off' ? 0 : choice);
        showValue(row, choice);
      }
    }
  });
}
