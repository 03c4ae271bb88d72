// Browser scenarios of feedline's pages, against the feedline serve that
// web/browser_test.go starts and seeds. Each page gets a screenshot and an
// axe-core check (no serious or critical violations).
import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';
import { strict as assert } from 'node:assert';
import path from 'node:path';
import { readFile } from 'node:fs/promises';

const env = process.env;
const base = env.FEEDLINE_BASE;
const shots = env.FEEDLINE_SCREENSHOTS || 'screenshots';
const phone = { width: 390, height: 844 };
const desktop = { width: 1280, height: 900 };

const browser = await chromium.launch({
  executablePath: env.FEEDLINE_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  timeout: 60000,
});

let passed = 0, failed = 0, skipped = 0;

// scenario runs fn on a fresh page of a fresh context (its own
// sessionStorage), failing on any page error or refused resource (CSP).
async function scenario(name, fn, opts = {}) {
  if (opts.skip) {
    skipped++;
    console.log(`SKIP ${name}: ${opts.skip}`);
    return;
  }
  const context = await browser.newContext({ viewport: opts.viewport || desktop });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  const problems = [];
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push('console: ' + m.text());
  });
  const started = Date.now();
  try {
    await fn(page);
    assert.deepEqual(problems, [], 'the page reported errors');
    passed++;
    console.log(`PASS ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.stack || e}`);
    await page.screenshot({ path: path.join(shots, 'failed-' + name.replace(/\W+/g, '-') + '.png'), fullPage: true }).catch(() => {});
  } finally {
    await context.close();
  }
}

// check takes the page's screenshot and runs axe-core on it.
async function check(page, name) {
  const text = await page.locator('body').innerText();
  assert.doesNotMatch(text, /\b(null|undefined|NaN)\b|\[object /, `${name}: a value the page failed to render`);
  await page.screenshot({ path: path.join(shots, name + '.png'), fullPage: true });
  const res = await new AxeBuilder({ page }).analyze();
  const bad = res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), [],
    `${name}: accessibility violations`);
}

async function hitIds(page) {
  return page.locator('#hits li.hit').evaluateAll((els) => els.map((e) => e.dataset.id));
}

async function total(page) {
  return Number(await page.locator('#total').textContent());
}

await scenario('search with a typo finds the product', async (page) => {
  await page.goto(base + '/');
  await page.getByRole('combobox', { name: 'Search products' }).fill('kettel');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.waitForURL(/q=kettel/);
  await page.locator('#hits li.hit mark').first().waitFor();
  const titles = await page.locator('#hits li.hit .title').allTextContents();
  assert.ok(titles.length > 0 && titles.every((t) => /kettle/i.test(t)), `every hit is a kettle: ${titles}`);
  const marks = await page.locator('#hits li.hit mark').allTextContents();
  assert.ok(marks.length >= titles.length && marks.every((m) => m === 'Kettle'), `the word as spelt in the title is marked: ${marks}`);
  await check(page, 'storefront-typo');
});

await scenario('a facet narrows and the count matches', async (page) => {
  await page.goto(base + '/');
  await page.locator('#hits li.hit').first().waitFor();
  const all = await total(page);
  assert.ok(all > 12, `the seeded catalog has more than a page, got ${all}`);
  const option = page.locator('#facet-brand .option').filter({ hasText: 'Sonic' });
  const count = Number((await option.locator('.count').textContent()).replace(/\D/g, ''));
  assert.ok(count > 0 && count < all, `Sonic's count ${count} is part of ${all}`);
  await option.locator('input').check();
  await page.waitForFunction((n) => document.getElementById('total').textContent === String(n), count);
  const brands = await page.locator('#hits li.hit .brand-name').allTextContents();
  assert.ok(brands.length > 0 && brands.every((b) => b === 'Sonic'), `every hit is Sonic: ${brands}`);
  assert.match(page.url(), /brand=Sonic/);
  await check(page, 'storefront-filtered');
});

