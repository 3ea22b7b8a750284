// web_e2e.mjs: the browser half of tests/integration/web_e2e.py. Drives
// Debian's headless Chromium with playwright-core through the web UI as a
// person would: wrong token, login, dashboard, image import with progress,
// create VM (with a validation error shown next to its field), start,
// serial console (boot line, a typed command and its output), graphical
// console (canvas drawn), graphs with data points, stop, the console of a
// stopped VM, delete, a VM deleted elsewhere, a narrow window, a viewer
// token (no actions offered) and an operator token revoked while logged in. Prints `STEP ...`, `SCREENSHOT path` and `CHECK-FAIL
// ...` lines; exits 0 when every check passed.
//
// env: VESSEL_URL, VESSEL_TOKEN, VESSEL_IMPORT (image file under the allowed
// dir), VESSEL_WEB_NODE_MODULES (web/node_modules), VESSEL_SHOTS (folder),
// CHROMIUM (default /usr/bin/chromium)
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(path.join(process.env.VESSEL_WEB_NODE_MODULES, 'x.js'));
const { chromium } = require('playwright-core');

const URL_ = process.env.VESSEL_URL;
const TOKEN = process.env.VESSEL_TOKEN;
const SHOTS = process.env.VESSEL_SHOTS;
const VM = 'e2e-1';
let failures = 0;
const t0 = Date.now();

