/* qemu_args: builds the QEMU command line for a VM (see qemu_args.h).
 *
 * Choices, and why:
 * - "-S": QEMU starts with the vCPUs stopped so the driver can connect QMP
 *   and the serial socket before the guest prints anything, then "cont".
 * - "-no-user-config -nodefaults": only devices we name exist, so the guest
 *   ABI does not change with QEMU's defaults or /etc/qemu files.
 * - no "-no-shutdown": a guest poweroff makes QEMU exit, and the process
 *   exit is what turns the VM "stopped" (the daemon does not have to quit a
 *   QEMU that sits there with a dead guest).
 * - no "-daemonize": the driver spawns QEMU itself in a new session, with
 *   stdout/stderr going to qemu.log, so QEMU's own error text is kept and a
 *   child exit status can be reaped; setsid keeps it alive across a vesseld
 *   restart, and "-pidfile" lets a new vesseld find it again.
 * - the QMP monitor and the serial port are "-chardev socket" server
 *   sockets with wait=off, so QEMU does not block waiting for a client and
 *   a restarted vesseld can connect again.
 * - "-sandbox on,...=deny": QEMU's own seccomp filter (DESIGN.md "Processes
 *   and trust").
 * - disks are "-blockdev" (file node + format node) with virtio-blk-pci:
 *   the modern block layer syntax, one node name per layer.
 * - pvpanic lets a guest kernel report a panic (GUEST_PANICKED).
 * - NICs are virtio-net-pci on "-netdev tap,fd=N": vesseld creates the tap
 *   (it owns host networking; QEMU runs sandboxed, without the rights to
 *   create or attach one) and QEMU inherits the open fd. vhost=off: vhost-net
 *   would need /dev/vhost-net, which hosts without the module lack.
 * - BIOS VMs get SeaBIOS's serial console (fw_cfg "etc/sercon-port"), so
 *   boot messages reach the serial console, the console most people use.
 * - a standard VGA adapter and "-vnc unix:RUNDIR/vnc.sock" give the web UI
 *   a graphical console: VNC on a Unix socket in the VM's private run
 *   directory, never a TCP port, so only vesseld (which authenticates the
 *   browser) reaches it. "-display none" only turns off a local window. */
#include "daemon/engine/qemu_args.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int qemu_args_new(struct qemu_args **out)
{
	struct qemu_args *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->cap = 64;
	a->argv = calloc(a->cap, sizeof(char *));
	if (!a->argv) {
		free(a);
		return -ENOMEM;
	}
	*out = a;
	return 0;
}

void qemu_args_free(struct qemu_args *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->argc; i++)
		free(a->argv[i]);
	free(a->argv);
	free(a);
}

static int qemu_args_push(struct qemu_args *a, char *owned)
{
	if (!owned)
		return -ENOMEM;
	if (a->argc + 1 >= a->cap) {
		size_t ncap = a->cap * 2;
		char **n = realloc(a->argv, ncap * sizeof(char *));

		if (!n) {
			free(owned);
			return -ENOMEM;
		}
		a->argv = n;
		a->cap = ncap;
	}
	a->argv[a->argc++] = owned;
	a->argv[a->argc] = NULL;
	return 0;
}

int qemu_args_add(struct qemu_args *a, const char *arg)
{
	return qemu_args_push(a, strdup(arg));
}

int qemu_args_addf(struct qemu_args *a, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return qemu_args_push(a, n < 0 ? NULL : s);
}

char *qemu_args_escape(const char *s)
{
	size_t n = 0;
	char *out, *p;

	for (const char *q = s; *q; q++)
		n += *q == ',' ? 2 : 1;
	out = malloc(n + 1);
	if (!out)
		return NULL;
	p = out;
	for (const char *q = s; *q; q++) {
		*p++ = *q;
		if (*q == ',')
			*p++ = ',';
	}
	*p = '\0';
	return out;
}

static bool qemu_args_uuid_valid(const char *u)
{
	if (strlen(u) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (u[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)u[i])) {
			return false;
		}
	}
	return true;
}