await scenario('the second page has no repeats', async (page) => {
  await page.goto(base + '/?sort=price_asc');
  await page.locator('#hits li.hit').first().waitFor();
  const first = await hitIds(page);
  assert.equal(first.length, 12);
  await page.getByRole('button', { name: 'Next page' }).click();
  await page.getByText('Page 2').waitFor();
  await page.waitForFunction((id) => document.querySelector('#hits li.hit')?.dataset.id !== id, first[0]);
  const second = await hitIds(page);
  assert.ok(second.length > 0, 'the second page has hits');
  const repeats = second.filter((id) => first.includes(id));
  assert.deepEqual(repeats, [], 'no product of page 1 is on page 2');
  await check(page, 'storefront-page-2');
});

await scenario('a price range is in the currency of the prices shown', async (page) => {
  await page.goto(base + '/');
  await page.locator('#hits li.hit').first().waitFor();
  const all = await total(page);
  await page.getByText('Price (KRW)').waitFor();
  await page.getByLabel('From').fill('20000');
  await page.getByLabel('to', { exact: true }).fill('30000');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/min_price=20000&max_price=30000&currency=KRW/);
  await page.waitForFunction((n) => Number(document.getElementById('total').textContent) < n, all);
  const prices = (await page.locator('#hits li.hit .price strong').allTextContents()).map((t) => Number(t.replace(/\D/g, '')));
  assert.ok(prices.length > 0 && prices.length === await total(page), `hits in range: ${prices}`);
  assert.ok(prices.every((p) => p >= 20000 && p <= 30000), `every price is from ₩20,000 to ₩30,000: ${prices}`);
  await check(page, 'storefront-price-range');
});

await scenario('a search marks the words it matched', async (page) => {
  await page.goto(base + '/');
  await page.getByRole('combobox', { name: 'Search products' }).fill('kettle');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.waitForURL(/q=kettle/);
  await page.locator('#hits li.hit mark').first().waitFor();
  const titles = await page.locator('#hits li.hit .title').allTextContents();
  assert.ok(titles.length > 0 && titles.every((t) => /kettle/i.test(t)), `every hit is a kettle: ${titles}`);
  const marks = await page.locator('#hits li.hit mark').allTextContents();
  assert.ok(marks.every((m) => m.toLowerCase() === 'kettle'), `only the word is marked: ${marks}`);
  await check(page, 'storefront-search');
});

