// The storefront: search with suggestions as you type, facets that narrow,
// sort, cursor pages.
'use strict';

(() => {
  const { api, el, money, effectivePrice, availabilityNames, productURL, showError } = feedline;
  const $ = (id) => document.getElementById(id);
  const multi = ['brand', 'category', 'availability', 'partner'];

  // The search lives in the page's query string (no keys there), so a
  // search can be bookmarked and the back button works.
  function fromURL() {
    const u = new URLSearchParams(location.search);
    const s = {
      q: u.get('q') || '', sort: u.get('sort') || 'relevance',
      min_price: u.get('min_price') || '', max_price: u.get('max_price') || '', currency: u.get('currency') || '',
    };
    for (const f of multi) s[f] = u.getAll(f);
    return s;
  }

  let state = fromURL();
  let cursors = ['']; // cursors[i] opens page i+1
  let page = 0;
  // The currency prices are shown and entered in: the one a price search
  // compared in, else that of the results shown.
  let currency = state.currency || 'KRW';

  // A price filter or sort compares in one currency; other currencies'
  // products are left out of it.
  function comparesPrices(s) {
    return s.min_price !== '' || s.max_price !== '' || s.sort === 'price_asc' || s.sort === 'price_desc';
  }

  function query(s, cursor) {
    const u = new URLSearchParams();
    if (s.q) u.set('q', s.q);
    if (s.sort && s.sort !== 'relevance') u.set('sort', s.sort);
    for (const f of multi) for (const v of s[f]) u.append(f, v);
    if (s.min_price) u.set('min_price', s.min_price);
    if (s.max_price) u.set('max_price', s.max_price);
    if (s.currency && comparesPrices(s)) u.set('currency', s.currency);
    if (cursor) u.set('cursor', cursor);
    return u;
  }

  async function run(push) {
    if (push) history.pushState(null, '', '/?' + query(state, ''));
    cursors = [''];
    page = 0;
    await load();
  }

  async function load() {
    const u = query(state, cursors[page]);
    u.set('limit', '12');
    // The price statistics come in the currency asked; the page's URL
    // names one only for a price filter or sort.
    if (!u.has('currency')) u.set('currency', currency);
    $('hits').setAttribute('aria-busy', 'true');
    try {
      const res = await api('/v1/search?' + u);
      showError($('error'), null);
      render(res);
    } catch (e) {
      showError($('error'), e);
    } finally {
      $('hits').removeAttribute('aria-busy');
    }
  }

  function render(res) {
    // Past the search's counting bound the total is a lower bound.
    $('total').textContent = res.total_relation === 'gte' ? 'More than ' + res.total.toLocaleString() : res.total;
    $('took').textContent = 'in ' + res.took_ms + ' ms';
    const list = $('hits');
    list.replaceChildren();
    if (res.price_currency) currency = res.price_currency;
    else if (res.hits.length) currency = res.hits[0].currency || currency;
    $('price-currency').textContent = '(' + currency + ')';
    for (const p of res.hits) list.append(hit(p));
    if (!res.hits.length) list.append(el('li', { class: 'empty' }, 'No products match. Try fewer words or clear a filter.'));
    cursors = cursors.slice(0, page + 1);
    if (res.next_cursor) cursors.push(res.next_cursor);
    $('prev').disabled = page === 0;
    $('next').disabled = !res.next_cursor;
    $('page-no').textContent = 'Page ' + (page + 1);
    renderFacet('brand', res.facets.brand || []);
    renderFacet('category', res.facets.category || []);
    renderFacet('availability', res.facets.availability || []);
    renderFacet('partner', res.facets.partner || []);
    renderPriceSpan(res.price_stats);
  }

  // The span of the prices found becomes the range inputs' placeholders.
  function renderPriceSpan(st) {
    const shown = st && st.currency === currency;
    $('min-price').placeholder = shown ? toMajor(String(st.min)) : '';
    $('max-price').placeholder = shown ? toMajor(String(st.max)) : '';
    $('price-span').textContent = shown ? 'Prices found: ' + money(st.min, st.currency) + ' to ' + money(st.max, st.currency) : '';
  }

  function hit(p) {
    const price = effectivePrice(p);
    return el('li', { class: 'hit', 'data-id': p.id },
      el('a', { href: productURL(p.id), class: 'title' }, ...marked(p.title, p.highlight && p.highlight.title)),
      el('div', { class: 'meta' },
        p.brand ? el('span', { class: 'brand-name' }, p.brand) : null,
        el('span', { class: 'shop' }, 'Shop: ' + p.partner),
        el('span', { class: 'avail avail-' + p.availability }, availabilityNames[p.availability] || p.availability)),
      el('div', { class: 'price' },
        price !== p.price ? el('s', { class: 'was' }, money(p.price, p.currency)) : null,
        ' ', el('strong', {}, money(price, p.currency))));
  }

  // Marks the ranges of text the search answer says matched (typos,
  // completions and synonyms included): [start, end) in UTF-16 code units,
  // the units JavaScript strings are indexed by. Built from text nodes, so a
  // title can never become markup.
  function marked(text, ranges) {
    if (!ranges || !ranges.length) return [text];
    const out = [];
    let i = 0;
    for (const [start, end] of ranges) {
      if (start < i || start >= end || end > text.length) continue;
      if (start > i) out.push(text.slice(i, start));
      out.push(el('mark', {}, text.slice(start, end)));
      i = end;
    }
    if (i < text.length) out.push(text.slice(i));
    return out;
  }

  function renderFacet(name, counts) {
    const box = document.querySelector('#facet-' + name + ' .options');
    box.replaceChildren();
    const chosen = new Set(state[name]);
    // A chosen value stays visible even when the facet no longer lists it.
    for (const v of chosen) if (!counts.some((c) => c.value === v)) counts = counts.concat([{ value: v }]);
    counts.forEach((c, i) => {
      const id = 'f-' + name + '-' + i;
      const label = name === 'availability' ? availabilityNames[c.value] : c.value;
      const input = el('input', { type: 'checkbox', id, value: c.value, checked: chosen.has(c.value), 'data-facet': name });
      input.addEventListener('change', () => {
        state[name] = input.checked ? state[name].concat([c.value]) : state[name].filter((v) => v !== c.value);
        run(true);
      });
      box.append(el('div', { class: 'option' }, input,
        el('label', { for: id }, label, c.count !== undefined ? el('span', { class: 'count' }, ' (' + c.count + ')') : null)));
    });
    if (!counts.length) box.append(el('p', { class: 'muted' }, 'None'));
  }

  function toMinor(v) {
    if (v === '') return '';
    return String(Math.round(Number(v) * Math.pow(10, feedline.fractionDigits(currency))));
  }
  function toMajor(v) {
    if (v === '') return '';
    return String(Number(v) / Math.pow(10, feedline.fractionDigits(currency)));
  }

  function fill() {
    $('q').value = state.q;
    $('sort').value = state.sort;
    $('min-price').value = toMajor(state.min_price);
    $('max-price').value = toMajor(state.max_price);
  }

  // Suggestions as you type, in the ARIA combobox pattern: the listbox
  // follows the text, the arrows move through it, Enter or a click
  // searches the one chosen, Escape closes it.
  const box = $('q');
  const listbox = $('suggestions');
  const kindNames = { brand: 'Brand', category: 'Category', term: 'Search' };
  let suggestions = [];
  let active = -1;
  let asked = 0; // answers to older questions are dropped
  let timer = 0;

  function closeSuggestions() {
    clearTimeout(timer);
    asked++;
    suggestions = [];
    active = -1;
    listbox.replaceChildren();
    listbox.hidden = true;
    box.setAttribute('aria-expanded', 'false');
    box.removeAttribute('aria-activedescendant');
    $('suggest-status').textContent = '';
  }

  async function askSuggestions() {
    const q = box.value.trim();
    if (!q) {
      closeSuggestions();
      return;
    }
    const n = ++asked;
    let res;
    try {
      res = await api('/v1/suggest?' + new URLSearchParams({ q, limit: '8' }));
    } catch (_) {
      return; // typing goes on without suggestions; a search reports its own errors
    }
    if (n !== asked || box.value.trim() !== q || document.activeElement !== box) return;
    showSuggestions(res.suggestions);
  }

  function showSuggestions(list) {
    // The option the arrows reached stays active if the new list has it.
    const was = suggestions[active];
    suggestions = list;
    active = was ? list.findIndex((sg) => sg.kind === was.kind && sg.text === was.text) : -1;
    listbox.replaceChildren(...list.map((sg, i) => el('li', {
      role: 'option', id: 'suggestion-' + i, 'aria-selected': 'false',
      onmousedown: (ev) => ev.preventDefault(), // the box keeps the focus
      onclick: () => choose(i),
    }, el('span', {}, sg.text), ' ', el('span', { class: 'kind' }, kindNames[sg.kind] + ' (' + sg.count + ')'))));
    const open = list.length > 0;
    listbox.hidden = !open;
    box.setAttribute('aria-expanded', String(open));
    if (active >= 0) {
      $('suggestion-' + active).setAttribute('aria-selected', 'true');
      box.setAttribute('aria-activedescendant', 'suggestion-' + active);
    } else {
      box.removeAttribute('aria-activedescendant');
    }
    $('suggest-status').textContent = open ? list.length + (list.length === 1 ? ' suggestion' : ' suggestions') : '';
  }

  function move(step) {
    const n = suggestions.length;
    if (!n) return;
    active = step > 0 ? (active + 1) % n : (active <= 0 ? n - 1 : active - 1);
    listbox.querySelectorAll('[role=option]').forEach((o, i) => o.setAttribute('aria-selected', String(i === active)));
    const option = $('suggestion-' + active);
    box.setAttribute('aria-activedescendant', option.id);
    option.scrollIntoView({ block: 'nearest' });
  }

  // A brand or a category narrows by its filter; a word is searched.
  function choose(i) {
    const sg = suggestions[i];
    closeSuggestions();
    if (sg.kind === 'term') {
      state.q = sg.text;
    } else {
      state.q = '';
      state[sg.kind] = [sg.text];
    }
    box.value = state.q;
    state.sort = $('sort').value;
    run(true);
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(askSuggestions, 120);
  }
  box.addEventListener('input', later);
  box.addEventListener('compositionend', later); // a Korean syllable is complete
  box.addEventListener('blur', closeSuggestions);
  box.addEventListener('keydown', (ev) => {
    if (ev.isComposing || ev.keyCode === 229) return; // the IME's keys, not ours
    const open = !listbox.hidden;
    switch (ev.key) {
      case 'ArrowDown':
        ev.preventDefault();
        if (open) move(1);
        else askSuggestions();
        break;
      case 'ArrowUp':
        if (open) {
          ev.preventDefault();
          move(-1);
        }
        break;
      case 'Enter':
        if (open && active >= 0) {
          ev.preventDefault();
          choose(active);
        }
        break;
      case 'Escape':
        if (open) {
          ev.preventDefault();
          closeSuggestions();
        }
        break;
      case 'Tab':
        closeSuggestions();
        break;
    }
  });

  $('search').addEventListener('submit', (ev) => {
    ev.preventDefault();
    closeSuggestions();
    state.q = $('q').value.trim();
    state.sort = $('sort').value;
    run(true);
  });
  $('sort').addEventListener('change', () => {
    state.sort = $('sort').value;
    if (comparesPrices(state)) state.currency = currency;
    run(true);
  });
  $('apply-price').addEventListener('click', () => {
    // The range is in the currency of the prices shown.
    state.min_price = toMinor($('min-price').value);
    state.max_price = toMinor($('max-price').value);
    state.currency = currency;
    run(true);
  });
  $('clear-filters').addEventListener('click', () => {
    for (const f of multi) state[f] = [];
    state.min_price = state.max_price = state.currency = '';
    fill();
    run(true);
  });
  $('next').addEventListener('click', () => { if (cursors[page + 1]) { page++; load(); window.scrollTo(0, 0); } });
  $('prev').addEventListener('click', () => { if (page > 0) { page--; load(); } });
  window.addEventListener('popstate', () => {
    state = fromURL();
    currency = state.currency || currency;
    fill();
    run(false);
  });

  // On a phone the filters start folded, so the results come first.
  if (window.matchMedia('(max-width: 48rem)').matches) document.querySelector('#facets details').open = false;

  fill();
  run(false);
})();