static void qemu_args_set_err(char **err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void qemu_args_set_err(char **err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(err, fmt, ap) < 0)
		*err = NULL;
	va_end(ap);
}

/* Check what QEMU would otherwise reject with a less helpful message. */
static int qemu_args_check(const struct engine_vm_spec *spec, char **err)
{
	if (spec->name[0] == '\0' || memchr(spec->name, '\0', sizeof(spec->name)) == NULL) {
		qemu_args_set_err(err, "VM name is empty or not terminated; give the VM a name");
		return -EINVAL;
	}
	if (!qemu_args_uuid_valid(spec->uuid)) {
		qemu_args_set_err(err, "VM '%s': uuid '%.36s' is not of the form "
				  "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", spec->name, spec->uuid);
		return -EINVAL;
	}
	/* 255: the most vCPUs q35 boots without an IOMMU for x2APIC. */
	if (spec->vcpus < 1 || spec->vcpus > 255) {
		qemu_args_set_err(err, "VM '%s': %u vCPUs is out of range; use 1 to 255",
				  spec->name, spec->vcpus);
		return -EINVAL;
	}
	if (spec->memory_mib < 16 || spec->memory_mib > 4ull * 1024 * 1024) {
		qemu_args_set_err(err, "VM '%s': %llu MiB of memory is out of range; use 16 MiB "
				  "to 4 TiB", spec->name, (unsigned long long)spec->memory_mib);
		return -EINVAL;
	}
	if (spec->firmware == ENGINE_FW_KERNEL && spec->kernel[0] == '\0') {
		qemu_args_set_err(err, "VM '%s': direct kernel boot needs a kernel path",
				  spec->name);
		return -EINVAL;
	}
	if (spec->firmware != ENGINE_FW_BIOS && spec->firmware != ENGINE_FW_UEFI &&
	    spec->firmware != ENGINE_FW_KERNEL) {
		qemu_args_set_err(err, "VM '%s': unknown firmware %d; use bios, uefi or kernel",
				  spec->name, (int)spec->firmware);
		return -EINVAL;
	}
	if (spec->nr_disks > ENGINE_MAX_DISKS) {
		qemu_args_set_err(err, "VM '%s': %u disks is more than the %d supported",
				  spec->name, spec->nr_disks, ENGINE_MAX_DISKS);
		return -EINVAL;
	}
	if (spec->nr_nics > ENGINE_MAX_NICS) {
		qemu_args_set_err(err, "VM '%s': %u NICs is more than the %d supported",
				  spec->name, spec->nr_nics, ENGINE_MAX_NICS);
		return -EINVAL;
	}
	for (unsigned i = 0; i < spec->nr_nics; i++) {
		const char *m = spec->nics[i].mac;
		bool ok = strlen(m) == 17;

		for (int k = 0; ok && k < 17; k++)
			ok = k % 3 == 2 ? m[k] == ':' : isxdigit((unsigned char)m[k]) != 0;
		if (!ok) {
			qemu_args_set_err(err, "VM '%s': NIC %u has MAC '%.17s', not of the form "
					  "xx:xx:xx:xx:xx:xx", spec->name, i, m);
			return -EINVAL;
		}
	}
	for (unsigned i = 0; i < spec->nr_disks; i++) {
		const struct engine_disk *d = &spec->disks[i];

		if (d->path[0] == '\0') {
			qemu_args_set_err(err, "VM '%s': disk %u has no path", spec->name, i);
			return -EINVAL;
		}
		if (strcmp(d->format, "qcow2") != 0 && strcmp(d->format, "raw") != 0) {
			qemu_args_set_err(err, "VM '%s': disk '%s' has format '%.16s'; only qcow2 "
					  "and raw are supported", spec->name, d->path, d->format);
			return -EINVAL;
		}
	}
	if (spec->run_dir[0] != '/') {
		qemu_args_set_err(err, "VM '%s': run directory '%s' is not an absolute path",
				  spec->name, spec->run_dir);
		return -EINVAL;
	}
	if (strlen(spec->run_dir) + 1 + strlen(QEMU_RUN_SERIAL) > QEMU_SOCKET_PATH_MAX) {
		qemu_args_set_err(err, "VM '%s': run directory '%s' is too long for a Unix "
				  "socket path (at most %zu characters); use a shorter data "
				  "directory", spec->name, spec->run_dir,
				  QEMU_SOCKET_PATH_MAX - 1 - strlen(QEMU_RUN_SERIAL));
		return -ENAMETOOLONG;
	}
	return 0;
}

