// The favourites panel: one entry per favourite (best rated first, then newest), each with its face (drawn by
// the page on demand from its noise: `faces` maps a favourite's id to the face drawn, if any), its tags, the
// model it was made with where that is not the one loaded, its rating with +1 / -1, and buttons to save it
// as a file or remove it. A favourite this model cannot draw says why and cannot be opened.

import { openWith, otherModel } from './favourites.js';

const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
};

/** Favourites in the panel's order: rating, highest first, then the newest first. */
export function ordered(items) {
  return [...items].sort((a, b) => b.rating - a.rating || String(b.created).localeCompare(String(a.created)));
}

function button(text, label, onClick, className = '') {
  const node = el('button', { type: 'button', textContent: text, className });
  if (label) node.setAttribute('aria-label', label);
  node.addEventListener('click', onClick);
  return node;
}

/**
 * Fill the list `root` with `items`. `text`: { t, describe(labelsByName) }; `actions`: onOpen(item),
 * onRate(item, +1 | -1), onSave(item), onRemove(item); `draw(canvas, face)` draws a face.
 */
export function renderLibrary(root, items, { manifest, faces, text, actions, draw }) {
  const { t, describe } = text;
  root.replaceChildren(...ordered(items).map((item, i) => {
    const check = openWith(item, manifest);
    const tags = describe(item.labels);
    const open = el('button', { type: 'button', className: 'tile fav-face', disabled: !check.ok });
    open.setAttribute('aria-label', `${t('favourites.item', { n: i + 1 })}: ${tags}`);
    open.title = tags;
    const canvas = el('canvas');
    const face = faces.get(item.id);
    if (face) draw(canvas, face);
    open.append(canvas);
    open.addEventListener('click', () => actions.onOpen(item));
    const notes = [];
    if (otherModel(item, manifest)) {
      notes.push(t('favourites.otherModel', { model: `${item.model.name || '?'} ${item.model.version}`.trim() }));
    }
    if (!check.ok) notes.push(t(check.key, check.params));
    const rating = el('span', { className: 'rating', textContent: item.rating > 0 ? `+${item.rating}` : String(item.rating) });
    rating.setAttribute('aria-label', t('favourites.rating', { rating: item.rating }));
    const entry = el('li', { className: 'fav' }, open, el('div', { className: 'fav-side' },
      el('p', { className: 'fav-tags', textContent: tags }),
      ...notes.map((note) => el('p', { className: 'hint fav-note', textContent: note })),
      el('div', { className: 'fav-actions' },
        button('+1', t('favourites.up'), () => actions.onRate(item, 1), 'rate up'),
        rating,
        button('−1', t('favourites.down'), () => actions.onRate(item, -1), 'rate down'),
        button(t('favourites.save'), null, () => actions.onSave(item)),
        button(t('favourites.remove'), null, () => actions.onRemove(item)))));
    entry.dataset.id = item.id;
    if (!check.ok) entry.classList.add('unusable');
    return entry;
  }));
}