await scenario('suggestions as you type', async (page) => {
  await page.goto(base + '/');
  await page.locator('#hits li.hit').first().waitFor();
  const box = page.getByRole('combobox', { name: 'Search products' });
  assert.equal(await box.getAttribute('aria-expanded'), 'false');

  // English: a brand, chosen with the keyboard, narrows by that brand.
  await box.pressSequentially('son', { delay: 60 });
  const listbox = page.getByRole('listbox', { name: 'Suggestions' });
  const sonic = listbox.getByRole('option', { name: /^Sonic Brand \(\d+\)$/ });
  await sonic.waitFor();
  // The list answers the whole prefix: of the seeded catalog, only Sonic
  // starts with "son" (its title word is named by the brand).
  const options = listbox.getByRole('option');
  await page.waitForFunction(() => document.querySelectorAll('#suggestions [role=option]').length === 1);
  assert.equal(await box.getAttribute('aria-expanded'), 'true');
  await check(page, 'storefront-suggestions');
  await box.press('ArrowDown');
  const first = await options.first().getAttribute('id');
  assert.equal(await box.getAttribute('aria-activedescendant'), first, 'the first suggestion is active');
  assert.equal(await sonic.getAttribute('aria-selected'), 'true', 'Sonic is the first suggestion');
  const count = Number((await sonic.textContent()).match(/\((\d+)\)/)[1]);
  await box.press('Enter');
  await page.waitForURL(/brand=Sonic/);
  await page.waitForFunction((n) => document.getElementById('total').textContent === String(n), count);
  const brands = await page.locator('#hits li.hit .brand-name').allTextContents();
  assert.ok(brands.length > 0 && brands.every((b) => b === 'Sonic'), `every hit is Sonic: ${brands}`);
  assert.ok(await listbox.isHidden(), 'the suggestions close once chosen');
  assert.equal(await box.getAttribute('aria-expanded'), 'false');

  // Korean: a syllable prefix completes the word, and a click searches it.
  await page.locator('#clear-filters').click();
  await box.fill('');
  await box.pressSequentially('헤드', { delay: 60 });
  const word = listbox.getByRole('option', { name: /^헤드폰 Search \(\d+\)$/ });
  await word.waitFor();
  await page.waitForFunction(() => document.querySelectorAll('#suggestions [role=option]').length === 1);
  // Escape closes the list and keeps the text; typing again opens it.
  await box.press('Escape');
  assert.ok(await listbox.isHidden(), 'Escape closes the suggestions');
  assert.equal(await box.inputValue(), '헤드');
  await box.press('ArrowDown');
  await word.waitFor();
  await word.click();
  await page.waitForURL(/q=%ED%97%A4%EB%93%9C%ED%8F%B0/);
  await page.locator('#hits li.hit').first().waitFor();
  const titles = await page.locator('#hits li.hit .title').allTextContents();
  assert.ok(titles.length > 0 && titles.every((t) => t.includes('헤드폰')), `every hit is a 헤드폰: ${titles}`);
  assert.equal(await box.inputValue(), '헤드폰');

  // The new facets: shops and availability with counts, and the price span.
  await page.goto(base + '/');
  await page.locator('#hits li.hit').first().waitFor();
  const all = await total(page);
  const shops = await page.locator('#facet-partner .option').allTextContents();
  const shopCounts = shops.map((t) => Number(t.match(/\((\d+)\)/)[1]));
  assert.ok(shops.length === 2 && shops.some((t) => /^nordic/.test(t)), `both shops listed with counts: ${shops}`);
  assert.equal(shopCounts.reduce((a, b) => a + b, 0), all, 'the shops\' counts add up to the total');
  assert.ok(/\(\d+\)/.test(await page.locator('#facet-availability .option').first().textContent()), 'availability has counts');
  assert.match(await page.locator('#price-span').textContent(), /Prices found: ₩[\d,]+ to ₩[\d,]+/);
  assert.ok(Number(await page.getByLabel('From').getAttribute('placeholder')) > 0, 'the lowest price is the From placeholder');
});

await scenario('the storefront and a product page on a phone', async (page) => {
  await page.goto(base + '/');
  await page.locator('#hits li.hit').first().waitFor();
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= phone.width, `no sideways scrolling on a phone (${width}px wide)`);
  assert.equal(await page.locator('#facets details').getAttribute('open'), null, 'the filters start folded on a phone');
  await check(page, 'storefront-phone');
  await page.locator('#hits li.hit a.title').first().click();
  await page.locator('#product:not([hidden])').waitFor();
  await page.locator('#more li').first().waitFor();
  assert.ok(await page.locator('#more li.hit').count() > 0, 'the shop\'s other products are listed');
  await page.locator('#history-note:not(:text("Loading"))').waitFor();
  assert.equal(await page.locator('#history-chart svg').count(), 0, 'no chart before the price changed');
  assert.match(await page.locator('#history-note').textContent(), /has not changed since|No price change recorded/);
  await check(page, 'product-phone');
}, { viewport: phone });

await scenario('a product that does not exist shows why', async (page) => {
  await page.goto(base + '/product?id=' + encodeURIComponent('acme:NO-SUCH'));
  const err = page.locator('#error');
  await err.waitFor();
  assert.match(await err.textContent(), /No product "acme:NO-SUCH"/);
  await check(page, 'product-missing');
});