static int qemu_args_add_disks(struct qemu_args *a, const struct engine_vm_spec *spec)
{
	int r = 0;

	for (unsigned i = 0; i < spec->nr_disks && r == 0; i++) {
		const struct engine_disk *d = &spec->disks[i];
		const char *ro = d->readonly ? "on" : "off";
		char *path = qemu_args_escape(d->path);

		if (!path)
			return -ENOMEM;
		/* The protocol node opens the file; the format node on top of
		 * it interprets qcow2 or raw. discard=unmap passes guest TRIM
		 * down so freed clusters return to the host. */
		r = qemu_args_add(a, "-blockdev");
		if (r == 0)
			r = qemu_args_addf(a, "driver=file,node-name=file%u,filename=%s,"
					   "read-only=%s,discard=unmap", i, path, ro);
		if (r == 0)
			r = qemu_args_add(a, "-blockdev");
		if (r == 0)
			r = qemu_args_addf(a, "driver=%s,node-name=disk%u,file=file%u,"
					   "read-only=%s,discard=unmap", d->format, i, i, ro);
		if (r == 0)
			r = qemu_args_add(a, "-device");
		/* The first disk is the boot disk for SeaBIOS and OVMF. */
		if (r == 0)
			r = qemu_args_addf(a, "virtio-blk-pci,id=vd%u,drive=disk%u%s", i, i,
					   i == 0 ? ",bootindex=1" : "");
		free(path);
	}
	return r;
}

static int qemu_args_add_nics(struct qemu_args *a, const struct engine_vm_spec *spec)
{
	int r = 0;

	/* One PCIe root port per possible NIC, NIC i always on port i: q35's
	 * root complex (pcie.0) cannot hot-plug, a root port can, so NICs can
	 * be added and removed while the VM runs (as libvirt keeps spare
	 * ports for). */
	for (unsigned i = 0; i < ENGINE_MAX_NICS && r == 0; i++) {
		r = qemu_args_add(a, "-device");
		if (r == 0)
			r = qemu_args_addf(a, "pcie-root-port,id=nicport%u,chassis=%u", i, i + 1);
	}
	for (unsigned i = 0; i < spec->nr_nics && r == 0; i++) {
		r = qemu_args_add(a, "-netdev");
		if (r == 0)
			r = qemu_args_addf(a, "tap,id=net%u,fd=%d,vhost=off", i,
					   QEMU_NIC_FD_BASE + (int)i);
		if (r == 0)
			r = qemu_args_add(a, "-device");
		/* host_mtu (VIRTIO_NET_F_MTU, virtio 1.2 §5.1.3) tells the guest
		 * driver the network's MTU, so jumbo networks need no DHCP
		 * option to be used. */
		if (r == 0 && spec->nics[i].mtu)
			r = qemu_args_addf(a, "virtio-net-pci,id=nic%u,netdev=net%u,mac=%s,"
					   "bus=nicport%u,host_mtu=%u", i, i, spec->nics[i].mac, i,
					   spec->nics[i].mtu);
		else if (r == 0)
			r = qemu_args_addf(a, "virtio-net-pci,id=nic%u,netdev=net%u,mac=%s,"
					   "bus=nicport%u", i, i, spec->nics[i].mac, i);
	}
	return r;
}

