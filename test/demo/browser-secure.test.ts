/**
 * Goal: `npm start -- --secure` works in a real browser over https. The
 * secure demo (demo/supervisor/secure.ts: TLS on every link, client
 * certificates between processes, peer mTLS, store auth with a user per
 * process) runs as real processes; headless Chromium trusts only the
 * generated dev CA and its server certificate, pinned by their SPKI hashes
 * (--ignore-certificate-errors-spki-list, no blanket ignoring of
 * certificate errors), loads the page over https, and a transfer from the
 * form commits and moves both balances. A plain-http request to the app and
 * a client without a certificate to a coordinator are refused.
 *
 * Needs Debian's chromium and openssl: skipped with a message when chromium
 * is missing, unless CI=true. Ports 30700-30733.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DemoSupervisor, secureUsersOf } from '../../demo/supervisor/supervisor.js';
import { demoLayout } from '../../demo/supervisor/layout.js';
import { prepareSecure, spkiHashes, type SecureSetup } from '../../demo/supervisor/secure.js';
import { isAlive } from './support.js';

const CHROMIUM = '/usr/bin/chromium';
const BASE_PORT = 30700;
const haveChromium = existsSync(CHROMIUM);
const inCi = process.env['CI'] === 'true' || process.env['CI'] === '1';
if (!haveChromium && !inCi) console.warn(`SKIPPED the secure demo browser test: ${CHROMIUM} is missing (apt-get install chromium). With CI=true this is a failure instead.`);

/** A GET over https trusting `ca`, showing no client certificate: resolves with the status, or the error's code. */
function getWithoutCert(url: string, ca: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(url, { ca, timeout: 5_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

describe.skipIf(!haveChromium && !inCi)('the secure demo page in headless Chromium, over https', () => {
  const dir = mkdtempSync(join(tmpdir(), 'demo-browser-secure-'));
  let sup: DemoSupervisor;
  let secure: SecureSetup;
  let browser: Browser | undefined;
  let page: Page;

  const num = async (sel: string): Promise<number> => Number(((await page.textContent(sel)) ?? '').replace(/,/g, ''));
  const balanceCell = (bank: string, account: string): string => `[data-account="${bank}:${account}"] .balance`;

  beforeAll(async () => {
    if (!haveChromium) throw new Error(`CI=true and ${CHROMIUM} is missing: CI must install chromium`);
    DemoSupervisor.prepareDataDir(dir, { fresh: true });
    secure = await prepareSecure(join(dir, 'secure'), secureUsersOf(demoLayout(BASE_PORT)));
    sup = new DemoSupervisor({ dataDir: dir, basePort: BASE_PORT, secure });
    await sup.start();
    const pins = spkiHashes([secure.certs.caFile, secure.certs.serverCertFile]).join(',');
    const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--ignore-certificate-errors-spki-list=${pins}`];
    browser = await chromium.launch({ executablePath: CHROMIUM, args, headless: true });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    const pids = sup === undefined ? [] : sup.list().flatMap((p) => (p.pid === null ? [] : [p.pid]));
    await sup?.stopAll();
    expect(pids.filter(isAlive)).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('serves the page over https with the dev certificate, and a transfer from the form commits', async () => {
    expect(sup.appUrl).toBe(`https://127.0.0.1:${BASE_PORT}`);
    const res = await page.goto(sup.appUrl);
    expect(res?.status()).toBe(200);
    await page.waitForSelector('#conn.live', { timeout: 30_000 });
    await page.waitForSelector(balanceCell('bank-b', 'bob'), { timeout: 30_000 });
    await page.waitForSelector('#store tr.leader', { timeout: 30_000 });
    expect(await page.locator('#processes tbody tr').count()).toBe(9);
    await page.selectOption('#from-bank', 'bank-a');
    await page.selectOption('#from-account', 'alice');
    await page.selectOption('#to-bank', 'bank-b');
    await page.selectOption('#to-account', 'bob');
    await page.fill('#amount', '10');
    await page.click('#transfer-btn');
    await page.waitForSelector('#transfer-result[data-outcome="committed"]', { timeout: 30_000 });
    await expect.poll(() => num(balanceCell('bank-a', 'alice')), { timeout: 15_000 }).toBe(990);
    await expect.poll(() => num(balanceCell('bank-b', 'bob')), { timeout: 15_000 }).toBe(1_010);
  }, 120_000);

  it('refuses a caller without a certificate on the coordinators and banks, and reaches them with one', async () => {
    const ca = secure.clientTls.ca as string;
    const c1 = sup.coordinatorUrls[0] as string;
    const refused = await getWithoutCert(`${c1}/healthz`, ca);
    expect(refused).not.toBe(200); // the handshake ends without a client certificate
    expect((await sup.getJson(`${c1}/healthz`, 5_000)).status).toBe(200);
    // The store: a certificate alone is not enough with auth on.
    expect((await sup.getJson(`${sup.storeEndpoints[0] as string}/v1/kv?prefix=tx/`, 5_000)).status).toBe(401);
  }, 60_000);
});
