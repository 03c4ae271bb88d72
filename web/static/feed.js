// A shopper's feed: sign-in with a token, posting, following, the feed
// newest first with older items loading as one scrolls.
'use strict';

(() => {
  const { api, el, money, effectivePrice, productURL, showError, session } = feedline;
  const $ = (id) => document.getElementById(id);
  let token = session.get('shopper');
  let me = '';
  let cursor = '';
  let loading = false;
  const shown = new Set();

  // The token's subject is the shopper; the server verifies the token on
  // every call, this only names who is signed in.
  function subject(t) {
    try {
      const part = t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(part)).sub || '';
    } catch (_) {
      return '';
    }
  }

  function call(path, opts = {}) {
    return api(path, Object.assign({ token }, opts));
  }

  function fail(e) {
    showError($('error'), e);
    if (e.status === 401) signOut();
  }

  function notice(text) {
    $('notice').textContent = text;
    $('notice').hidden = !text;
  }

  function author(a) {
    const [kind, id] = a.split(':');
    return kind === 'shop' ? 'Shop ' + id : id;
  }

  function item(it) {
    const head = el('div', {}, el('span', { class: 'who' }, author(it.author)), el('time', { datetime: it.time }, feedline.when(it.time)));
    if (it.kind === 'post' && it.post) {
      return el('li', { class: 'item post', 'data-id': it.id }, head, el('p', {}, it.post.text),
        it.post.product_id ? el('a', { href: productURL(it.post.product_id) }, 'About ' + it.post.product_id) : null);
    }
    const p = it.product;
    if (!p) return el('li', { class: 'item', 'data-id': it.id }, head, el('p', { class: 'muted' }, 'This product is no longer listed.'));
    const link = el('a', { href: productURL(p.id) }, p.title);
    if (it.kind === 'price_drop') {
      const pc = it.price_change;
      return el('li', { class: 'item drop', 'data-id': it.id }, head,
        el('p', {}, 'Price drop: ', link, ' ',
          pc ? el('span', { class: 'old' }, el('span', { class: 'visually-hidden' }, 'was '), money(pc.old, pc.currency || p.currency)) : null,
          pc ? ' → ' : 'now ',
          el('span', { class: 'new' }, money(pc ? pc.new : effectivePrice(p), (pc && pc.currency) || p.currency))));
    }
    return el('li', { class: 'item product', 'data-id': it.id }, head,
      el('p', {}, 'New: ', link, ' ', money(effectivePrice(p), p.currency)));
  }

  async function loadFeed(reset) {
    if (loading) return;
    if (!reset && !cursor) return;
    loading = true;
    try {
      const u = new URLSearchParams({ limit: '20' });
      if (!reset) u.set('cursor', cursor);
      const page = await call('/v1/feed?' + u);
      if (reset) {
        $('feed').replaceChildren();
        shown.clear();
      }
      for (const it of page.items) {
        if (shown.has(it.id)) continue;
        shown.add(it.id);
        $('feed').append(item(it));
      }
      if (reset && !page.items.length) $('feed').append(el('li', { class: 'muted' }, 'Nothing yet: follow a shop or a shopper, or post something.'));
      cursor = page.next_cursor || '';
      $('older').hidden = !cursor;
      $('feed-end').hidden = !!cursor || !page.items.length;
      showError($('error'), null);
    } catch (e) {
      fail(e);
    } finally {
      loading = false;
    }
  }

  // Lists of whom I follow and who follows me, page by page.
  const lists = { following: '', followers: '' };
  async function loadList(name, reset) {
    try {
      const u = new URLSearchParams({ limit: '20' });
      if (!reset && lists[name]) u.set('cursor', lists[name]);
      const page = await call('/v1/users/' + encodeURIComponent(me) + '/' + name + '?' + u);
      const ul = $(name);
      if (reset) ul.replaceChildren();
      for (const f of page.items) {
        const who = name === 'following' ? f.author : 'user:' + f.user;
        const li = el('li', { class: 'item' }, author(who));
        if (name === 'following') {
          const [kind, id] = who.split(':');
          li.append(' ', el('button', { type: 'button', class: 'link', 'aria-label': 'Unfollow ' + author(who), onclick: () => follow(kind, id, false) }, 'Unfollow'));
        }
        ul.append(li);
      }
      if (reset && !page.items.length) ul.append(el('li', { class: 'muted' }, 'Nobody yet.'));
      lists[name] = page.next_cursor || '';
      $(name + '-more').hidden = !lists[name];
    } catch (e) {
      fail(e);
    }
  }

  async function follow(kind, id, on) {
    try {
      await call('/v1/follows/' + kind + '/' + encodeURIComponent(id), { method: on ? 'PUT' : 'DELETE', headers: { 'Idempotency-Key': crypto.randomUUID() } });
      showError($('error'), null);
      notice((on ? 'Following ' : 'No longer following ') + author(kind + ':' + id) + '.');
      // The follow graph is updated from the event log, a moment later.
      setTimeout(() => loadList('following', true), 600);
      setTimeout(() => loadFeed(true), 1200);
    } catch (e) {
      fail(e);
    }
  }

  function signOut() {
    session.clear('shopper');
    token = '';
    show();
  }

  function show() {
    me = token ? subject(token) : '';
    $('signin').hidden = !!me;
    $('signed-in').hidden = !me;
    if (!me) return;
    $('me').textContent = me;
    loadFeed(true);
    loadList('following', true);
    loadList('followers', true);
  }

  $('signin-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const t = $('token').value.trim();
    if (!subject(t)) {
      showError($('error'), new Error('That is not a shopper token: it should be three parts joined by dots, as feedline token prints.'));
      return;
    }
    token = t;
    try {
      await call('/v1/feed?limit=1');
    } catch (e) {
      token = '';
      showError($('error'), e);
      return;
    }
    session.set('shopper', t);
    $('token').value = '';
    showError($('error'), null);
    show();
  });
  $('signout').addEventListener('click', signOut);
  $('post-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { text: $('post-text').value };
    const product = $('post-product').value.trim();
    if (product) body.product_id = product;
    try {
      await call('/v1/posts', { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json', 'Idempotency-Key': crypto.randomUUID() } });
      $('post-text').value = '';
      $('post-product').value = '';
      showError($('error'), null);
      notice('Posted. It shows in your feed in a moment.');
      setTimeout(() => loadFeed(true), 800);
    } catch (e) {
      fail(e);
    }
  });
  $('follow-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    follow($('follow-kind').value, $('follow-id').value.trim(), true);
  });
  $('unfollow-button').addEventListener('click', () => {
    if ($('follow-form').reportValidity()) follow($('follow-kind').value, $('follow-id').value.trim(), false);
  });
  $('refresh').addEventListener('click', () => loadFeed(true));
  $('older').addEventListener('click', () => loadFeed(false));
  $('following-more').addEventListener('click', () => loadList('following', false));
  $('followers-more').addEventListener('click', () => loadList('followers', false));
  // Older items load as the end of the feed scrolls into view.
  new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) loadFeed(false);
  }).observe($('older'));

  show();
})();
