// Chromium through puppeteer-core for the browser tests, with every request to a host
// other than the page's refused and recorded (the pages must work air-gapped).
import puppeteer from 'puppeteer-core';

/// `{ browser, page, offsite }` for a page of `url`'s origin; close `browser` after.
export async function guardedPage(chromium, url) {
  const origin = new URL(url).origin;
  const offsite = [];
  const browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
  const page = await browser.newPage();
  await page.setRequestInterception(true);
  page.on('request', (request) => {
    const target = request.url();
    if (target.startsWith(origin) || target.startsWith('data:')) {
      request.continue();
    } else {
      offsite.push(target);
      request.abort();
    }
  });
  return { browser, page, offsite };
}

export const print = (value) => process.stdout.write(JSON.stringify(value) + '\n');
