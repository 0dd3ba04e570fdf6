// Opens a BFF's REST endpoints page (/bff/NAME/docs) in Chromium (puppeteer-core) with
// every request to another host refused, types the API key, loads the endpoints, fills
// in one endpoint's parameters and calls it, and prints one JSON line:
// { ok, endpoints, status, body, offsite } (endpoints: the operation ids listed;
// status, body: what the page shows for the call). The plan (argv[2]) is
// { url, apiKey, operation, parameters: { name: value }, chromium }.
import { guardedPage, print } from './browser.mjs';

const plan = JSON.parse(process.argv[2]);
let browser;
let offsite = [];
try {
  let page;
  ({ browser, page, offsite } = await guardedPage(plan.chromium, plan.url));
  await page.goto(plan.url, { waitUntil: 'networkidle0', timeout: 20000 });
  await page.type('#api-key', plan.apiKey);
  await page.click('#load');
  const form = `form[data-operation="${plan.operation}"]`;
  await page.waitForSelector(form, { timeout: 20000 });
  const endpoints = await page.$$eval('form[data-operation]', (forms) =>
    forms.map((f) => f.dataset.operation),
  );
  for (const [name, value] of Object.entries(plan.parameters || {})) {
    await page.type(`${form} input[name="${name}"]`, String(value));
  }
  await page.click(`${form} button[type="submit"]`);
  await page.waitForFunction(
    (selector) => document.querySelector(selector + ' pre.body').textContent.length > 0,
    { timeout: 20000 },
    form,
  );
  const status = await page.$eval(`${form} .status`, (s) => s.textContent);
  const body = await page.$eval(`${form} pre.body`, (b) => b.textContent);
  print({ ok: true, endpoints, status, body: JSON.parse(body), offsite });
} catch (error) {
  print({ ok: false, error: String(error), offsite });
} finally {
  await browser?.close();
}
