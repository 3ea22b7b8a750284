// app.js: the vessel web UI. A hash router (#/, #/vms, #/vms/NAME,
// #/vms/NAME/console, #/vms/NAME/vnc, #/images) over views that poll the
// REST API every few seconds while shown and stop when left. Plain DOM:
// no framework, the packages the page needs are ES modules served by
// vesseld from the same origin.
import { api, ApiError, getToken, setToken, clearToken, onUnauthorized } from './api.js';
import { Chart } from './charts.js';
import { fieldOf, fmtBytes, fmtDuration, mergeSamples } from './util.js';

const POLL_MS = 3000;
const $ = (sel, root = document) => root.querySelector(sel);

// h('tag.class', {attr: value, onclick: fn}, ...children)
function h(spec, attrs, ...kids) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag || 'div');
  if (classes.length) el.className = classes.join(' ');
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of kids.flat()) if (c != null) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// Replace el's content with build() only when data changed since the last
// call, and keep keyboard focus on the same control across the re-render
// (polling must not throw a keyboard user back to the top of the page).
function render(el, data, build) {
  const key = JSON.stringify(data);
  if (el._renderKey === key) return;
  el._renderKey = key;
  const a = document.activeElement;
  const focusKey = a && el.contains(a) ? (a.dataset.key || a.getAttribute('href') || a.id) : null;
  el.replaceChildren(...[build()].flat().filter((x) => x != null));
  if (focusKey) {
    const again = [...el.querySelectorAll('[data-key],a[href],[id]')]
      .find((e) => (e.dataset.key || e.getAttribute('href') || e.id) === focusKey);
    if (again && !again.disabled) again.focus();
    else el.closest('section, main')?.focus?.();
  }
}

// ---------------------------------------------------------------- messages
// Errors from the API appear as readable sentences; the same sentence is
// shown once (with a count), so a failing poll does not pile them up.
const shown = new Map();
function message(text, kind = 'error') {
  const box = $('#messages');
  let m = shown.get(text);
  if (m) {
    m.count++;
    m.el.querySelector('.count').textContent = ` (×${m.count})`;
    return;
  }
  const el = h('div.msg.' + kind, { role: kind === 'error' ? 'alert' : null },
    h('span', { text }), h('span.count'),
    h('button.close', { type: 'button', 'aria-label': 'Dismiss message', onclick: () => drop() }, '×'));
  const drop = () => { el.remove(); shown.delete(text); };
  m = { el, count: 1 };
  shown.set(text, m);
  box.append(el);
  while (box.children.length > 4) { const first = box.firstElementChild; shown.delete(first.firstChild.textContent); first.remove(); }
  if (kind !== 'error') setTimeout(drop, 5000);
}
function clearMessages() { $('#messages').replaceChildren(); shown.clear(); }
function errorText(e) { return e instanceof ApiError ? e.message : String(e?.message || e); }

// ---------------------------------------------------------------- session
let role = 'admin';

function showLogin(msg) {
  stopView();
  clearToken();
  clearMessages();
  $('#top').hidden = true;
  $('#view').replaceChildren();
  $('#login').hidden = false;
  $('#login-msg').textContent = msg || '';
  $('#token').value = '';
  $('#token').focus();
}

onUnauthorized((err) => {
  if (!getToken()) return;
  showLogin(`Your session ended: vesseld no longer accepts the token — ${err.message}. Log in again.`);
});

// The role decides which actions are offered (GET /whoami); should that
// fail, every action is offered and the API still refuses what the role
// does not allow.
async function loadRole() {
  role = 'admin';
  try {
    const j = await api('GET', 'whoami', undefined, { noLogout: true });
    if (j && typeof j.role === 'string') role = j.role;
  } catch (e) { /* no such endpoint yet */ }
  document.body.dataset.role = role;
  $('#who').textContent = `role: ${role}`;
}
const canWrite = () => role !== 'viewer';

async function login(token) {
  setToken(token);
  try {
    await api('GET', 'host', undefined, { noLogout: true });
  } catch (e) {
    clearToken();
    $('#login-msg').textContent = e.status === 401
      ? 'That token was not accepted. Copy it again from DATA_DIR/admin.token.'
      : `Cannot log in: ${errorText(e)}`;
    return;
  }
  $('#login').hidden = true;
  $('#top').hidden = false;
  await loadRole();
  route();
}