function step(s) { console.log(`STEP [${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}`); }
function check(cond, what) {
  if (!cond) { failures++; console.log(`CHECK-FAIL ${what}`); }
  return cond;
}
async function shot(page, name) {
  const p = path.join(SHOTS, name);
  await page.screenshot({ path: p });
  console.log(`SCREENSHOT ${p}`);
}
async function apiFetch(page, method, p, body) {
  return page.evaluate(async ([m, u, b, t]) => {
    const r = await fetch(`/api/v1/${u}`, { method: m, headers: { Authorization: `Bearer ${t}`, 'Content-Type': 'application/json' }, body: b ? JSON.stringify(b) : undefined });
    return { status: r.status, body: await r.text() };
  }, [method, p, body, TOKEN]);
}
async function vmState(page, name) {
  const r = await apiFetch(page, 'GET', `vms/${name}`);
  return r.status === 200 ? JSON.parse(r.body).vm.state : `http-${r.status}`;
}
async function waitState(page, name, want, timeoutMs) {
  const end = Date.now() + timeoutMs;
  let s;
  while (Date.now() < end) {
    s = await vmState(page, name);
    if (s === want) return true;
    await page.waitForTimeout(300);
  }
  check(false, `VM ${name} did not reach ${want} within ${timeoutMs / 1000}s (last ${s})`);
  return false;
}
async function termText(page) {
  return page.evaluate(() => document.querySelector('#terminal .xterm-rows')?.innerText || '');
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await ctx.newPage();
const consoleErrors = [];
page.on('pageerror', (e) => { consoleErrors.push(`pageerror: ${e.message}`); console.log(`PAGE-ERROR ${e.message}`); });
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.setDefaultTimeout(30000);

try {
  step('wrong token at login');
  await page.goto(URL_);
  await page.fill('#token', 'not-the-token');
  await page.click('#login-form button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#login-msg').textContent.length > 0);
  check((await page.textContent('#login-msg')).includes('not accepted'), 'a wrong token shows "not accepted" on the login page');
  check(await page.isVisible('#login'), 'the login page stays after a wrong token');

  step('log in');
  await page.fill('#token', TOKEN);
  await page.keyboard.press('Enter');
  await page.waitForSelector('[data-test=accel]');
  const accel = await page.textContent('[data-test=accel]');
  check(/KVM|TCG/.test(accel), `dashboard shows the acceleration: ${accel}`);
  if (accel.includes('TCG')) check(await page.isVisible('.warning'), 'the TCG warning is shown');
  await page.waitForFunction(() => document.querySelectorAll('meter').length >= 3);
  await page.waitForTimeout(2500); // a second host sample for the CPU meter
  await shot(page, 'dashboard.png');

  step('import the test image through the dialog');
  await page.click('a[data-nav=images]');
  await page.click('text=Import image');
  await page.fill('#i-name', 'e2e-img');
  await page.fill('#i-path', '/nonexistent/disk.qcow2');
  await page.click('#import-submit');
  await page.waitForFunction(() => [...document.querySelectorAll('#import-form .field-error, #import-form .form-error')].some((e) => e.textContent));
  check((await page.textContent('#i-path-err')).length > 10, 'a bad import path is explained next to the path field');
  await page.fill('#i-path', process.env.VESSEL_IMPORT);
  await page.click('#import-submit');
  await page.waitForFunction(() => /Imported|failed/.test(document.querySelector('#import-progress-label').textContent + document.querySelector('#import-error').textContent), null, { timeout: 120000 });
  check((await page.textContent('#import-progress-label')).includes('Imported'), 'the import finishes with "Imported"');
  check(await page.evaluate(() => document.querySelector('#import-progress').value) === 100, 'the progress bar ends at 100');
  await page.click('#import-cancel');
  await page.waitForSelector('td:text("e2e-img")');

  step('create a VM through the dialog (a bad value first)');
  await page.click('a[data-nav=vms]');
  await page.click('#create-vm');
  await page.fill('#c-name', VM);
  await page.selectOption('#c-image', 'e2e-img');
  await page.fill('#c-vcpus', '999');
  await page.fill('#c-memory', '256');
  await page.click('#create-submit');
  await page.waitForFunction(() => document.querySelector('#c-vcpus-err').textContent.length > 0);
  const vErr = await page.textContent('#c-vcpus-err');
  check(vErr.includes('vcpus'), `the API's validation message is shown next to vCPUs: ${vErr}`);
  check(await page.getAttribute('#c-vcpus', 'aria-invalid') === 'true', 'the vCPUs field is marked invalid');
  check((await apiFetch(page, 'GET', `vms/${VM}`)).status === 404, 'a refused create leaves no VM');
  await shot(page, 'create-error.png');
  await page.fill('#c-vcpus', '1');
  await page.click('#create-submit');
  await page.waitForSelector(`tr[data-vm="${VM}"]`);

  step('start it from the list');
  await page.click(`tr[data-vm="${VM}"] button[data-action=start]`);
  await waitState(page, VM, 'running', 60000);
  await page.waitForSelector(`tr[data-vm="${VM}"] .state-running`);
  await page.waitForFunction((vm) => /\d+s|\d+m/.test(document.querySelector(`tr[data-vm="${vm}"] td:nth-child(5)`)?.textContent || ''), VM, { timeout: 15000 });
  check(true, 'the list shows an uptime');
  await shot(page, 'vm-list.png');

  step('serial console: boot line, then a command');
  await page.goto(`${URL_}#/vms/${VM}/console`);
  await page.waitForSelector('#terminal .xterm-rows');
  await page.waitForFunction(() => /VESSEL-DISK-BOOT-OK/.test(document.querySelector('#terminal .xterm-rows')?.innerText || ''), null, { timeout: 180000 });
  check(true, 'boot line seen');
  await page.click('#terminal');
  let typed = false;
  for (let i = 0; i < 6 && !typed; i++) {
    await page.keyboard.type('echo web-$((6*7))\n');
    try {
      await page.waitForFunction(() => /web-42/.test(document.querySelector('#terminal .xterm-rows')?.innerText || ''), null, { timeout: 8000 });
      typed = true;
    } catch (e) { /* the shell was not ready: type again */ }
  }
  check(typed, 'the command typed in the page ran in the guest (web-42 seen)');
  await shot(page, 'serial-console.png');

  step('graphical console: the canvas is drawn');
  await page.click('.tabs a:text("Graphical console")');
  await page.waitForSelector('#vnc canvas', { timeout: 30000 });
  await page.waitForFunction(() => document.querySelector('#vnc-status')?.dataset.state === 'connected', null, { timeout: 30000 });
  let drawn = 0;
  for (let i = 0; i < 40 && drawn < 50; i++) {
    drawn = await page.evaluate(() => {
      const c = document.querySelector('#vnc canvas');
      if (!c || !c.width || !c.height) return 0;
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let k = 0; k < d.length; k += 4) if (d[k] > 40 || d[k + 1] > 40 || d[k + 2] > 40) n++;
      return n;
    });
    if (drawn < 50) await page.waitForTimeout(500);
  }
  check(drawn >= 50, `the VNC canvas has non-blank pixels (${drawn})`);
  console.log(`VNC-PIXELS ${drawn}`);
  await shot(page, 'vnc-console.png');

  step('VM page: configuration, disks, graphs with data');
  await page.click('.tabs a:text("Overview")');
  await page.waitForFunction(() => Number(document.querySelector('#vm-charts')?.dataset.points || 0) >= 3, null, { timeout: 60000 });
  const pts = await page.evaluate(() => Number(document.querySelector('#vm-charts').dataset.points));
  check(pts >= 3, `the graphs have ${pts} data points`);
  console.log(`GRAPH-POINTS ${pts}`);
  check((await page.textContent('#vm-charts')).includes('CPU'), 'the CPU graph is there');
  check(await page.isVisible('text=e2e-img'), 'the disks table names the image');
  await page.waitForFunction(() => /POST \/start → 200/.test(document.querySelector('#vm-audit')?.textContent || ''), null, { timeout: 15000 });
  check(true, 'the audit log shows the start');
  await page.waitForTimeout(5500); // one more poll so the lines have several points
  await shot(page, 'vm-page.png');

  step('stop (with confirmation)');
  await page.click('.vm-head button[data-action=stop]');
  await page.waitForSelector('#confirm-dialog[open]');
  await page.click('#confirm-ok');
  await waitState(page, VM, 'stopped', 90000);

  step('the console of a stopped VM says so');
  await page.click('.tabs a:text("Serial console")');
  await page.waitForFunction(() => document.querySelector('#console-status')?.dataset.state === 'stopped', null, { timeout: 15000 });
  check((await page.textContent('#console-status')).includes('not running'), 'the stopped VM console says it is not running');

  step('delete from the list (with confirmation)');
  await page.click('a[data-nav=vms]');
  await page.waitForSelector(`tr[data-vm="${VM}"] button[data-action=delete]:not([disabled])`);
  await page.click(`tr[data-vm="${VM}"] button[data-action=delete]`);
  await page.click('#confirm-ok');
  await page.waitForSelector(`tr[data-vm="${VM}"]`, { state: 'detached', timeout: 30000 });
  check((await apiFetch(page, 'GET', `vms/${VM}`)).status === 404, 'the VM is gone from the API');

  step('a VM deleted in another window disappears quietly');
  check((await apiFetch(page, 'POST', 'vms', { name: 'e2e-2', memory_mib: 64 })).status === 201, 'second VM created via the API');
  await page.goto(`${URL_}#/vms/e2e-2`);
  await page.waitForSelector('.vm-head .state');
  await page.goto(`${URL_}#/vms`);
  await page.waitForSelector('tr[data-vm="e2e-2"]');
  await apiFetch(page, 'DELETE', 'vms/e2e-2');
  await page.waitForSelector('tr[data-vm="e2e-2"]', { state: 'detached', timeout: 15000 });
  await page.waitForTimeout(7000); // two more polls
  const errs = await page.evaluate(() => document.querySelectorAll('#messages .msg.error').length);
  check(errs === 0, `no error messages piled up after the deletion (${errs})`);

  step('narrow window');
  await page.setViewportSize({ width: 420, height: 800 });
  await page.goto(`${URL_}#/`);
  await page.waitForSelector('[data-test=accel]');
  await page.waitForTimeout(500);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `no horizontal scrolling at 420 px (overflow ${overflow}px)`);
  await shot(page, 'dashboard-narrow.png');
  await page.setViewportSize({ width: 1280, height: 800 });

  step('keyboard: Tab reaches the navigation');
  await page.waitForTimeout(3500); // a poll re-renders: focus must survive it
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.activeElement?.tagName);
  check(['A', 'BUTTON'].includes(focused), `Tab moves focus to a link or button (${focused})`);

  step('a viewer token: actions are not offered');
  const mk = async (name, role) => {
    const r = await apiFetch(page, 'POST', 'tokens', { name, role });
    check(r.status === 201, `token ${name} created: ${r.status} ${r.body}`);
    return JSON.parse(r.body);
  };
  const viewer = await mk('e2e-viewer', 'viewer');
  await page.click('#logout');
  await page.waitForSelector('#login:not([hidden])');
  await page.fill('#token', viewer.secret);
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => /viewer/.test(document.querySelector('#who').textContent));
  check((await page.textContent('#who')).includes('viewer'), 'the header shows the viewer role');
  check((await apiFetch(page, 'POST', 'vms', { name: 'e2e-3', memory_mib: 64 })).status === 201, 'a VM to look at');
  await page.click('a[data-nav=vms]');
  await page.waitForSelector('tr[data-vm="e2e-3"]');
  check(!(await page.isVisible('#create-vm')), 'a viewer is not offered "Create VM"');
  check(!(await page.isVisible('tr[data-vm="e2e-3"] button[data-action=start]')), 'a viewer is not offered "Start"');
  await apiFetch(page, 'DELETE', 'vms/e2e-3');

  step('a token revoked while logged in sends the person to the login page');
  const op = await mk('e2e-op', 'operator');
  await page.click('#logout');
  await page.fill('#token', op.secret);
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => /operator/.test(document.querySelector('#who').textContent));
  check((await page.textContent('#who')).includes('operator'), 'the header shows the operator role');
  await page.click('a[data-nav=vms]');
  await page.waitForSelector('#create-vm');
  check((await apiFetch(page, 'DELETE', `tokens/${op.token.id}`)).status === 200, 'operator token revoked');
  await page.waitForSelector('#login:not([hidden])', { timeout: 15000 });
  const lm = await page.textContent('#login-msg');
  check(/session ended.*revoked/.test(lm), `the login page explains why: ${lm}`);
  check(!(await page.isVisible('#top')), 'the navigation is hidden on the login page');
  check(await page.evaluate(() => sessionStorage.getItem('vessel.token')) === null, 'the refused token is forgotten');
  await shot(page, 'login-expired.png');
} catch (e) {
  failures++;
  console.log(`CHECK-FAIL exception: ${e.stack || e}`);
  try { await shot(page, 'failure.png'); } catch (e2) { /* ignore */ }
}
const relevant = consoleErrors.filter((e) => !/401|404|409|Failed to load resource/.test(e));
check(relevant.length === 0, `no JavaScript errors in the page: ${relevant.join(' | ')}`);
await browser.close();
console.log(`E2E ${failures ? 'FAIL' : 'PASS'} ${failures} failed checks in ${((Date.now() - t0) / 1000).toFixed(0)}s`);
process.exit(failures ? 1 : 0);