// The API as the partner's own tools use it, for what the shopper's
// scenario needs to happen in the catalog meanwhile.
async function push(file, mode, partner = env.FEEDLINE_PARTNER, key = env.FEEDLINE_PARTNER_KEY) {
  const body = await readFile(path.join(env.FEEDLINE_FIXTURES, file));
  const res = await fetch(`${base}/v1/partners/${partner}/uploads?mode=${mode}&filename=${file}`,
    { method: 'POST', headers: { Authorization: 'Bearer ' + key }, body });
  const answer = await res.text();
  assert.equal(res.status, 202, answer);
  return JSON.parse(answer).upload_id;
}

// until retries check, running between each try, until it passes.
async function until(what, check, between, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`${what}: ${e.message}`);
    }
    if (between) await between();
    await new Promise((r) => setTimeout(r, 400));
  }
}

await scenario('a shopper follows a shop, posts, and sees the post and a price drop in the feed', async (page) => {
  await page.goto(base + '/feed');
  await page.getByLabel('Shopper token').fill('not-a-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#error:not([hidden])').waitFor();
  await page.getByLabel('Shopper token').fill(env.FEEDLINE_SHOPPER_TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#me').getByText('bob').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('feedline.shopper')), env.FEEDLINE_SHOPPER_TOKEN);
  assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');
  assert.ok(!page.url().includes(env.FEEDLINE_SHOPPER_TOKEN), 'the token is not in the address');

  await page.getByLabel('Kind').selectOption('shop');
  await page.getByLabel('Id', { exact: true }).fill(env.FEEDLINE_PARTNER);
  await page.getByRole('button', { name: 'Follow', exact: true }).click();
  await page.getByRole('status').getByText('Following Shop ' + env.FEEDLINE_PARTNER).waitFor();
  await until('the following list names the shop',
    async () => assert.ok(await page.locator('#following').getByText('Shop ' + env.FEEDLINE_PARTNER).count() > 0),
    () => page.reload().then(() => page.locator('#me').waitFor()));

  const text = 'Hello from the browser ' + Date.now();
  await page.getByLabel('What do you want to share?').fill(text);
  await page.getByRole('button', { name: 'Post', exact: true }).click();
  await until('the post is in the feed',
    async () => assert.ok(await page.locator('#feed li.post').getByText(text).count() > 0),
    () => page.getByRole('button', { name: 'Refresh' }).click());

  // The shop cuts every price by a fifth: a price drop becomes news.
  await push(env.FEEDLINE_PARTNER + '-cheaper.csv', 'full');
  await until('a price drop is in the feed',
    async () => assert.ok(await page.locator('#feed li.drop').count() > 0),
    () => page.getByRole('button', { name: 'Refresh' }).click(), 40000);
  // Each drop shows its old and new price: the file cut every price by a fifth.
  for (const drop of await page.locator('#feed li.drop').allTextContents()) {
    const m = drop.match(/Price drop: .*?₩([\d,]+)\s*→\s*₩([\d,]+)/);
    assert.ok(m, `a drop shows old → new: ${drop}`);
    const [was, now] = [Number(m[1].replace(/,/g, '')), Number(m[2].replace(/,/g, ''))];
    assert.equal(now, Math.trunc(was * 0.8), `the drop is the fifth cut: ${drop}`);
  }
  await check(page, 'feed');

  // Thirty drops are newer than the post: it is further down, and older
  // items load as one scrolls to the end.
  const before = await page.locator('#feed li.item').count();
  assert.ok(await page.locator('#older').isVisible(), 'there are older items');
  await until('scrolling to the end loads the post again', async () => {
    await page.locator('#older').scrollIntoViewIfNeeded().catch(() => {});
    assert.ok(await page.locator('#feed li.post').getByText(text).count() > 0);
  });
  assert.ok(await page.locator('#feed li.item').count() > before, 'older items were added');
  const ids = await page.locator('#feed li.item').evaluateAll((els) => els.map((e) => e.dataset.id));
  assert.equal(new Set(ids).size, ids.length, 'no item is shown twice');

  // Another shopper follows bob: he sees her among his followers.
  const res = await fetch(base + '/v1/follows/user/bob', { method: 'PUT', headers: { Authorization: 'Bearer ' + env.FEEDLINE_OTHER_SHOPPER_TOKEN } });
  assert.equal(res.status / 100 | 0, 2, await res.text());
  await until('carol is among the followers', async () => assert.ok(await page.locator('#followers').getByText('carol').count() > 0),
    () => page.reload().then(() => page.locator('#me').waitFor()));

  // Following a shopper, then unfollowing.
  await page.getByLabel('Kind').selectOption('user');
  await page.getByLabel('Id', { exact: true }).fill('alice');
  await page.getByRole('button', { name: 'Follow', exact: true }).click();
  await until('the following list names alice', async () => assert.ok(await page.locator('#following').getByText('alice').count() > 0),
    () => page.reload().then(() => page.locator('#me').waitFor()));
  await page.getByRole('button', { name: 'Unfollow alice' }).click();
  await until('alice leaves the following list', async () => assert.equal(await page.locator('#following').getByText('alice').count(), 0),
    () => page.reload().then(() => page.locator('#me').waitFor()));
}, { viewport: phone });

// Runs after the price drop: the shop's products have an old and a new price.
await scenario('a product page charts its price history after a price change', async (page) => {
  const res = await fetch(base + '/v1/search?' + new URLSearchParams({ partner: env.FEEDLINE_PARTNER, limit: '1' }));
  const [hit] = (await res.json()).hits;
  assert.ok(hit, 'the shop has a product');
  await until('the product page shows a price chart', async () => {
    await page.goto(base + '/product?id=' + encodeURIComponent(hit.id));
    await page.locator('#history-note:not(:text("Loading"))').waitFor();
    assert.equal(await page.locator('#history-chart svg').count(), 1);
  }, null, 30000);
  const chart = page.getByRole('img', { name: /lowest .* highest .* now/ });
  assert.equal(await chart.count(), 1, 'the chart is named by its summary');
  assert.equal(await page.locator('#history-chart circle').count(), 2, 'one point per price');
  const m = (await page.locator('#history-note').textContent()).match(/lowest ₩([\d,]+), highest ₩([\d,]+), now ₩([\d,]+) \(2 prices\)/);
  assert.ok(m, 'the summary names lowest, highest and current price');
  const [low, high, now] = m.slice(1).map((v) => Number(v.replace(/,/g, '')));
  assert.equal(now, low, 'the price now is the cut, the lowest');
  assert.equal(now, Math.trunc(high * 0.8), 'the cut is a fifth');
  assert.equal(now, hit.sale_price ?? hit.price, 'the current price is the product\'s');
  assert.equal(await page.locator('#history-table tbody tr').count(), 2, 'the table lists both prices');
  await check(page, 'product-history');
});

await scenario('a partner uploads a file with bad rows and sees the issue summary', async (page) => {
  await page.goto(base + '/partner');
  await page.getByLabel('Partner id').fill(env.FEEDLINE_PARTNER);
  await page.getByLabel('API key').fill('wrong-key');
  await page.getByRole('button', { name: 'Sign in' }).click();
  const err = page.locator('#error:not([hidden])');
  await err.waitFor();
  assert.ok((await err.textContent()).length > 10, 'the refusal says why');
  await page.getByLabel('API key').fill(env.FEEDLINE_PARTNER_KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#me').getByText(env.FEEDLINE_PARTNER).waitFor();
  assert.ok(!page.url().includes(env.FEEDLINE_PARTNER_KEY), 'the key is not in the address');
  await page.locator('#uploads tbody tr[data-id]').first().waitFor();
  await page.locator('#mapping-version').getByText('Version').waitFor();
  await page.locator('#source').getByText('No scheduled source').waitFor();

  await page.getByLabel(/^File/).setInputFiles(path.join(env.FEEDLINE_FIXTURES, 'bad-rows.csv'));
  await page.getByLabel('Mode').selectOption('delta');
  await page.getByRole('button', { name: 'Upload', exact: true }).click();
  await page.locator('#status:not([hidden])').waitFor();
  assert.equal(await page.locator('#progress').getAttribute('value'), '100');
  await page.locator('#stages li.done').getByText('Indexed').waitFor({ timeout: 30000 });
  const summary = await page.locator('#issue-summary tbody').textContent();
  assert.match(summary, /missing_title/);
  assert.match(summary, /price_unparseable/);
  assert.match(await page.locator('#rejections tbody').textContent(), /AC-1005/);
  const counts = await page.locator('#counts').textContent();
  assert.match(counts, /accepted6/);
  assert.match(counts, /rejected2/);
  await check(page, 'partner-upload');

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: /Download every issue/ }).click()]);
  const list = await readFile(await download.path(), 'utf8');
  assert.match(list, /missing_title/);
  assert.match(list, /price_unparseable/);

  // The mapping tried on the same sample shows what it would make.
  await page.getByLabel('Sample file').setInputFiles(path.join(env.FEEDLINE_FIXTURES, 'bad-rows.csv'));
  await page.getByRole('button', { name: 'Preview' }).click();
  await page.locator('#preview:not([hidden])').waitFor();
  assert.match(await page.locator('#preview-counts').textContent(), /8 rows read: 6 valid, 2 rejected/);
  assert.equal(await page.locator('#preview-products tbody tr').count(), 6);
  await page.locator('#uploads tbody tr[data-id]').nth(1).waitFor();
  await check(page, 'partner-console');

  // A scheduled source, set with the partner's tools, and fetched now from the console.
  const res = await fetch(`${base}/v1/partners/${env.FEEDLINE_PARTNER}/source`, {
    method: 'PUT', headers: { Authorization: 'Bearer ' + env.FEEDLINE_PARTNER_KEY, 'Content-Type': 'application/json' },
    body: JSON.stringify({ url: env.FEEDLINE_SOURCE_URL, every: '6h', mode: 'delta' }),
  });
  assert.equal(res.status / 100 | 0, 2, await res.text());
  await page.reload();
  await page.locator('#source').getByText(env.FEEDLINE_SOURCE_URL).waitFor();
  await page.getByRole('button', { name: 'Fetch now' }).click();
  // Setting the source fetches at once; the second fetch finds the file unchanged.
  await until('the source was fetched into an upload and fetched again', async () => {
    const text = await page.locator('#source').textContent();
    assert.match(text, /Last fetch.*(fetched, a new upload|not modified since the last fetch)/);
    assert.match(text, /Last upload[0-9a-z]{26}/);
  }, () => page.reload().then(() => page.locator('#source dl').waitFor()), 30000);
  await page.locator('#source').getByRole('button', { name: /^[0-9a-z]{26}$/ }).click();
  await page.locator('#status-line').getByText('State: done').waitFor();
  await check(page, 'partner-source');
});