$('#login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const t = $('#token').value.trim();
  if (!t) { $('#login-msg').textContent = 'Enter the API token.'; return; }
  login(t);
});
$('#logout').addEventListener('click', () => { showLogin('You are logged out.'); });

// ---------------------------------------------------------------- helpers
function confirmDialog(title, text, okLabel = 'OK') {
  const dlg = $('#confirm-dialog');
  $('#confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  $('#confirm-ok').textContent = okLabel;
  dlg.returnValue = 'cancel';
  dlg.showModal();
  $('#confirm-cancel').focus();
  return new Promise((resolve) => dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true }));
}

function fmtMib(mib) { return fmtBytes(mib * 1024 * 1024); }
function stateBadge(state) { return h('span.state.state-' + state, { text: state }); }
function fmtTime(iso) { return iso ? new Date(iso).toLocaleString() : '–'; }
const enc = encodeURIComponent;

// Which actions a state allows (the API refuses the others with 409).
const ACTIONS = [
  { id: 'start', label: 'Start', when: ['stopped', 'crashed'] },
  { id: 'stop', label: 'Stop', when: ['running', 'paused'], confirm: 'The guest is asked to power off (ACPI); it is forced off after 60 s.' },
  { id: 'reboot', label: 'Reboot', when: ['running'], confirm: 'The VM is reset at once, like pressing a reset button; unsaved guest data is lost.' },
  { id: 'pause', label: 'Pause', when: ['running'] },
  { id: 'resume', label: 'Resume', when: ['paused'] },
  { id: 'force-stop', label: 'Force stop', when: ['running', 'paused', 'starting', 'stopping'], confirm: 'The VM is killed at once, like pulling the power cord; unsaved guest data is lost.', danger: true },
  { id: 'delete', label: 'Delete', when: ['stopped', 'crashed'], confirm: 'The VM and its disks are deleted. This cannot be undone.', danger: true },
];

async function runAction(vm, a, after) {
  if (a.confirm && !(await confirmDialog(`${a.label} VM ${vm.name}?`, a.confirm, a.label))) return;
  try {
    if (a.id === 'delete') await api('DELETE', `vms/${enc(vm.name)}`);
    else await api('POST', `vms/${enc(vm.name)}/${a.id}`, a.id === 'stop' ? { timeout: 60 } : {});
    message(`${a.label}: VM ${vm.name} done.`, 'info');
  } catch (e) {
    message(`${a.label} ${vm.name}: ${errorText(e)}`);
  }
  after && after();
}

function actionButtons(vm, after) {
  const busy = new Set();
  return h('div.actions', { 'data-needs': 'write' }, ACTIONS.map((a) => {
    const ok = a.when.includes(vm.state);
    const b = h('button' + (a.danger ? '.danger' : '.secondary'), {
      type: 'button', disabled: !ok || !canWrite(), 'data-action': a.id, 'data-key': `${vm.name}:${a.id}`,
      'aria-label': `${a.label} ${vm.name}`,
      onclick: async () => {
        if (busy.has(a.id)) return;
        busy.add(a.id);
        b.disabled = true;
        b.classList.add('busy');
        await runAction(vm, a, after);
        busy.delete(a.id);
        // still shown (the state did not change): usable again
        b.classList.remove('busy');
        b.disabled = !ok || !canWrite();
      },
    }, a.label);
    return b;
  }));
}

// ---------------------------------------------------------------- views
let current = null; // {timers: [], destroy: []}

function stopView() {
  if (!current) return;
  current.timers.forEach(clearInterval);
  current.destroy.forEach((f) => { try { f(); } catch (e) { /* gone */ } });
  current = null;
}

function newView(title) {
  stopView();
  current = { timers: [], destroy: [], alive: true };
  const v = current;
  v.destroy.push(() => { v.alive = false; });
  document.title = `${title} · vessel`;
  const view = $('#view');
  view.replaceChildren();
  return { v, view };
}

function poll(v, fn, ms = POLL_MS) {
  fn();
  v.timers.push(setInterval(() => { if (v.alive && !document.hidden) fn(); }, ms));
}

function setNav(which) {
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === which) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

