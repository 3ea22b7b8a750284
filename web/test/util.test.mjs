// util.test.mjs: node:test checks of the web UI's pure helpers (web/src/
// util.js). The validation messages are the ones vesseld really sends
// (src/daemon/validate.c, vm.c), so a reworded message that the dialog
// could no longer place next to its field fails here.
import test from 'node:test';
import assert from 'node:assert/strict';
import { fieldOf, fmtBytes, fmtDuration, mergeSamples } from '../src/util.js';

test('fieldOf places API validation messages next to their field', () => {
  const cases = [
    ["field 'vcpus' must be from 1 to 64; got 999", 'vcpus'],
    ["field 'memory_mib' must be an integer from 16 to 1048576", 'memory_mib'],
    ["field 'name' is required", 'name'],
    ["'Web_1' is not a valid name: use 1 to 63 lowercase letters, digits or '-', not starting or ending with '-'", 'name'],
    ["'Deb' is not a valid image: use 1 to 63 lowercase letters", 'image'],
    ["field 'size_gib' must be from 1 to 16384; got 0", 'disk'],
    ["disks[0]: size_gib 1 is smaller than image 'deb' (2147483648 bytes); give at least 2", 'disk'],
    ["disks[0]: there is no image 'nope'; import it first with POST /api/v1/images", 'image'],
    ["disks[0]: image 'deb' is still being imported; wait for its task to finish", 'image'],
    ["boot firmware 'floppy' is unknown; use bios, uefi or kernel", 'boot'],
    ["boot firmware 'kernel' needs a 'kernel' path", 'kernel'],
    ["kernel '/etc/passwd' is not under an allowed directory", 'kernel'],
    ["initrd '/x' cannot be used: No such file or directory", 'initrd'],
    ["a VM named 'web-1' already exists; choose another name", 'name'],
    ['the request body is not valid JSON (line 1, column 2: x)', null],
  ];
  for (const [msg, want] of cases) assert.equal(fieldOf(msg), want, msg);
});

test('fmtBytes and fmtDuration', () => {
  assert.equal(fmtBytes(0), '0 B');
  assert.equal(fmtBytes(1536), '1.5 KiB');
  assert.equal(fmtBytes(256 * 1024 * 1024), '256 MiB');
  assert.equal(fmtBytes(null), '–');
  assert.equal(fmtDuration(59.9), '59s');
  assert.equal(fmtDuration(61), '1m 1s');
  assert.equal(fmtDuration(3 * 3600 + 120), '3h 2m');
  assert.equal(fmtDuration(2 * 86400 + 3600), '2d 1h');
  assert.equal(fmtDuration(-1), '–');
});

test('mergeSamples appends ?since= replies and keeps one hour', () => {
  const a = { t: [100, 105], cpu_percent: [1, 2] };
  const b = { t: [110], cpu_percent: [null] };
  assert.deepEqual(mergeSamples(null, a, 3600), a);
  assert.deepEqual(mergeSamples(a, b, 3600), { t: [100, 105, 110], cpu_percent: [1, 2, null] });
  // a window of 6 s ending at 110 drops the sample at 100
  assert.deepEqual(mergeSamples(a, b, 6), { t: [105, 110], cpu_percent: [2, null] });
  // an empty reply keeps what we have
  assert.deepEqual(mergeSamples(a, { t: [], cpu_percent: [] }, 3600).t, [100, 105]);
});
