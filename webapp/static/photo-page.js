// The page's "From a photo" panel: a photo from the file picker, a drop, a paste or the camera is read on the
// device (photo.js), shown with the face it read framed, and what it read becomes the page's ordinary tag
// choices, each with how sure the reader was; then a batch is drawn. Several faces: the largest is read, and
// a click on another (or its button) reads that one instead.
//
// The photo lives in this module's memory only, scaled down, until it is forgotten or replaced: it is never
// put in the share link, the history, storage or the offline cache, and never sent; the tags read from it
// are ordinary choices, in the link like any other. Nothing here can stop the page: every failure is one
// line in the panel (#photo-status), and the reader's library is loaded on the first photo, never before.

import { PhotoError, loadPhoto, loadPhotoReader, photoReaderUrls, tagsFromPhoto } from './photo.js';
import { EYE_COLOURS, HAIR_COLOURS } from './photo-colours.js';
import { NONE, RANDOM } from './share.js';

const DISPLAY_SIDE = 480;   // the shown photo's longer side, in canvas pixels
// The tags a photo can tell, in the order the panel lists them.
const READABLE = [...Object.keys(HAIR_COLOURS), 'long hair', 'short hair', ...Object.keys(EYE_COLOURS), 'smile',
  'open mouth', 'glasses', 'male'];

const $ = (id) => document.getElementById(id);

/**
 * Wire the panel. `hooks`: photoBase (the reader's files), manifest() (a Promise of the model's manifest),
 * choices() (the page's choices, by key), choose(changes) (set { key: choice } and show them on the pickers),
 * draw(since) (queue a batch with the choices; `since`: when the photo was chosen, performance.now()),
 * text ({ t, tag, group, percent }), onReaderLoaded(urls) (the reader's files were downloaded: keep them for
 * offline use), timing({ readMs }) (how long reading took).
 * Returns { sync() (show the page's choices in the panel), showTexts(), reading() (the last reading, no photo) }.
 */