// Dashboard: host, use, VM counts, recent tasks.
function dashboard() {
  const { v, view } = newView('Dashboard');
  setNav('dashboard');
  const hostBox = h('section.card', { 'aria-labelledby': 'h-host' }, h('h2', { id: 'h-host' }, 'Host'));
  const useBox = h('section.card', { 'aria-labelledby': 'h-use' }, h('h2', { id: 'h-use' }, 'Use'));
  const vmBox = h('section.card', { 'aria-labelledby': 'h-vms' }, h('h2', { id: 'h-vms' }, 'VMs'));
  const taskBox = h('section.card.wide', { 'aria-labelledby': 'h-tasks' }, h('h2', { id: 'h-tasks' }, 'Recent tasks'));
  const chartBox = h('section.card.wide', { 'aria-labelledby': 'h-hist' }, h('h2', { id: 'h-hist' }, 'Host over the last hour'));
  const charts = h('div.charts');
  chartBox.append(charts);
  view.append(h('h1', {}, 'Dashboard'), h('div.grid', {}, hostBox, useBox, vmBox, chartBox, taskBox));

  let hist = null, since = 0, cpuChart = null, memChart = null;
  v.destroy.push(() => { cpuChart?.destroy(); memChart?.destroy(); });

  poll(v, async () => {
    try {
      const [host, vms, tasks, hh] = await Promise.all([
        api('GET', 'host'), api('GET', 'vms'), api('GET', 'tasks'), api('GET', `host/history${since ? `?since=${since}` : ''}`),
      ]);
      if (!v.alive) return;
      const warn = (host.warnings || []).map((w) => h('p.warning', { role: 'note' }, `⚠ ${w}`));
      render(hostBox, host, () => [h('h2', { id: 'h-host' }, 'Host'),
        h('dl.kv', {},
          h('dt', {}, 'Name'), h('dd', {}, host.hostname),
          h('dt', {}, 'Acceleration'), h('dd', {}, h('span.accel.accel-' + host.accel, { 'data-test': 'accel' }, host.accel === 'kvm' ? 'KVM (hardware)' : 'TCG (emulation)')),
          h('dt', {}, 'CPUs'), h('dd', {}, host.cpus),
          h('dt', {}, 'Memory'), h('dd', {}, fmtMib(host.memory_mib)),
          h('dt', {}, 'QEMU'), h('dd', {}, host.qemu_version || '–'),
          h('dt', {}, 'vesseld'), h('dd', {}, host.version)),
        ...warn]);
      hist = mergeSamples(hist, hh.samples, hh.window_seconds);
      const t = hist.t || [];
      if (t.length) since = t[t.length - 1];
      const last = (k) => { const a = hist[k] || []; for (let i = a.length - 1; i >= 0; i--) if (a[i] != null) return a[i]; return null; };
      const meter = (label, used, total, fmt) => {
        const pct = total ? Math.round((used / total) * 100) : null;
        return h('div.meter', {},
          h('div.meter-label', {}, h('span', {}, label), h('span', {}, pct == null ? '–' : `${fmt(used)} of ${fmt(total)} (${pct} %)`)),
          h('meter', { min: 0, max: 100, value: pct ?? 0, 'aria-label': `${label} ${pct ?? 0} %` }));
      };
      const cpu = last('cpu_percent');
      const cpuMeter = h('div.meter', {},
        h('div.meter-label', {}, h('span', {}, 'CPU'), h('span', {}, cpu == null ? '–' : `${cpu.toFixed(0)} % of ${host.cpus} CPUs`)),
        h('meter', { min: 0, max: 100, value: cpu ?? 0, 'aria-label': `CPU ${cpu == null ? 0 : cpu.toFixed(0)} %` }));
      useBox.replaceChildren(h('h2', { id: 'h-use' }, 'Use'),
        cpuMeter,
        meter('Memory', last('memory_used_bytes'), last('memory_total_bytes'), fmtBytes),
        meter('Disk (data directory)', last('disk_used_bytes'), last('disk_total_bytes'), fmtBytes),
        h('p.help', {}, `Load average ${last('load1') ?? '–'}; sampled every ${hh.interval_seconds} s.`));
      if (!cpuChart) {
        cpuChart = new Chart(charts.appendChild(h('div.chart')), 'Host CPU', 'percent', [{ label: 'CPU', key: 'cpu_percent' }]);
        memChart = new Chart(charts.appendChild(h('div.chart')), 'Host memory', 'bytes', [{ label: 'used', key: 'memory_used_bytes' }]);
      }
      cpuChart.setData(hist);
      memChart.setData(hist);

      const counts = {};
      for (const m of vms.vms) counts[m.state] = (counts[m.state] || 0) + 1;
      render(vmBox, counts, () => [h('h2', { id: 'h-vms' }, 'VMs'),
        h('p.big', {}, h('a', { href: '#/vms' }, `${vms.vms.length} VM${vms.vms.length === 1 ? '' : 's'}`)),
        h('ul.counts', { 'aria-label': 'VMs by state' }, Object.keys(counts).sort().map((s) => h('li', {}, stateBadge(s), ` ${counts[s]}`))),
        vms.vms.length ? null : h('p.help', {}, 'No VMs yet. Create one on the VMs page.')]);
      const recent = tasks.tasks.slice(0, 8);
      render(taskBox, recent, () => [h('h2', { id: 'h-tasks' }, 'Recent tasks'), taskTable(recent)]);
    } catch (e) {
      if (e.status !== 401) message(`Dashboard: ${errorText(e)}`);
    }
  });
}

