// A product's page: its details, its price history and the shop's other products.
'use strict';

(() => {
  const { api, el, money, effectivePrice, availabilityNames, productURL, showError } = feedline;
  const $ = (id) => document.getElementById(id);
  const id = new URLSearchParams(location.search).get('id') || '';

  async function load() {
    if (!id) {
      showError($('error'), new Error('No product named: open a product from the search results.'));
      return;
    }
    let p;
    try {
      p = await api('/v1/products/' + encodeURIComponent(id));
    } catch (e) {
      showError($('error'), e);
      return;
    }
    document.title = p.title + ' · feedline';
    $('title').textContent = p.title;
    $('meta').replaceChildren(el('div', { class: 'meta' },
      p.brand ? el('span', {}, p.brand) : null,
      el('span', {}, 'Shop: ' + p.partner),
      el('span', { class: 'avail avail-' + p.availability }, availabilityNames[p.availability] || p.availability)));
    const price = effectivePrice(p);
    $('price').replaceChildren(el('span', {},
      price !== p.price ? el('s', { class: 'was' }, money(p.price, p.currency)) : null, ' ',
      el('strong', {}, money(price, p.currency))));
    $('description').textContent = p.description || '';
    $('description').hidden = !p.description;
    const facts = [];
    if (p.category && p.category.length) facts.push(['Category', p.category.join(' › ')]);
    if (p.sku) facts.push(['SKU', p.sku]);
    if (p.gtin) facts.push(['GTIN', p.gtin]);
    if (p.updated_at) facts.push(['Updated', feedline.when(p.updated_at)]);
    $('facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
    $('shop-name').textContent = p.partner;
    $('product').hidden = false;
    history(p);
    more(p);
  }

  // The price history: a chart once the price has changed, always a text
  // alternative, and why when it cannot be read.
  async function history(p) {
    const note = $('history-note');
    let h;
    try {
      h = await api('/v1/products/' + encodeURIComponent(p.id) + '/prices');
    } catch (e) {
      note.className = 'error';
      note.textContent = 'The price history cannot be read: ' + e.message;
      return;
    }
    // Only the current currency's points are comparable.
    const currency = h.points.length ? h.points[h.points.length - 1].currency : p.currency;
    const points = h.points.filter((pt) => pt.currency === currency);
    const since = new Date(h.since).toLocaleDateString();
    if (points.length < 2) {
      note.textContent = points.length
        ? 'The price has not changed since ' + new Date(points[0].at).toLocaleDateString() + '.'
        : 'No price change recorded since ' + since + '.';
      return;
    }
    const prices = points.map((pt) => pt.price);
    const min = Math.min(...prices), max = Math.max(...prices), now = prices[prices.length - 1];
    const summary = 'Price since ' + new Date(points[0].at).toLocaleDateString() + ': lowest ' + money(min, currency) +
      ', highest ' + money(max, currency) + ', now ' + money(now, currency) + ' (' + points.length + ' prices).';
    note.textContent = summary;
    $('history-chart').replaceChildren(chart(points, min, max, currency, summary));
    $('history-table').tBodies[0].replaceChildren(...points.map((pt) => el('tr', {},
      el('td', {}, feedline.when(pt.at)), el('td', {}, money(pt.price, currency)))));
    $('history-details').hidden = false;
  }

  const svgNS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(svgNS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    e.append(...children);
    return e;
  }

  // A step line: a price holds until the next change, the last until now.
  function chart(points, min, max, currency, summary) {
    const w = 320, h = 120, left = 4, right = 4, top = 18, bottom = 18;
    const t0 = Date.parse(points[0].at), t1 = Math.max(Date.now(), Date.parse(points[points.length - 1].at) + 1);
    const x = (t) => left + (t - t0) / (t1 - t0) * (w - left - right);
    const y = (v) => max === min ? h / 2 : top + (max - v) / (max - min) * (h - top - bottom);
    let d = '';
    points.forEach((pt, i) => {
      const px = x(Date.parse(pt.at)).toFixed(1), py = y(pt.price).toFixed(1);
      d += i === 0 ? `M${px} ${py}` : `H${px}V${py}`;
    });
    d += `H${x(t1).toFixed(1)}`;
    return svg('svg', { viewBox: `0 0 ${w} ${h}`, class: 'chart', role: 'img', 'aria-labelledby': 'history-chart-title' },
      svg('title', { id: 'history-chart-title' }, summary),
      svg('text', { x: left, y: 12, class: 'chart-label' }, money(max, currency)),
      svg('text', { x: left, y: h - 4, class: 'chart-label' }, money(min, currency)),
      svg('path', { d, class: 'chart-line' }),
      ...points.map((pt) => svg('circle', { cx: x(Date.parse(pt.at)).toFixed(1), cy: y(pt.price).toFixed(1), r: 3, class: 'chart-point' })));
  }

  async function more(p) {
    const list = $('more');
    try {
      const res = await api('/v1/search?' + new URLSearchParams({ partner: p.partner, sort: 'newest', limit: '9' }));
      const others = res.hits.filter((h) => h.id !== p.id).slice(0, 8);
      list.replaceChildren(...others.map((h) => el('li', { class: 'hit' },
        el('a', { href: productURL(h.id), class: 'title' }, h.title),
        el('div', { class: 'price' }, money(effectivePrice(h), h.currency)))));
      if (!others.length) list.append(el('li', { class: 'muted' }, 'This shop lists no other products.'));
    } catch (e) {
      list.replaceChildren(el('li', { class: 'error' }, e.message));
    }
  }

  load();
})();
