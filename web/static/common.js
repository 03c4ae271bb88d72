// Shared by every page: calling the API, showing its errors, the session.
'use strict';

const feedline = (() => {
  // A problem+json answer becomes an Error whose message is its detail.
  async function api(path, opts = {}) {
    const headers = Object.assign({ Accept: 'application/json' }, opts.headers || {});
    if (opts.token) headers.Authorization = 'Bearer ' + opts.token;
    let res;
    try {
      res = await fetch(path, { method: opts.method || 'GET', headers, body: opts.body });
    } catch (e) {
      throw new Error('The server could not be reached (' + e.message + '). Check your connection and try again.');
    }
    return answer(res);
  }

  async function answer(res) {
    const type = res.headers.get('Content-Type') || '';
    if (!res.ok) {
      let detail = res.status + ' ' + res.statusText;
      if (type.includes('json')) {
        try {
          const p = await res.json();
          detail = p.detail || p.title || detail;
          if (Array.isArray(p.errors) && p.errors.length) detail += ' ' + p.errors.join('; ');
        } catch (_) { /* keep the status line */ }
      }
      const err = new Error(detail);
      err.status = res.status;
      throw err;
    }
    if (res.status === 204) return null;
    return type.includes('json') ? res.json() : res.text();
  }

  function showError(el, err) {
    el.textContent = err ? (err.message || String(err)) : '';
    el.hidden = !err;
  }

  // Builds an element: el('a', {href: '/'}, 'text', child).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function fractionDigits(currency) {
    try {
      return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
    } catch (_) {
      return 0;
    }
  }

  // Prices are integer minor units of their currency.
  function money(minor, currency) {
    const cur = currency || 'KRW';
    const major = minor / Math.pow(10, fractionDigits(cur));
    try {
      return new Intl.NumberFormat(undefined, { style: 'currency', currency: cur }).format(major);
    } catch (_) {
      return major + ' ' + cur;
    }
  }

  function effectivePrice(p) {
    return p.sale_price !== undefined && p.sale_price !== null ? p.sale_price : p.price;
  }

  const availabilityNames = {
    in_stock: 'In stock', out_of_stock: 'Out of stock', preorder: 'Pre-order', backorder: 'Back-order',
  };

  // Keys and tokens live in this tab's session only: never in a URL,
  // never in localStorage or a cookie.
  const session = {
    get: (k) => sessionStorage.getItem('feedline.' + k) || '',
    set: (k, v) => sessionStorage.setItem('feedline.' + k, v),
    clear: (k) => sessionStorage.removeItem('feedline.' + k),
  };

  function productURL(id) {
    return '/product?id=' + encodeURIComponent(id);
  }

  function when(t) {
    const d = new Date(t);
    return isNaN(d) ? '' : d.toLocaleString();
  }

  return { api, answer, showError, el, money, fractionDigits, effectivePrice, availabilityNames, session, productURL, when };
})();