function taskTable(tasks) {
  if (!tasks.length) return h('p.help', {}, 'No tasks.');
  return h('div.table-wrap', {}, h('table', {},
    h('thead', {}, h('tr', {}, ['Task', 'Kind', 'Target', 'State', 'Progress', 'Started'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, tasks.map((t) => h('tr', {},
      h('td', {}, t.id), h('td', {}, t.kind), h('td', {}, t.target),
      h('td', {}, stateBadge(t.state), t.error ? h('div.help', {}, t.error) : null),
      h('td', {}, h('progress', { max: 100, value: t.progress, 'aria-label': `progress of ${t.id}` }), ` ${t.progress} %`),
      h('td', {}, fmtTime(t.created_at)))))));
}

// VM list: polled; a VM deleted elsewhere simply disappears.
function vmList() {
  const { v, view } = newView('VMs');
  setNav('vms');
  const table = h('div.table-wrap');
  view.append(h('div.title-row', {}, h('h1', {}, 'Virtual machines'),
    h('button', { type: 'button', id: 'create-vm', 'data-needs': 'write', onclick: () => openCreate(refresh) }, 'Create VM')), table);
  let started = {};
  const refresh = async () => {
    try {
      const [vms, hh] = await Promise.all([api('GET', 'vms'), api('GET', `host/history?since=${Date.now() / 1000}`)]);
      if (!v.alive) return;
      started = hh.vm_started_at || {};
      const now = Date.now() / 1000;
      const uptime = (m) => (started[m.name] && (m.state === 'running' || m.state === 'paused') ? fmtDuration(now - started[m.name]) : '–');
      const rows = vms.vms.map((m) => [m.name, m.state, m.vcpus, m.memory_mib, uptime(m)]);
      render(table, rows, () => (!vms.vms.length ? h('p.help', {}, 'No VMs yet. Create one with “Create VM”.') : h('table.vms', {},
        h('thead', {}, h('tr', {}, ['Name', 'State', 'vCPUs', 'Memory', 'Uptime', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, vms.vms.map((m) => h('tr', { 'data-vm': m.name },
          h('td', {}, h('a', { href: `#/vms/${enc(m.name)}` }, m.name)),
          h('td', {}, stateBadge(m.state)),
          h('td.num', {}, m.vcpus),
          h('td.num', {}, fmtMib(m.memory_mib)),
          h('td.num', {}, uptime(m)),
          h('td', {}, actionButtons(m, refresh))))))));
    } catch (e) {
      if (e.status !== 401) message(`VM list: ${errorText(e)}`);
    }
  };
  poll(v, refresh);
}

// One VM: configuration, disks, tasks, events, graphs, and its consoles.
function vmPage(name, tab) {
  const { v, view } = newView(name);
  setNav('vms');
  const head = h('div.title-row', {}, h('h1', {}, h('a', { href: '#/vms' }, 'VMs'), ' / ', name));
  const state = h('span', { id: 'vm-state' });
  const actions = h('div');
  const tabs = h('nav.tabs', { 'aria-label': 'VM sections' },
    [['', 'Overview'], ['console', 'Serial console'], ['vnc', 'Graphical console']].map(([t, label]) =>
      h('a', { href: `#/vms/${enc(name)}${t ? '/' + t : ''}`, 'aria-current': (tab || '') === t ? 'page' : null }, label)));
  const body = h('div');
  view.append(head, h('div.vm-head', {}, state, actions), tabs, body);
  const events = [];
  let lastState = null, gone = false, vm = null;

  const refreshVm = async () => {
    if (gone) return;
    try {
      vm = (await api('GET', `vms/${enc(name)}`)).vm;
    } catch (e) {
      if (e.status === 404) {
        // deleted here or in another window: say it once, stop polling
        gone = true;
        stopView();
        view.replaceChildren(h('h1', {}, name), h('p.notice', { role: 'status' }, `VM ${name} no longer exists (it was deleted). `, h('a', { href: '#/vms' }, 'Back to the VM list')));
        return;
      }
      if (e.status !== 401) message(`VM ${name}: ${errorText(e)}`);
      return;
    }
    if (!v.alive) return;
    if (vm.state !== lastState) {
      events.unshift({ t: new Date(), text: lastState ? `state ${lastState} → ${vm.state}` : `state ${vm.state} when the page opened` });
      if (vm.crash_reason && vm.state === 'crashed') events.unshift({ t: new Date(), text: `crashed: ${vm.crash_reason}` });
      const first = lastState === null;
      const wasRunning = lastState === 'running' || lastState === 'paused';
      const isRunning = vm.state === 'running' || vm.state === 'paused';
      lastState = vm.state;
      if (v.onRunningChange && (first || wasRunning !== isRunning)) v.onRunningChange(isRunning);
    }
    render(state, vm.state, () => stateBadge(vm.state));
    render(actions, [vm.state, role], () => actionButtons(vm, refreshVm));
    v.onVm && v.onVm(vm, events);
  };

  if (!tab) overview(v, body, name);
  else if (tab === 'console') serialTab(v, body, name);
  else if (tab === 'vnc') vncTab(v, body, name);
  poll(v, refreshVm);
}

function overview(v, body, name) {
  const cfg = h('section.card', { 'aria-labelledby': 'h-cfg' });
  const disks = h('section.card', { 'aria-labelledby': 'h-disks' });
  const tasksEv = h('section.card', { 'aria-labelledby': 'h-te' });
  const auditEl = h('div', { id: 'vm-audit' });
  const graphs = h('section.card.wide', { 'aria-labelledby': 'h-graphs' },
    h('h2', { id: 'h-graphs' }, 'Last hour'), h('p.help', { id: 'graph-help' }, 'CPU 100 % = one host CPU. Network graphs stay empty until the VM has NICs.'));
  const chartsEl = h('div.charts', { id: 'vm-charts' });
  graphs.append(chartsEl);
  body.append(h('div.grid', {}, cfg, disks, tasksEv, graphs));

  v.onVm = async (vm, events) => {
    const boot = vm.boot || {};
    render(cfg, vm, () => [h('h2', { id: 'h-cfg' }, 'Configuration'), h('dl.kv', {},
      h('dt', {}, 'State'), h('dd', {}, stateBadge(vm.state)),
      h('dt', {}, 'vCPUs'), h('dd', {}, vm.vcpus),
      h('dt', {}, 'Memory'), h('dd', {}, fmtMib(vm.memory_mib)),
      h('dt', {}, 'Boot'), h('dd', {}, boot.firmware + (boot.kernel ? ` ${boot.kernel}` : '')),
      boot.cmdline ? [h('dt', {}, 'Command line'), h('dd', {}, h('code', {}, boot.cmdline))] : null,
      h('dt', {}, 'Autostart'), h('dd', {}, vm.autostart ? 'yes' : 'no'),
      h('dt', {}, 'Restart policy'), h('dd', {}, vm.restart_policy),
      h('dt', {}, 'Monitor pid'), h('dd', {}, vm.pid ?? '–'),
      h('dt', {}, 'UUID'), h('dd', {}, h('code', {}, vm.uuid)),
      h('dt', {}, 'Created'), h('dd', {}, fmtTime(vm.created_at)),
      vm.description ? [h('dt', {}, 'Description'), h('dd', {}, vm.description)] : null)]);
    render(disks, vm.disks, () => [h('h2', { id: 'h-disks' }, 'Disks'), vm.disks.length ? h('div.table-wrap', {}, h('table', {},
      h('thead', {}, h('tr', {}, ['#', 'Image', 'Clone', 'Size', 'Format'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, vm.disks.map((d) => h('tr', {}, h('td', {}, d.index), h('td', {}, d.image ?? 'blank'),
        h('td', {}, d.clone ?? '–'), h('td.num', {}, fmtBytes(d.size_bytes)), h('td', {}, d.format)))))) : h('p.help', {}, 'No disks.')]);
    let tasks = [];
    try { tasks = (await api('GET', 'tasks')).tasks.filter((t) => t.target === vm.name).slice(0, 5); } catch (e) { /* shown elsewhere */ }
    if (!v.alive) return;
    render(tasksEv, [tasks, events.length], () => [h('h2', { id: 'h-te' }, 'Tasks and events'), taskTable(tasks),
      h('h3', {}, 'Events seen by this page'),
      h('ul.events', {}, events.slice(0, 10).map((e) => h('li', {}, h('time', {}, e.t.toLocaleTimeString()), ' ', e.text))),
      auditEl]);
  };

  // Admins also see who changed this VM, from the audit log.
  if (role === 'admin') {
    const base = `/api/v1/vms/${name}`;
    poll(v, async () => {
      try {
        const j = await api('GET', `audit?path=${enc(base)}&limit=200`);
        const mine = j.entries.filter((e) => e.path === base || e.path?.startsWith(`${base}/`) || e.path?.startsWith(`${base}?`)).slice(-8).reverse();
        if (!v.alive) return;
        render(auditEl, mine, () => [h('h3', {}, 'Changes (audit log)'), mine.length ? h('ul.events', {}, mine.map((e) => h('li', {},
          h('time', {}, new Date(e.time).toLocaleTimeString()), ' ',
          `${e.method} ${e.path.slice(base.length) || '/'} → ${e.result} by ${e.token}`))) : h('p.help', {}, 'None yet.')]);
      } catch (e) {
        if (e.status !== 401 && e.status !== 403) message(`Audit log: ${errorText(e)}`);
      }
    }, 10000);
  }

  const charts = [];
  let hist = null, since = 0;
  v.destroy.push(() => charts.forEach((c) => c.destroy()));
  poll(v, async () => {
    try {
      const hh = await api('GET', `vms/${enc(name)}/history${since ? `?since=${since}` : ''}`);
      if (!v.alive) return;
      hist = mergeSamples(hist, hh.samples, hh.window_seconds);
      if (hist.t?.length) since = hist.t[hist.t.length - 1];
      if (!charts.length) {
        const mk = (title, unit, series) => charts.push(new Chart(chartsEl.appendChild(h('div.chart', { 'data-chart': title })), title, unit, series));
        mk('CPU', 'percent', [{ label: 'CPU', key: 'cpu_percent' }]);
        mk('Memory', 'bytes', [{ label: 'RSS', key: 'memory_bytes' }]);
        mk('Disk', 'rate', [{ label: 'read', key: 'disk_read_bytes_per_second' }, { label: 'write', key: 'disk_write_bytes_per_second' }]);
        mk('Network', 'rate', [{ label: 'rx', key: 'net_rx_bytes_per_second' }, { label: 'tx', key: 'net_tx_bytes_per_second' }]);
      }
      charts.forEach((c) => c.setData(hist));
      chartsEl.dataset.points = String(hist.t?.length || 0);
    } catch (e) {
      if (e.status !== 401 && e.status !== 404) message(`Graphs of ${name}: ${errorText(e)}`);
    }
  }, 5000);
}

function consoleStatus(el) {
  return (kind, text) => { el.className = `console-status ${kind}`; el.textContent = text; el.dataset.state = kind; };
}

function serialTab(v, body, name) {
  const status = h('p.console-status', { id: 'console-status', role: 'status' });
  const term = h('div.terminal', { id: 'terminal' });
  body.append(status, term);
  let con = null;
  const open = async (running) => {
    const { SerialConsole } = await import('./consoles.js');
    if (!v.alive) return;
    con?.destroy();
    term.replaceChildren();
    con = new SerialConsole(term, name, running, consoleStatus(status));
  };
  v.destroy.push(() => con?.destroy());
  // reopen when the VM starts or stops while the page is shown
  v.onRunningChange = (running) => open(running);
}

function vncTab(v, body, name) {
  const status = h('p.console-status', { id: 'vnc-status', role: 'status' });
  const screen = h('div.vnc', { id: 'vnc' });
  const cad = h('button.secondary', { type: 'button', 'data-needs': 'write', onclick: () => con?.sendCtrlAltDel() }, 'Send Ctrl-Alt-Del');
  body.append(h('div.console-bar', {}, status, cad), screen);
  let con = null;
  const set = consoleStatus(status);
  v.destroy.push(() => con?.destroy());
  v.onRunningChange = async (running) => {
    con?.destroy();
    con = null;
    screen.replaceChildren();
    if (!running) {
      set('stopped', 'This VM is not running, so it has no display. Start the VM to use the graphical console.');
      return;
    }
    const { VncConsole } = await import('./consoles.js');
    if (v.alive) con = new VncConsole(screen, name, set);
  };
}

// Images: list and import with a progress bar from the task API.
function images() {
  const { v, view } = newView('Images');
  setNav('images');
  const table = h('div.table-wrap');
  view.append(h('div.title-row', {}, h('h1', {}, 'Images'),
    h('button', { type: 'button', 'data-needs': 'admin', onclick: () => openImport(refresh) }, 'Import image')), table);
  const refresh = async () => {
    try {
      const j = await api('GET', 'images');
      if (!v.alive) return;
      render(table, j.images, () => (j.images.length ? h('table', {},
        h('thead', {}, h('tr', {}, ['Name', 'State', 'Source format', 'Virtual size', 'File size', 'Used by', ''].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, j.images.map((i) => h('tr', {},
          h('td', {}, i.name), h('td', {}, stateBadge(i.state)), h('td', {}, i.source_format),
          h('td.num', {}, fmtBytes(i.virtual_size_bytes)), h('td.num', {}, fmtBytes(i.size_bytes)),
          h('td', {}, (i.used_by || []).join(', ') || '–'),
          h('td', {}, h('button.danger', {
            type: 'button', 'data-needs': 'admin', disabled: (i.used_by || []).length > 0 || role !== 'admin', 'aria-label': `Delete image ${i.name}`,
            onclick: async () => {
              if (!(await confirmDialog(`Delete image ${i.name}?`, 'The stored image file is deleted.', 'Delete'))) return;
              try { await api('DELETE', `images/${enc(i.name)}`); } catch (e) { message(`Delete image ${i.name}: ${errorText(e)}`); }
              refresh();
            },
          }, 'Delete')))))) : h('p.help', {}, 'No images. Import one from a file on the host.')));
    } catch (e) {
      if (e.status !== 401) message(`Images: ${errorText(e)}`);
    }
  };
  poll(v, refresh);
}

// ---------------------------------------------------------------- dialogs
function clearFieldErrors(form) {
  form.querySelectorAll('.field-error').forEach((e) => { e.textContent = ''; });
  form.querySelectorAll('[aria-invalid]').forEach((e) => e.removeAttribute('aria-invalid'));
  form.querySelector('.form-error').textContent = '';
}

function showFieldError(form, prefix, field, msg) {
  const el = field && form.querySelector(`#${prefix}-${field}-err`);
  if (!el) { form.querySelector('.form-error').textContent = msg; return; }
  el.textContent = msg;
  const input = form.querySelector(`[aria-describedby="${el.id}"]`);
  if (input) { input.setAttribute('aria-invalid', 'true'); input.focus(); }
}

let createDone = null;
async function openCreate(done) {
  createDone = done;
  const dlg = $('#create-dialog'), form = $('#create-form');
  clearFieldErrors(form);
  const sel = $('#c-image');
  sel.replaceChildren(h('option', { value: '' }, 'none (blank disk, or kernel boot without disk)'));
  try {
    for (const i of (await api('GET', 'images')).images) {
      sel.append(h('option', { value: i.name, disabled: i.state !== 'ready' }, `${i.name}${i.state !== 'ready' ? ` (${i.state})` : ''}`));
    }
    const firstReady = [...sel.options].find((o) => o.value && !o.disabled);
    if (firstReady) sel.value = firstReady.value;
  } catch (e) { form.querySelector('.form-error').textContent = `The image list could not be read: ${errorText(e)}`; }
  $('#c-kernel-fields').hidden = $('#c-boot').value !== 'kernel';
  dlg.showModal();
  $('#c-name').focus();
}

$('#c-boot').addEventListener('change', () => { $('#c-kernel-fields').hidden = $('#c-boot').value !== 'kernel'; });
$('#create-cancel').addEventListener('click', () => $('#create-dialog').close());
$('#create-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = e.target;
  clearFieldErrors(form);
  const val = (id) => $(id).value.trim();
  const body = { name: val('#c-name') };
  const num = (id, key) => { const s = val(id); if (s !== '') body[key] = Number(s); };
  num('#c-vcpus', 'vcpus');
  num('#c-memory', 'memory_mib');
  const fw = val('#c-boot');
  body.boot = { firmware: fw };
  if (fw === 'kernel') {
    body.boot.kernel = val('#c-kernel');
    if (val('#c-initrd')) body.boot.initrd = val('#c-initrd');
    if (val('#c-cmdline')) body.boot.cmdline = val('#c-cmdline');
  }
  const image = val('#c-image'), size = val('#c-disk');
  if (image || size) {
    const disk = {};
    if (image) disk.image = image;
    if (size !== '') disk.size_gib = Number(size);
    body.disks = [disk];
  }
  const btn = $('#create-submit');
  btn.disabled = true;
  try {
    await api('POST', 'vms', body);
    $('#create-dialog').close();
    message(`VM ${body.name} created.`, 'info');
    createDone && createDone();
  } catch (err) {
    showFieldError(form, 'c', err.status === 409 && /already/.test(err.message) ? 'name' : fieldOf(err.message), err.message);
  } finally {
    btn.disabled = false;
  }
});

let importDone = null;
function openImport(done) {
  importDone = done;
  const form = $('#import-form');
  clearFieldErrors(form);
  $('#import-progress-wrap').hidden = true;
  $('#import-submit').disabled = false;
  $('#import-dialog').showModal();
  $('#i-name').focus();
}
$('#import-cancel').addEventListener('click', () => $('#import-dialog').close());
$('#import-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = e.target;
  clearFieldErrors(form);
  const body = { name: $('#i-name').value.trim(), path: $('#i-path').value.trim(), format: $('#i-format').value };
  const btn = $('#import-submit');
  btn.disabled = true;
  let task;
  try {
    task = (await api('POST', 'images', body)).task;
  } catch (err) {
    btn.disabled = false;
    const f = /field '(name|path)'|not a valid name/.exec(err.message) ? (/path/.test(err.message) ? 'path' : 'name')
      : /^path |path '|allowed director|regular file/.test(err.message) ? 'path' : /name|already/.test(err.message) ? 'name' : null;
    showFieldError(form, 'i', f, err.message);
    return;
  }
  const wrap = $('#import-progress-wrap'), bar = $('#import-progress'), label = $('#import-progress-label');
  wrap.hidden = false;
  for (;;) {
    let t;
    try { t = (await api('GET', `tasks/${enc(task.id)}`)).task; } catch (err) { form.querySelector('.form-error').textContent = errorText(err); break; }
    bar.value = t.progress;
    label.textContent = `Importing ${body.name}: ${t.progress} %${t.message ? ` — ${t.message}` : ''}`;
    if (t.state === 'succeeded') { label.textContent = `Imported ${body.name}.`; importDone && importDone(); break; }
    if (t.state === 'failed') { form.querySelector('.form-error').textContent = `The import failed: ${t.error}`; break; }
    await new Promise((r) => setTimeout(r, 500));
  }
  btn.disabled = false;
});

// ---------------------------------------------------------------- router
function route() {
  if (!getToken()) { showLogin(); return; }
  const parts = (location.hash.replace(/^#\/?/, '') || '').split('/').filter(Boolean).map(decodeURIComponent);
  clearMessages();
  if (parts[0] === 'vms' && parts[1]) vmPage(parts[1], parts[2]);
  else if (parts[0] === 'vms') vmList();
  else if (parts[0] === 'images') images();
  else dashboard();
  $('#main').focus({ preventScroll: true });
}

window.addEventListener('hashchange', () => { if (getToken()) route(); });

if (getToken()) {
  // a reload within the tab: check the token is still good
  login(getToken());
} else {
  showLogin();
}
