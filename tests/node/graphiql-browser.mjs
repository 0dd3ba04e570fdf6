// Opens the gateway's GraphiQL page in Chromium (puppeteer-core) with every request to
// another host refused, runs a query through the page's editor, and prints one JSON line:
// { ok, response, offsite, explorer } (offsite: the refused URLs; explorer: whether
// the explorer plugin's button is there). The plan (argv[2]) is
// { url, query, headers: { name: value }, chromium }.
import { guardedPage, print } from './browser.mjs';

const plan = JSON.parse(process.argv[2]);
let browser;
let offsite = [];
try {
  let page;
  ({ browser, page, offsite } = await guardedPage(plan.chromium, plan.url));
  await page.goto(plan.url, { waitUntil: 'networkidle0', timeout: 20000 });
  await page.waitForSelector('.graphiql-query-editor .CodeMirror', { timeout: 20000 });
  await page.evaluate((query) => {
    document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(query);
  }, plan.query);
  if (plan.headers) {
    // The headers tab of the editor tools, as a user would fill it in.
    const tabs = await page.$$('.graphiql-editor-tools button');
    for (const tab of tabs) {
      if ((await tab.evaluate((b) => b.textContent.trim())) === 'Headers') {
        await tab.click();
      }
    }
    await page.waitForSelector('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror');
    await page.evaluate((headers) => {
      document
        .querySelector('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror')
        .CodeMirror.setValue(JSON.stringify(headers));
    }, plan.headers);
  }
  await page.click('.graphiql-execute-button');
  await page.waitForFunction(
    () => {
      const out = document.querySelector('.graphiql-response .CodeMirror');
      return out && out.CodeMirror.getValue().trim().startsWith('{');
    },
    { timeout: 20000 },
  );
  const response = await page.evaluate(
    () => document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue(),
  );
  const explorer = await page.$('[aria-label="Show GraphiQL Explorer"]');
  print({ ok: true, response: JSON.parse(response), offsite, explorer: explorer !== null });
} catch (error) {
  print({ ok: false, error: String(error), offsite });
} finally {
  await browser?.close();
}