// The shop's products the storefront's search finds.
async function shopTotal(partner) {
  const res = await fetch(base + '/v1/search?' + new URLSearchParams({ partner, limit: '1' }));
  const answer = await res.text();
  assert.equal(res.status, 200, answer);
  return JSON.parse(answer).total;
}

// Last: the shop's catalog joins the storefront's only now.
await scenario('a partner confirms a held upload', async (page) => {
  const partner = env.FEEDLINE_HOLD_PARTNER;
  await push(partner + '.csv', 'full', partner, env.FEEDLINE_HOLD_PARTNER_KEY);
  await until('the shop\'s ten products are searchable', async () => assert.equal(await shopTotal(partner), 10), null, 30000);

  await page.goto(base + '/partner');
  await page.getByLabel('Partner id').fill(partner);
  await page.getByLabel('API key').fill(env.FEEDLINE_HOLD_PARTNER_KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#me').getByText(partner).waitFor();
  await page.locator('#uploads tbody tr[data-id]').first().waitFor();

  // A full file of three of the ten products would delete 70%, over the shop's 20%.
  const status = page.locator('#status-line');
  const actions = page.locator('#status-actions');
  async function uploadHeld(before) {
    await page.getByLabel(/^File/).setInputFiles(path.join(env.FEEDLINE_FIXTURES, partner + '-shrunk.csv'));
    await page.getByLabel('Mode').selectOption('full');
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await page.waitForFunction((id) => { const s = document.getElementById('status-id').textContent; return s && s !== id; }, before);
    await status.getByText('State: held, waiting for your decision').waitFor({ timeout: 30000 });
    const id = await page.locator('#status-id').textContent();
    assert.match(await actions.locator('.warning').textContent(),
      /held\. It would delete 7 of your 10 live products \(70%\), more than the 20% your settings allow\. Nothing of it is applied until you decide/);
    const row = page.locator(`#uploads tbody tr[data-id="${id}"]`);
    await row.waitFor();
    assert.match(await row.textContent(), /held\s*Would delete 7 of 10 \(70%\); your limit is 20%\./);
    return { id, row };
  }

  // The first one is cancelled from the upload list: the catalog stays whole.
  const first = await uploadHeld('');
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  const wide = await page.evaluate((w) => [...document.querySelectorAll('main *')]
    .filter((e) => e.getBoundingClientRect().right > w).map((e) => e.tagName + (e.id ? '#' + e.id : '')).slice(0, 8), phone.width);
  assert.ok(width <= phone.width, `no sideways scrolling on a phone (${width}px wide: ${wide})`);
  await check(page, 'partner-held');
  await first.row.getByRole('button', { name: 'Cancel this upload, upload ' + first.id }).click();
  await status.getByText('State: cancelled').waitFor();
  assert.match(await actions.textContent(), /Held for deleting 7 of 10 products, then cancelled.*: nothing of it was applied/);
  await page.locator(`#uploads tbody tr[data-id="${first.id}"]`).getByText('cancelled').waitFor();
  assert.equal(await shopTotal(partner), 10, 'the cancelled upload deleted nothing');
  await page.getByRole('button', { name: 'Cancel this upload', exact: true }).waitFor({ state: 'detached' });

  // The second one is applied from the upload view, with the keyboard,
  // past a question that says what it deletes.
  const second = await uploadHeld(first.id);
  const focused = () => page.evaluate(() => document.activeElement.textContent);
  await actions.getByRole('button', { name: 'Apply the deletions', exact: true }).focus();
  await page.keyboard.press('Enter');
  const ask = actions.getByRole('group', { name: /Apply upload \w+ and delete 7 of your 10 products from the catalog\?/ });
  await ask.waitFor();
  assert.equal(await focused(), 'Yes, delete 7 products', 'the question takes the focus');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  await ask.waitFor({ state: 'hidden' });
  assert.equal(await focused(), 'Apply the deletions', 'going back returns the focus');
  assert.match(await status.textContent(), /held/, 'going back decides nothing');
  await page.keyboard.press('Enter');
  await ask.waitFor();
  await check(page, 'partner-held-confirm');
  await page.keyboard.press('Enter');
  await status.getByText('State: done').waitFor({ timeout: 30000 });
  await page.locator('#stages li.done').getByText('Indexed').waitFor();
  assert.match(await page.locator('#counts').textContent(), /deleted7/);
  assert.match(await actions.textContent(), /Held for deleting 7 of 10 products, then applied/);
  await page.locator(`#uploads tbody tr[data-id="${second.id}"]`).getByText('done').waitFor();
  await until('the deletions reach the storefront', async () => assert.equal(await shopTotal(partner), 3), null, 30000);
  await check(page, 'partner-held-applied');
}, { viewport: phone });

await browser.close();
console.log(`browser scenarios: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed ? 1 : 0);
