// util.js: the pure helpers of the web UI (formatting, merging history
// columns, placing API validation messages next to form fields), kept free
// of DOM access so web/test/util.test.mjs can check them under node.

export function fmtBytes(v) {
  if (v == null || !isFinite(v)) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${u[i]}`;
}

export function fmtDuration(s) {
  if (s == null || s < 0) return '–';
  s = Math.floor(s);
  const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${hh}h`;
  if (hh) return `${hh}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

// Append new columns (a ?since= reply) to what we have, keeping the last
// hour only.
export function mergeSamples(have, add, windowSeconds) {
  if (!have) return add;
  const out = {};
  const t = (have.t || []).concat(add.t || []);
  // the window ends at the newest sample we have, not at the browser's
  // clock, which may differ from the host's
  const cutoff = (t.length ? t[t.length - 1] : 0) - windowSeconds;
  let drop = 0;
  while (drop < t.length && t[drop] < cutoff) drop++;
  for (const k of Object.keys(add)) out[k] = (have[k] || []).concat(add[k] || []).slice(drop);
  return out;
}

// The API names the field in its validation sentence ("field 'vcpus' must
// be ...", "'X' is not a valid name", "disks[0] ...", "boot kernel ..."):
// that decides which input the message is shown next to.
export function fieldOf(msg) {
  let m = msg.match(/field '([a-z_]+)'/);
  if (m) return { size_gib: 'disk', firmware: 'boot', disks: 'disk', clone: 'image' }[m[1]] || m[1];
  if (/size_gib/.test(msg)) return 'disk';
  m = msg.match(/is not a valid ([a-z_]+)/);
  if (m) return m[1] === 'image' ? 'image' : 'name';
  if (/^(kernel|initrd) /.test(msg)) return msg.split(' ')[0];
  if (/needs a 'kernel' path/.test(msg)) return 'kernel';
  if (/image/.test(msg)) return 'image';
  if (/^disks\[/.test(msg)) return 'disk';
  if (/^boot |firmware/.test(msg)) return 'boot';
  if (/^vm '|name/.test(msg)) return 'name';
  return null;
}
