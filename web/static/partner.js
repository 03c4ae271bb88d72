// The partner console: upload with progress and live status, the upload
// list, issues, the mapping with a preview, the scheduled source.
'use strict';

(() => {
  const { api, answer, el, money, showError, session } = feedline;
  const $ = (id) => document.getElementById(id);
  let partner = session.get('partner');
  let key = session.get('partner_key');
  let current = ''; // the upload shown in the status panel
  let polling = 0;
  let uploadsCursor = '';
  let shownActions = ''; // the upload and state the status panel's actions were made for

  function call(path, opts = {}) {
    return api(path, Object.assign({ token: key }, opts));
  }
  function base() {
    return '/v1/partners/' + encodeURIComponent(partner);
  }
  function fail(e) {
    showError($('error'), e);
    if (e.status === 401 || e.status === 403) signOut();
  }
  function row(...cells) {
    return el('tr', {}, ...cells.map((c) => el('td', {}, c)));
  }
  function summaryRows(tbody, summary) {
    tbody.replaceChildren();
    for (const s of summary || []) tbody.append(row(s.severity, s.code, s.field || '', s.count, (s.first_rows || []).join(', ')));
    if (!tbody.children.length) tbody.append(el('tr', {}, el('td', { colspan: '5' }, 'No issues.')));
  }

  // The stages an upload goes through, and how its status says each is done.
  const stages = [
    ['Received', () => true],
    ['Read', (st) => st.state !== 'received' && (st.counts.read > 0 || st.normalised || st.state === 'done')],
    ['Normalised', (st) => st.normalised || st.state === 'done'],
    ['Indexed', (st) => st.state === 'done' && st.counts.indexed + st.counts.deleted >= st.counts.accepted],
  ];
  const finished = ['done', 'failed', 'cancelled', 'held'];

  function percent(n) {
    return Number(n).toLocaleString(undefined, { maximumFractionDigits: 1 }) + '%';
  }
  function at(t) {
    const w = feedline.when(t);
    return w ? ' at ' + w : '';
  }

  // Why a held upload waits, in the figures its status carries.
  function holdReason(h) {
    return `It would delete ${h.would_delete} of your ${h.live} live products (${percent(h.percent)}), ` +
      `more than the ${h.max_delete_percent}% your settings allow.`;
  }

  // The same, short enough for the upload list.
  function heldFor(h) {
    return `Would delete ${h.would_delete} of ${h.live} (${percent(h.percent)}); your limit is ${h.max_delete_percent}%.`;
  }

  // What became of an upload that was held or cancelled.
  function outcome(st) {
    const h = st.hold;
    if (h && h.decision === 'confirm') return `Held for deleting ${h.would_delete} of ${h.live} products, then applied${at(h.decided_at)}.`;
    if (h && h.decision === 'cancel') return `Held for deleting ${h.would_delete} of ${h.live} products, then cancelled${at(h.decided_at)}: nothing of it was applied.`;
    const c = st.cancellation;
    if (c) return `Cancelled${at(c.at)}: ` + (c.applied ? 'what was processed before stays in the catalog.' : 'nothing of it reached the catalog.');
    return '';
  }

  // Shows the upload, live, once a partner acted on it.
  function acted(id) {
    showError($('error'), null);
    loadUploads(true);
    watch(id);
    $('status-heading').focus();
  }

  // The buttons for what can be done with an upload in its state: decide on
  // a held one, cancel one not yet applied, retry a failed one. In the list
  // each button also names its upload.
  function actions(st, place) {
    const id = st.id;
    const path = '/v1/uploads/' + encodeURIComponent(id);
    const named = (text) => (place === 'list' ? text + ', upload ' + id : undefined);
    const box = el('div', { class: 'actions' });
    const err = el('p', { class: 'error', role: 'alert', hidden: true });
    const buttons = el('div', { class: 'row' });
    async function act(run) {
      const all = [...box.querySelectorAll('button')];
      all.forEach((b) => { b.disabled = true; });
      try {
        acted(await run());
      } catch (e) {
        all.forEach((b) => { b.disabled = false; });
        showError(err, e);
        if (e.status === 401 || e.status === 403) fail(e);
      }
    }
    const button = (text, cls, onclick) => el('button', { type: 'button', class: cls, 'aria-label': named(text), onclick }, text);

    if (st.state === 'held' && st.hold) {
      const h = st.hold;
      if (place === 'panel') {
        box.append(el('p', { class: 'warning' }, 'This full upload is held. ' + holdReason(h) +
          ' Nothing of it is applied until you decide: apply it with its deletions, or cancel it and keep the catalog as it is.'));
      }
      const question = 'ask-' + place + '-' + id;
      const yes = button(`Yes, delete ${h.would_delete} products`, 'danger',
        () => act(() => call(path + '/confirm', { method: 'POST' }).then(() => id)));
      const back = button('Go back', 'secondary', () => {
        ask.hidden = true;
        buttons.hidden = false;
        apply.focus();
      });
      const ask = el('div', { class: 'confirm', role: 'group', 'aria-labelledby': question, hidden: true },
        el('p', { id: question }, `Apply upload ${id} and delete ${h.would_delete} of your ${h.live} products from the catalog? ` +
          'They leave the store and its search; only uploading them again brings them back.'),
        el('div', { class: 'row' }, yes, back));
      const apply = button('Apply the deletions', '', () => {
        buttons.hidden = true;
        ask.hidden = false;
        yes.focus();
      });
      buttons.append(apply, button('Cancel this upload', 'secondary',
        () => act(() => call(path + '/cancel', { method: 'POST' }).then(() => id))));
      box.append(buttons, ask);
    } else if ((st.state === 'received' || st.state === 'processing') && !st.normalised) {
      buttons.append(button('Cancel this upload', 'secondary', () => act(() => call(path, { method: 'DELETE' }).then(() => id))));
      box.append(buttons);
    } else if (st.state === 'failed') {
      buttons.append(button('Retry this upload', 'secondary',
        () => act(() => call(path + '/retry', { method: 'POST' }).then((out) => out.upload_id))));
      box.append(buttons);
    } else if (place === 'panel' && outcome(st)) {
      box.append(el('p', { class: 'muted' }, outcome(st)));
    }
    box.append(err);
    return box;
  }

  function showStatus(st) {
    $('status').hidden = false;
    $('status-id').textContent = st.id;
    let line = 'State: ' + st.state;
    if (st.state === 'held') line += ', waiting for your decision';
    if (st.waiting_for) line += ' (waiting for ' + st.waiting_for + ')';
    if (st.error) line += ': ' + st.error;
    $('status-line').textContent = line;
    // Polling must not redraw the buttons under the partner's hand.
    const key = [st.id, st.state, st.normalised, st.hold && st.hold.decision].join(' ');
    if (key !== shownActions) {
      shownActions = key;
      $('status-actions').replaceChildren(actions(st, 'panel'));
    }
    $('stages').replaceChildren(...stages.map(([name, done]) => {
      const ok = done(st);
      return el('li', { class: ok ? 'done' : '' }, (ok ? '✓ ' : '… ') + name);
    }));
    const c = st.counts || {};
    $('counts').tBodies[0].replaceChildren(
      ...['read', 'accepted', 'unchanged', 'rejected', 'excluded', 'warnings', 'indexed', 'deleted'].map((k) =>
        el('tr', {}, el('th', { scope: 'row' }, k), el('td', {}, c[k] || 0))));
    summaryRows($('issue-summary').tBodies[0], st.issue_summary);
    const rej = $('rejections').tBodies[0];
    rej.replaceChildren(...(st.rejections || []).map((r) => row(r.row, r.source_id, r.code, r.reason)));
    if (!rej.children.length) rej.append(el('tr', {}, el('td', { colspan: '4' }, 'No rejected rows.')));
  }

  // Polls the upload's status until it finishes.
  async function watch(id) {
    current = id;
    const mine = ++polling;
    for (;;) {
      let st;
      try {
        st = await call('/v1/uploads/' + encodeURIComponent(id));
      } catch (e) {
        fail(e);
        return;
      }
      if (mine !== polling) return;
      showStatus(st);
      if (finished.includes(st.state) && (st.state !== 'done' || stages[3][1](st))) {
        loadUploads(true);
        return;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  function upload(file, mode) {
    const u = new URLSearchParams({ mode, filename: file.name });
    const xhr = new XMLHttpRequest();
    $('upload-progress').hidden = false;
    $('progress').value = 0;
    $('upload-button').disabled = true;
    xhr.upload.addEventListener('progress', (ev) => {
      if (ev.lengthComputable) $('progress').value = Math.round((ev.loaded / ev.total) * 100);
    });
    xhr.addEventListener('load', async () => {
      $('upload-button').disabled = false;
      const res = new Response(xhr.response, { status: xhr.status, statusText: xhr.statusText, headers: { 'Content-Type': xhr.getResponseHeader('Content-Type') || '' } });
      try {
        const out = await answer(res);
        $('progress').value = 100;
        showError($('error'), null);
        watch(out.upload_id);
      } catch (e) {
        fail(e);
      }
    });
    xhr.addEventListener('error', () => {
      $('upload-button').disabled = false;
      showError($('error'), new Error('The upload was cut off before the server answered. Check your connection and upload again.'));
    });
    xhr.open('POST', base() + '/uploads?' + u);
    xhr.setRequestHeader('Authorization', 'Bearer ' + key);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.send(file);
  }

  async function loadUploads(reset) {
    try {
      const u = new URLSearchParams({ limit: '20' });
      if (!reset && uploadsCursor) u.set('cursor', uploadsCursor);
      const page = await call(base() + '/uploads?' + u);
      const tbody = $('uploads').tBodies[0];
      if (reset) tbody.replaceChildren();
      for (const st of page.uploads) {
        tbody.append(el('tr', { 'data-id': st.id },
          el('td', {}, feedline.when(st.received_at)), el('td', {}, st.filename || st.source || ''),
          el('td', {}, st.state, st.hold && st.state === 'held' ? el('p', { class: 'muted' }, heldFor(st.hold)) : null),
          el('td', {}, st.counts.accepted), el('td', {}, st.counts.rejected),
          el('td', {}, el('button', { type: 'button', class: 'link', 'aria-label': 'Details of upload ' + st.id, onclick: () => watch(st.id) }, 'Details'),
            actions(st, 'list'))));
      }
      if (reset && !page.uploads.length) tbody.append(el('tr', {}, el('td', { colspan: '6' }, 'No uploads yet.')));
      uploadsCursor = page.next_cursor || '';
      $('uploads-more').hidden = !uploadsCursor;
    } catch (e) {
      fail(e);
    }
  }

  // The issue list needs the key, so it is fetched and handed to the
  // browser as a file rather than linked.
  async function downloadIssues() {
    if (!current) return;
    try {
      const res = await fetch('/v1/uploads/' + encodeURIComponent(current) + '/issues?format=csv', { headers: { Authorization: 'Bearer ' + key } });
      if (!res.ok) await answer(res);
      const url = URL.createObjectURL(await res.blob());
      const a = el('a', { href: url, download: current + '-issues.csv' });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) {
      fail(e);
    }
  }

  async function loadMapping() {
    try {
      const m = await call(base() + '/mapping');
      $('mapping-version').textContent = 'Version ' + m.version + (m.updated_at ? ', saved ' + feedline.when(m.updated_at) : '');
      const shown = Object.assign({}, m);
      delete shown.version;
      delete shown.updated_at;
      $('mapping').value = JSON.stringify(shown, null, 2);
    } catch (e) {
      if (e.status === 404) {
        $('mapping-version').textContent = 'No mapping yet: write one and save it.';
        $('mapping').value = '{\n  "fields": {}\n}';
      } else fail(e);
    }
  }

  async function saveMapping() {
    try {
      JSON.parse($('mapping').value);
    } catch (e) {
      showError($('error'), new Error('The mapping is not valid JSON: ' + e.message));
      return;
    }
    try {
      await call(base() + '/mapping', { method: 'PUT', body: $('mapping').value, headers: { 'Content-Type': 'application/json' } });
      showError($('error'), null);
      loadMapping();
    } catch (e) {
      fail(e);
    }
  }

  async function preview() {
    const file = $('sample-file').files[0];
    if (!file) {
      showError($('error'), new Error('Choose a sample file to preview the mapping on.'));
      return;
    }
    const form = new FormData();
    form.append('mapping', new Blob([$('mapping').value], { type: 'application/json' }), 'mapping.json');
    form.append('file', file, file.name);
    try {
      const pv = await call(base() + '/mapping/preview', { method: 'POST', body: form });
      showError($('error'), null);
      $('preview').hidden = false;
      const c = pv.counts;
      $('preview-counts').textContent = `${c.read} rows read: ${c.valid} valid, ${c.rejected} rejected, ${c.warnings} warnings` +
        (pv.truncated ? ' (the first part of the file)' : '') + '. Columns: ' + (pv.columns || []).join(', ');
      const tbody = $('preview-products').tBodies[0];
      tbody.replaceChildren(...(pv.products || []).slice(0, 20).map((p) =>
        row(p.id, p.title, p.brand || '', money(p.sale_price ?? p.price, p.currency), p.availability)));
      summaryRows($('preview-issues').tBodies[0], pv.issue_summary);
    } catch (e) {
      fail(e);
    }
  }

  const fetchOutcomes = {
    fetched: 'fetched, a new upload', not_modified: 'not modified since the last fetch',
    failed: 'failed (retried later)', skipped: 'skipped: too many uploads in flight, tried again soon',
  };

  async function loadSource() {
    const box = $('source');
    try {
      const s = await call(base() + '/source');
      const last = s.last_fetch;
      box.replaceChildren(el('dl', {},
        el('dt', {}, 'Feed'), el('dd', {}, s.url),
        el('dt', {}, 'Every'), el('dd', {}, s.every + ' (' + s.mode + ')'),
        el('dt', {}, 'Next fetch'), el('dd', {}, s.fetching ? 'fetching now' : feedline.when(s.next_fetch_at)),
        el('dt', {}, 'Last fetch'), el('dd', {}, last
          ? `${feedline.when(last.at)}: ${fetchOutcomes[last.status] || last.status}${last.http_status ? ' (HTTP ' + last.http_status + ')' : ''}${last.error ? ', ' + last.error : ''}${last.upload_id ? ', upload ' + last.upload_id : ''}`
          : 'not fetched yet'),
        s.last_upload_id ? el('dt', {}, 'Last upload') : null,
        s.last_upload_id ? el('dd', {}, el('button', { type: 'button', class: 'link', onclick: () => watch(s.last_upload_id) }, s.last_upload_id)) : null,
        s.failures ? el('dt', {}, 'Failures in a row') : null, s.failures ? el('dd', {}, s.failures) : null));
      $('fetch-now').hidden = false;
    } catch (e) {
      if (e.status === 404) {
        box.replaceChildren(el('p', { class: 'muted' }, 'No scheduled source: feedline fetches nothing for you. Set one with PUT ' + base() + '/source.'));
        $('fetch-now').hidden = true;
      } else box.replaceChildren(el('p', { class: 'error' }, e.message));
    }
  }

  async function fetchNow() {
    try {
      await call(base() + '/source/fetch', { method: 'POST' });
      showError($('error'), null);
      setTimeout(loadSource, 1000);
    } catch (e) {
      fail(e);
    }
  }

  function signOut() {
    session.clear('partner');
    session.clear('partner_key');
    partner = key = '';
    polling++;
    show();
  }

  function show() {
    const on = !!(partner && key);
    $('signin').hidden = on;
    $('console').hidden = !on;
    if (!on) return;
    $('me').textContent = partner;
    loadUploads(true);
    loadMapping();
    loadSource();
  }

  $('signin-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    partner = $('partner-id').value.trim();
    key = $('partner-key').value.trim();
    try {
      await call(base() + '/uploads?limit=1');
    } catch (e) {
      partner = key = '';
      showError($('error'), e);
      return;
    }
    session.set('partner', partner);
    session.set('partner_key', key);
    $('partner-key').value = '';
    showError($('error'), null);
    show();
  });
  $('signout').addEventListener('click', signOut);
  $('upload-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const file = $('upload-file').files[0];
    if (file) upload(file, $('upload-mode').value);
  });
  $('uploads-refresh').addEventListener('click', () => loadUploads(true));
  $('uploads-more').addEventListener('click', () => loadUploads(false));
  $('download-issues').addEventListener('click', downloadIssues);
  $('save-mapping').addEventListener('click', saveMapping);
  $('preview-button').addEventListener('click', preview);
  $('fetch-now').addEventListener('click', fetchNow);

  show();
})();
