// A real headless Chromium (Debian's `chromium` package, /usr/bin/chromium;
// .ci/run installs it) driven by playwright-core, which downloads no browser.
// One browser per test file; a fresh profile per launch; one context per person.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve(import.meta.dirname, '../../test-artifacts');

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * A context that records what a page asked for beyond `origin` (nothing may
 * leave the gateway: no CDN, no fonts) and every console error (a CSP
 * violation shows up there).
 */
export async function openContext(browser: Browser, origin: string): Promise<{ context: BrowserContext; page: Page; external: string[]; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const external: string[] = [];
  const errors: string[] = [];
  context.on('request', (req) => {
    if (!req.url().startsWith(origin)) external.push(req.url());
  });
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(msg.text());
  });
  page.on('pageerror', (err) => errors.push(String(err)));
  return { context, page, external, errors };
}

/** Saves a full-page screenshot under test-artifacts/<folder>/<name>.png (gitignored). */
export async function screenshot(page: Page, folder: string, name: string): Promise<void> {
  const dir = path.join(ARTIFACTS, folder);
  await mkdir(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}