export function setupPhoto(hooks) {
  const { t, tag: tagName, group: groupName, percent } = hooks.text;
  let photo = null;      // { source, loaded, name }: the photo as loadPhoto scaled it, and its name; null when forgotten
  let reading = null;    // tagsFromPhoto's answer for it
  let current = 0;       // the latest read: an earlier one finishing later is dropped
  let readerReady = false;
  let stream = null;     // the camera, while its preview shows
  let manifest = null;   // the model's, once the page has it

  function status(text, refused = false) {
    $('photo-status').textContent = text;
    $('photo-status').hidden = !text;
    $('photo-status').classList.toggle('refused', refused);
  }

  function failed(err) {
    if (err instanceof PhotoError) return t(err.key, err.params);
    console.error(err);
    return t('photo.failed', { reason: String(err?.message ?? err) });
  }

  /** Read `source` (a Blob or a canvas) named `name`; `face` picks one of the faces found (largest first). */
  async function read(source, name, face = 0) {
    const token = ++current;
    const started = performance.now();
    try {
      status(t('photo.reading', { name }));
      manifest = await hooks.manifest();
      if (photo?.source !== source) {     // a new photo (not another face of the one shown)
        photo = null;
        reading = null;
        const loaded = await loadPhoto(source, name);
        if (token !== current) return;
        photo = { source: loaded.canvas, loaded, name };
        show();
      }
      const canvas = photo.source;
      if (!readerReady) status(t('photo.loading'));
      await loadPhotoReader(manifest, { photoBase: hooks.photoBase });
      if (!readerReady) {
        readerReady = true;
        hooks.onReaderLoaded(photoReaderUrls(hooks.photoBase));
      }
      const result = await tagsFromPhoto(canvas, manifest, { photoBase: hooks.photoBase, name, face });
      if (token !== current) return;
      reading = result;
      hooks.timing({ readMs: performance.now() - started });
      show();
      hooks.choose(choicesOf(result.readings));
      const several = result.faces.length > 1;
      status(several ? t('photo.several', { count: result.faces.length, name }) : t('photo.read', { name }));
      hooks.draw(started);
    } catch (err) {
      if (token !== current) return;
      reading = null;
      show();
      status(failed(err), true);
    }
  }

  /** The page's choices the readings make: a sure reading sets its tag (on or off), an unsure one Random. */
  function choicesOf(readings) {
    const changes = {};
    for (const r of readings) {
      if (!r.sure) changes[r.key] = RANDOM;
      else if (r.key !== r.tag) changes[r.key] = r.tag;
      else changes[r.key] = r.on ? 'on' : 'off';
    }
    return changes;
  }

  // ---------------------------------------------------------------- showing

  /** The photo with the faces found framed (the one read thick), and the tag rows. */
  function show() {
    $('photo-result').hidden = !photo;
    if (!photo) return;
    const { canvas } = photo.loaded;
    const scale = Math.min(1, DISPLAY_SIDE / Math.max(canvas.width, canvas.height));
    const shown = $('photo-canvas');
    shown.width = Math.round(canvas.width * scale);
    shown.height = Math.round(canvas.height * scale);
    const context = shown.getContext('2d');
    context.drawImage(canvas, 0, 0, shown.width, shown.height);
    const faces = reading?.faces ?? [];
    // The boxes in the shown canvas's pixels (a click picks a face by them); the photo's are in the loaded canvas's.
    shown.kyaraFaces = faces.map((b) => ({ x: b.x * scale, y: b.y * scale, width: b.width * scale, height: b.height * scale }));
    shown.kyaraFaces.forEach((box, i) => {
      const read = faces[i] === reading.face;
      context.lineWidth = read ? 4 : 2;
      context.setLineDash(read ? [] : [6, 4]);
      for (const [colour, inset] of [['#000a', 0], [read ? '#f0a020' : '#fff', 1]]) {
        context.strokeStyle = colour;
        context.strokeRect(box.x + inset, box.y + inset, box.width, box.height);
      }
    });
    showFaceButtons();
    showRows();
  }

  function showFaceButtons() {
    const faces = reading?.faces ?? [];
    $('photo-faces').replaceChildren(...(faces.length > 1 ? faces.map((box, i) => {
      const button = Object.assign(document.createElement('button'), {
        type: 'button', textContent: t(box === reading.face ? 'photo.faceRead' : 'photo.face', { n: i + 1 }),
      });
      button.setAttribute('aria-pressed', String(box === reading.face));
      button.addEventListener('click', () => readFace(i));
      return button;
    }) : []));
  }

  function readFace(i) {
    if (photo && reading && reading.faces[i] !== reading.face) read(photo.source, photo.name, i);
  }

  /** One row per tag group the photo can tell: the group's choice as a menu, and how sure the reader was. */
  function showRows() {
    const rows = $('photo-tags');
    if (!manifest || !reading) {
      rows.replaceChildren();
      return;
    }
    const keys = [];
    for (const tag of READABLE) {
      if (!manifest.tags.includes(tag)) continue;
      const group = manifest.groups.find((g) => g.tags.includes(tag));
      const key = group.exclusive || group.at_most_one ? group.name : tag;
      if (!keys.includes(key)) keys.push(key);
    }
    rows.replaceChildren(...keys.flatMap((key, k) => row(key, k)));
    sync();
  }

  function row(key, k) {
    const group = manifest.groups.find((g) => g.name === key && (g.exclusive || g.at_most_one));
    const options = group
      ? [[RANDOM, t('random')], ...(group.at_most_one ? [[NONE, t('none')]] : []), ...group.tags.map((tag) => [tag, tagName(tag)])]
      : [[RANDOM, t('random')], ['on', t('on')], ['off', t('off')]];
    const select = document.createElement('select');
    select.id = `photo-choice-${k}`;
    select.dataset.key = key;
    select.append(...options.map(([value, text]) => Object.assign(document.createElement('option'), { value, textContent: text })));
    select.addEventListener('change', () => hooks.choose({ [key]: select.value }));
    const label = Object.assign(document.createElement('label'), {
      htmlFor: select.id, textContent: capitalise(group ? groupName(key) : tagName(key)),
    });
    const sure = Object.assign(document.createElement('p'), { className: 'sure' });
    const found = reading.readings.find((r) => r.key === key);
    if (found?.colour) {
      const dot = Object.assign(document.createElement('span'), { className: 'dot', title: found.colour });
      dot.style.setProperty('background-color', found.colour);
      sure.append(dot);
    }
    sure.append(sureText(found));
    return [label, select, sure];
  }

  function sureText(r) {
    if (!r) return t('photo.notRead');
    const share = percent(r.confidence);
    if (r.sure) return t('photo.sure', { percent: share });
    if (r.on === null) return t('photo.unsureColour', { tag: tagName(r.tag), percent: share });
    return t('photo.unsureYesNo', { answer: r.on ? t('on') : t('off'), percent: share });
  }

  /** Show the page's choices in the panel's menus (a choice the menu cannot show, advanced mode's, as such). */
  function sync() {
    const choices = hooks.choices();
    for (const select of $('photo-tags').querySelectorAll('select')) {
      const choice = choices[select.dataset.key];
      const custom = select.querySelector('option[value=""]');
      if ([...select.options].some((option) => option.value === choice && option.value !== '')) {
        custom?.remove();
        select.value = choice;
      } else {
        if (!custom) select.append(Object.assign(document.createElement('option'), { value: '', textContent: t('photo.advanced'), disabled: true }));
        select.value = '';
      }
    }
  }

  function forget() {
    current += 1;
    photo = null;
    reading = null;
    const shown = $('photo-canvas');
    shown.width = 0;
    shown.height = 0;
    shown.kyaraFaces = [];
    show();
    status('');
  }

  // ---------------------------------------------------------------- sources

  /** The first file of a drop, paste or picker, read; nothing when there is none. */
  function readFiles(files) {
    const file = files?.[0];
    if (file) read(file, file.name || t('photo.name'));
  }

  async function startCamera() {
    stopCamera();
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'user' }, audio: false });
      $('photo-video').srcObject = stream;
      $('photo-live').hidden = false;
      await $('photo-video').play();
    } catch (err) {
      stopCamera();
      status(t('photo.noCamera', { reason: err?.message || err?.name || String(err) }), true);
    }
  }

  function stopCamera() {
    stream?.getTracks().forEach((track) => track.stop());
    stream = null;
    $('photo-video').srcObject = null;
    $('photo-live').hidden = true;
  }

  function snap() {
    const video = $('photo-video');
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    if (canvas.width && canvas.height) canvas.getContext('2d').drawImage(video, 0, 0);
    stopCamera();
    read(canvas, t('photo.cameraName'));
  }

  const holdsFiles = (event) => [...(event.dataTransfer?.types ?? [])].includes('Files');

  $('photo-choose').addEventListener('click', () => $('photo-file').click());
  $('photo-file').addEventListener('change', () => {
    const { files } = $('photo-file');
    readFiles(files);
    $('photo-file').value = '';
  });
  // A file dropped anywhere on the page is read: let through, the browser would leave the page for it.
  document.addEventListener('dragover', (event) => {
    if (!holdsFiles(event)) return;
    event.preventDefault();
    $('photo').classList.add('dragging');
  });
  document.addEventListener('dragleave', (event) => {
    if (!event.relatedTarget) $('photo').classList.remove('dragging');
  });
  document.addEventListener('drop', (event) => {
    $('photo').classList.remove('dragging');
    if (!holdsFiles(event)) return;
    event.preventDefault();
    readFiles(event.dataTransfer.files);
    $('photo').scrollIntoView({ block: 'nearest' });
  });
  document.addEventListener('paste', (event) => {
    const files = [...(event.clipboardData?.files ?? [])].filter((file) => file.type.startsWith('image/'));
    if (files.length) readFiles(files);
  });
  if (navigator.mediaDevices?.getUserMedia) {
    $('photo-camera').hidden = false;
    $('photo-camera').addEventListener('click', startCamera);
  }
  $('photo-snap').addEventListener('click', snap);
  $('photo-stop').addEventListener('click', stopCamera);
  $('photo-forget').addEventListener('click', forget);
  $('photo-canvas').addEventListener('click', (event) => {
    const shown = $('photo-canvas');
    const rect = shown.getBoundingClientRect();
    const x = ((event.clientX - rect.left) * shown.width) / rect.width;
    const y = ((event.clientY - rect.top) * shown.height) / rect.height;
    const hits = (shown.kyaraFaces ?? []).map((box, i) => [box, i])
      .filter(([box]) => x >= box.x && x <= box.x + box.width && y >= box.y && y <= box.y + box.height)
      .sort(([a], [b]) => a.width * a.height - b.width * b.height);
    if (hits.length) readFace(hits[0][1]);
  });

  return {
    sync,
    showTexts() {
      if (reading) {
        showFaceButtons();
        showRows();
      }
    },
    reading: () => reading && JSON.parse(JSON.stringify(reading)),
  };
}

function capitalise(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
