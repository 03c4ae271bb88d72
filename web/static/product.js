// A product's page: its details and the shop's other products.
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
    more(p);
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