static int qemu_args_add_firmware(struct qemu_args *a, const struct engine_vm_spec *spec,
				  const char *run)
{
	int r = 0;

	switch (spec->firmware) {
	case ENGINE_FW_BIOS:
		/* SeaBIOS reads etc/sercon-port as a little-endian integer; the
		 * file holds 0x3f8 (COM1). */
		r = qemu_args_add(a, "-fw_cfg");
		if (r == 0)
			r = qemu_args_addf(a, "name=etc/sercon-port,file=%s/%s", run,
					   QEMU_RUN_SERCON);
		break;
	case ENGINE_FW_UEFI:
		/* Code read-only and shared; variables per VM and writable. */
		r = qemu_args_add(a, "-drive");
		if (r == 0)
			r = qemu_args_addf(a, "if=pflash,unit=0,format=raw,readonly=on,file=%s",
					   QEMU_OVMF_CODE);
		if (r == 0)
			r = qemu_args_add(a, "-drive");
		if (r == 0)
			r = qemu_args_addf(a, "if=pflash,unit=1,format=raw,file=%s/%s", run,
					   QEMU_RUN_OVMF_VARS);
		break;
	case ENGINE_FW_KERNEL:
		/* -kernel/-initrd/-append take the whole value as a file name
		 * or string: no comma escaping there. */
		r = qemu_args_add(a, "-kernel");
		if (r == 0)
			r = qemu_args_add(a, spec->kernel);
		if (r == 0 && spec->initrd[0]) {
			r = qemu_args_add(a, "-initrd");
			if (r == 0)
				r = qemu_args_add(a, spec->initrd);
		}
		if (r == 0 && spec->cmdline[0]) {
			r = qemu_args_add(a, "-append");
			if (r == 0)
				r = qemu_args_add(a, spec->cmdline);
		}
		break;
	}
	return r;
}

int qemu_args_build(const char *binary, const struct engine_vm_spec *spec,
		    const struct engine_host_info *host, struct qemu_args **out, char **err)
{
	struct qemu_args *a = NULL;
	char *name = NULL, *run = NULL;
	bool kvm = strcmp(host->accel, "kvm") == 0;
	int r;

	r = qemu_args_check(spec, err);
	if (r < 0)
		goto out;
	r = -ENOMEM;
	name = qemu_args_escape(spec->name);
	run = qemu_args_escape(spec->run_dir);
	if (!name || !run || qemu_args_new(&a) < 0)
		goto out;

	r = qemu_args_add(a, binary);
	if (r == 0)
		r = qemu_args_add(a, "-S");
	/* A saved state arrives later over QMP (migrate-incoming on a file
	 * descriptor passed with getfd), because -sandbox spawn=deny rules
	 * out "exec:" and QEMU 7.2 has no "file:" migration URI. */
	if (r == 0 && spec->incoming[0]) {
		r = qemu_args_add(a, "-incoming");
		if (r == 0)
			r = qemu_args_add(a, "defer");
	}
	if (r == 0)
		r = qemu_args_add(a, "-no-user-config");
	if (r == 0)
		r = qemu_args_add(a, "-nodefaults");
	if (r == 0)
		r = qemu_args_add(a, "-name");
	if (r == 0)
		r = qemu_args_addf(a, "guest=%s,debug-threads=on", name);
	if (r == 0)
		r = qemu_args_add(a, "-uuid");
	if (r == 0)
		r = qemu_args_add(a, spec->uuid);
	if (r == 0)
		r = qemu_args_add(a, "-machine");
	if (r == 0)
		r = qemu_args_add(a, "q35");
	if (r == 0)
		r = qemu_args_add(a, "-accel");
	if (r == 0)
		r = qemu_args_add(a, kvm ? "kvm" : "tcg");
	/* "host" passes the real CPU through under KVM; TCG cannot, and "max"
	 * is every feature TCG emulates. */
	if (r == 0)
		r = qemu_args_add(a, "-cpu");
	if (r == 0)
		r = qemu_args_add(a, kvm ? "host" : "max");
	if (r == 0)
		r = qemu_args_add(a, "-smp");
	if (r == 0)
		r = qemu_args_addf(a, "%u", spec->vcpus);
	if (r == 0)
		r = qemu_args_add(a, "-m");
	if (r == 0)
		r = qemu_args_addf(a, "%lluM", (unsigned long long)spec->memory_mib);
	if (r == 0)
		r = qemu_args_add(a, "-sandbox");
	if (r == 0)
		r = qemu_args_add(a, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,"
				  "resourcecontrol=deny");
	if (r == 0)
		r = qemu_args_add(a, "-chardev");
	if (r == 0)
		r = qemu_args_addf(a, "socket,id=qmp,path=%s/%s,server=on,wait=off", run,
				   QEMU_RUN_QMP);
	if (r == 0)
		r = qemu_args_add(a, "-mon");
	if (r == 0)
		r = qemu_args_add(a, "chardev=qmp,mode=control");
	if (r == 0)
		r = qemu_args_add(a, "-chardev");
	if (r == 0)
		r = qemu_args_addf(a, "socket,id=serial0,path=%s/%s,server=on,wait=off", run,
				   QEMU_RUN_SERIAL);
	if (r == 0)
		r = qemu_args_add(a, "-serial");
	if (r == 0)
		r = qemu_args_add(a, "chardev:serial0");
	if (r == 0)
		r = qemu_args_add(a, "-display");
	if (r == 0)
		r = qemu_args_add(a, "none");
	if (r == 0)
		r = qemu_args_add(a, "-vnc");
	if (r == 0)
		r = qemu_args_addf(a, "unix:%s/%s", run, QEMU_RUN_VNC);
	if (r == 0)
		r = qemu_args_add(a, "-device");
	if (r == 0)
		r = qemu_args_add(a, "VGA,id=video0");
	/* -pidfile takes the whole value as a file name (no escaping). */
	if (r == 0)
		r = qemu_args_add(a, "-pidfile");
	if (r == 0)
		r = qemu_args_addf(a, "%s/%s", spec->run_dir, QEMU_RUN_PID);
	if (r == 0)
		r = qemu_args_add_firmware(a, spec, run);
	if (r == 0)
		r = qemu_args_add_disks(a, spec);
	if (r == 0)
		r = qemu_args_add_nics(a, spec);
	/* Guests need entropy early (key generation at first boot). */
	if (r == 0)
		r = qemu_args_add(a, "-device");
	if (r == 0)
		r = qemu_args_add(a, "virtio-rng-pci,id=rng0");
	/* pvpanic (ISA port 0x505, QEMU docs/specs/pvpanic.rst): a guest
	 * kernel panic reaches us as QMP GUEST_PANICKED, so the VM is marked
	 * crashed (and may be restarted) instead of looking like a poweroff. */
	if (r == 0)
		r = qemu_args_add(a, "-device");
	if (r == 0)
		r = qemu_args_add(a, "pvpanic,id=panic0");
	/* virtio-balloon (virtio 1.2 §5.5): query-balloon reports the memory
	 * the guest currently holds, which /metrics exports; without the
	 * device QMP has nothing to say. Deflate-on-OOM lets a guest under
	 * pressure take memory back before its OOM killer runs. */
	if (r == 0)
		r = qemu_args_add(a, "-device");
	if (r == 0)
		r = qemu_args_add(a, "virtio-balloon-pci,id=balloon0,deflate-on-oom=on");
	if (r < 0)
		goto out;
	*out = a;
	a = NULL;
out:
	qemu_args_free(a);
	free(name);
	free(run);
	return r;
}

bool qemu_args_cmdline_matches(const struct engine_vm_spec *spec, const char *buf, size_t len)
{
	char *name = qemu_args_escape(spec->name), *want = NULL;
	const char *prev = NULL, *base, *end = buf + len;
	bool has_name = false, has_uuid = false;

	if (!name || asprintf(&want, "guest=%s,debug-threads=on", name) < 0)
		want = NULL;
	free(name);
	/* /proc/PID/cmdline ends with a NUL; anything else is not an argv. */
	if (!want || len == 0 || buf[len - 1] != '\0')
		goto out;
	base = strrchr(buf, '/');
	base = base ? base + 1 : buf;
	if (strncmp(base, "qemu-system", 11) != 0)
		goto out;
	for (const char *a = buf; a < end; a += strlen(a) + 1) {
		if (prev && strcmp(prev, "-name") == 0 && strcmp(a, want) == 0)
			has_name = true;
		if (prev && strcmp(prev, "-uuid") == 0 && strcmp(a, spec->uuid) == 0)
			has_uuid = true;
		prev = a;
	}
out:
	free(want);
	return has_name && has_uuid;
}
