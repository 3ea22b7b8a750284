/* vm: KVM setup and the vCPU run loop. The KVM calls and their order follow
 * the KVM API documentation (Documentation/virt/kvm/api.rst): the IRQCHIP
 * before any vCPU, KVM_SET_TSS_ADDR before the first KVM_RUN on Intel,
 * KVM_SET_GSI_ROUTING replacing the whole table (so it always carries the
 * default IOAPIC/PIC routes too), KVM_IRQFD and KVM_IOEVENTFD on eventfds. */
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "vmm/boot.h"
#include "vmm/cpuid.h"
#include "vmm/layout.h"

#define VM_KICK_SIGNAL SIGUSR1
#define VM_ROUTES_MAX 1024

/* MSRs (Intel SDM vol. 4) given a defined value at boot, as firmware would. */
#define MSR_IA32_TSC 0x10
#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102

#define X86_CR0_PE 0x1ull
#define X86_CR0_ET 0x10ull
#define X86_CR0_PG 0x80000000ull
#define X86_CR4_PAE 0x20ull
#define X86_EFER_LME 0x100ull
#define X86_EFER_LMA 0x400ull

/* LAPIC register offsets and LVT delivery modes (Intel SDM vol. 3 §11.5.1) */
#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

static const char *const vm_exit_names[] = {
	[KVM_EXIT_UNKNOWN] = "unknown", [KVM_EXIT_EXCEPTION] = "exception", [KVM_EXIT_IO] = "io",
	[KVM_EXIT_HYPERCALL] = "hypercall", [KVM_EXIT_DEBUG] = "debug", [KVM_EXIT_HLT] = "hlt",
	[KVM_EXIT_MMIO] = "mmio", [KVM_EXIT_IRQ_WINDOW_OPEN] = "irq_window_open",
	[KVM_EXIT_SHUTDOWN] = "shutdown", [KVM_EXIT_FAIL_ENTRY] = "fail_entry", [KVM_EXIT_INTR] = "intr",
	[KVM_EXIT_SET_TPR] = "set_tpr", [KVM_EXIT_TPR_ACCESS] = "tpr_access",
	[KVM_EXIT_NMI] = "nmi", [KVM_EXIT_INTERNAL_ERROR] = "internal_error",
	[KVM_EXIT_SYSTEM_EVENT] = "system_event",
};

const char *vm_exit_reason_name(unsigned reason)
{
	return reason < ARRAY_SIZE(vm_exit_names) ? vm_exit_names[reason] : NULL;
}

static void vm_kick_handler(int sig)
{
	(void)sig;
}

/* ---- interrupts ---- */

static void vm_irq_line(struct vm *vm, unsigned gsi, bool level)
{
	struct kvm_irq_level irq = {.irq = gsi, .level = level};
	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		log_ratelimited(LOG_LEVEL_WARN, "KVM_IRQ_LINE %u: %s", gsi, strerror(errno));
}

static void vm_uart_irq(void *opaque, bool level)
{
	vm_irq_line(opaque, LAYOUT_IRQ_COM1, level);
}

static void vm_sci_irq(void *opaque, bool level)
{
	vm_irq_line(opaque, LAYOUT_IRQ_SCI, level);
}

static void vm_uart_tx(void *opaque, const uint8_t *data, size_t len)
{
	struct vm *vm = opaque;
	if (vm->console_tx)
		vm->console_tx(vm->console_opaque, data, len);
}

/* The routing table starts as KVM's default after KVM_CREATE_IRQCHIP:
 * GSI 0-15 to the IOAPIC pin and the PIC, GSI 16-23 to the IOAPIC only. */
static int vm_routing_init(struct vm *vm)
{
	vm->routing = calloc(1, sizeof(*vm->routing) + VM_ROUTES_MAX * sizeof(struct kvm_irq_routing_entry));
	if (!vm->routing)
		return -ENOMEM;
	struct kvm_irq_routing_entry *e = vm->routing->entries;
	unsigned n = 0;
	for (unsigned gsi = 0; gsi < LAYOUT_IOAPIC_PINS; gsi++) {
		e[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = {.irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi}};
		if (gsi < 16)
			e[n++] = (struct kvm_irq_routing_entry){
				.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
				.u.irqchip = {.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
					      .pin = gsi % 8}};
	}
	vm->routing->nr = n;
	return 0;
}

/* Set (or add) the MSI route of gsi and push the table. routing_lock held. */
static int vm_routing_set_msi(struct vm *vm, unsigned gsi, uint64_t addr, uint32_t data)
{
	struct kvm_irq_routing_entry *e = NULL;
	for (unsigned i = 0; i < vm->routing->nr; i++)
		if (vm->routing->entries[i].gsi == gsi && vm->routing->entries[i].type == KVM_IRQ_ROUTING_MSI)
			e = &vm->routing->entries[i];
	if (!e) {
		if (vm->routing->nr >= VM_ROUTES_MAX)
			return -ENOSPC;
		e = &vm->routing->entries[vm->routing->nr++];
	}
	*e = (struct kvm_irq_routing_entry){.gsi = gsi, .type = KVM_IRQ_ROUTING_MSI};
	e->u.msi.address_lo = (uint32_t)addr;
	e->u.msi.address_hi = (uint32_t)(addr >> 32);
	e->u.msi.data = data;
	if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, vm->routing) < 0)
		return -errno;
	return 0;
}

static struct vm_virtio *vm_virtio_of(struct vm *vm, struct virtio_pci *vp)
{
	for (unsigned i = 0; i < vm->nr_virtio; i++)
		if (vm->virtio[i].vp == vp)
			return &vm->virtio[i];
	return NULL;
}

static int vm_msi_route(void *opaque, struct virtio_pci *vp, unsigned vector, uint64_t addr, uint32_t data)
{
	struct vm *vm = opaque;
	struct vm_virtio *vv = vm_virtio_of(vm, vp);
	if (!vv)
		return -ENOENT;
	pthread_mutex_lock(&vm->routing_lock);
	int ret = vm_routing_set_msi(vm, vv->gsi_base + vector, addr, data);
	pthread_mutex_unlock(&vm->routing_lock);
	return ret;
}

static void vm_msi_fire(void *opaque, struct virtio_pci *vp, unsigned vector)
{
	struct vm *vm = opaque;
	struct vm_virtio *vv = vm_virtio_of(vm, vp);
	uint64_t one = 1;
	if (!vv || vector > VIRTIO_MAX_QUEUES || vv->irqfds[vector] < 0)
		return;
	if (write(vv->irqfds[vector], &one, sizeof(one)) < 0)
		log_ratelimited(LOG_LEVEL_WARN, "irqfd write: %s", strerror(errno));
}

static int vm_notify_attach(void *opaque, struct virtio_pci *vp, unsigned q, uint64_t gpa)
{
	struct vm *vm = opaque;
	struct vm_virtio *vv = vm_virtio_of(vm, vp);
	if (!vv || q >= VIRTIO_MAX_QUEUES)
		return -ENOENT;
	struct vm_notifier *n = &vv->notifiers[q];
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* Linux writes the 16-bit queue index (§4.1.5.2); other widths
	 * still reach the transport as an MMIO exit. */
	struct kvm_ioeventfd io = {.addr = gpa, .len = 2, .fd = fd};
	if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0) {
		int ret = -errno;
		close(fd);
		return ret;
	}
	n->vm = vm;
	n->vp = vp;
	n->q = q;
	n->gpa = gpa;
	n->fd = fd;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = n};
	if (epoll_ctl(vm->io_epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int ret = -errno;
		io.flags = KVM_IOEVENTFD_FLAG_DEASSIGN;
		ioctl(vm->vm_fd, KVM_IOEVENTFD, &io);
		close(fd);
		n->fd = -1;
		return ret;
	}
	return 0;
}

static void vm_notify_detach(void *opaque, struct virtio_pci *vp, unsigned q)
{
	struct vm *vm = opaque;
	struct vm_virtio *vv = vm_virtio_of(vm, vp);
	if (!vv || q >= VIRTIO_MAX_QUEUES || vv->notifiers[q].fd < 0)
		return;
	struct vm_notifier *n = &vv->notifiers[q];
	struct kvm_ioeventfd io = {.addr = n->gpa, .len = 2, .fd = n->fd, .flags = KVM_IOEVENTFD_FLAG_DEASSIGN};
	ioctl(vm->vm_fd, KVM_IOEVENTFD, &io);
	epoll_ctl(vm->io_epfd, EPOLL_CTL_DEL, n->fd, NULL);
	close(n->fd);
	n->fd = -1;
}

static void *vm_io_thread(void *arg)
{
	struct vm *vm = arg;
	struct epoll_event evs[16];
	for (;;) {
		int n = epoll_wait(vm->io_epfd, evs, ARRAY_SIZE(evs), -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("I/O thread: epoll_wait: %s", strerror(errno));
			vm_request_exit(vm, VM_EXIT_ERROR);
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			struct vm_notifier *nt = evs[i].data.ptr;
			uint64_t cnt;
			int fd = __atomic_load_n(&nt->fd, __ATOMIC_ACQUIRE);
			if (fd < 0 || read(fd, &cnt, sizeof(cnt)) < 0)
				continue;
			virtio_pci_queue_notify(nt->vp, nt->q);
		}
	}
	return NULL;
}

int vm_add_virtio(struct vm *vm, struct virtio_dev *dev, const char *name)
{
	if (vm->nr_virtio == VM_MAX_VIRTIO)
		return -ENOSPC;
	struct vm_virtio *vv = &vm->virtio[vm->nr_virtio];
	memset(vv, 0, sizeof(*vv));
	for (unsigned i = 0; i < ARRAY_SIZE(vv->irqfds); i++)
		vv->irqfds[i] = -1;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vv->notifiers[i].fd = -1;
	dev->mem = &vm->mem;
	struct virtio_pci_platform plat = {
		.opaque = vm,
		.msi_route = vm_msi_route,
		.msi_fire = vm_msi_fire,
		.notify_attach = vm_notify_attach,
		.notify_detach = vm_notify_detach,
	};
	int ret = virtio_pci_new(dev, &plat, &vv->vp);
	if (ret < 0)
		return ret;
	vv->dev = dev;
	vv->name = name;
	vv->gsi_base = vm->next_gsi;
	ret = pci_bus_add(&vm->pci, &vv->vp->pci);
	if (ret < 0)
		goto fail;
	vm->nr_virtio++;
	/* One GSI with an MSI route and an irqfd per vector; the route is
	 * rewritten when the guest programs the MSI-X table. */
	pthread_mutex_lock(&vm->routing_lock);
	for (unsigned v = 0; v < vv->vp->msix_nr && ret == 0; v++)
		ret = vm_routing_set_msi(vm, vv->gsi_base + v, 0, 0);
	pthread_mutex_unlock(&vm->routing_lock);
	for (unsigned v = 0; v < vv->vp->msix_nr && ret == 0; v++) {
		vv->irqfds[v] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		struct kvm_irqfd irqfd = {.fd = (uint32_t)vv->irqfds[v], .gsi = vv->gsi_base + v};
		if (vv->irqfds[v] < 0 || ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0)
			ret = -errno;
	}
	vm->next_gsi += vv->vp->msix_nr;
	if (ret < 0)
		log_error("virtio %s: cannot set up MSI-X routing: %s", name, strerror(-ret));
	return ret;
fail:
	virtio_pci_free(vv->vp);
	vv->vp = NULL;
	return ret;
}

/* ---- port I/O and MMIO dispatch ---- */

static void vm_handle_event(struct vm *vm, enum legacy_event ev)
{
	if (ev == LEGACY_EVENT_RESET) {
		log_info("guest requested a reset");
		vm_request_exit(vm, VM_EXIT_REBOOT);
	} else if (ev == LEGACY_EVENT_POWEROFF) {
		log_info("guest powered off");
		vm_request_exit(vm, VM_EXIT_POWEROFF);
	}
}

static void vm_pio(struct vm *vm, uint16_t port, uint8_t *data, unsigned len, bool is_write)
{
	struct vm_stats *st = &vm->stats;
	if (port >= LAYOUT_PORT_COM1 && port < LAYOUT_PORT_COM1 + 8) {
		__atomic_add_fetch(&st->pio_uart, 1, __ATOMIC_RELAXED);
		for (unsigned i = 0; i < len && port + i < LAYOUT_PORT_COM1 + 8; i++) {
			if (is_write)
				uart_write(&vm->uart, port + i - LAYOUT_PORT_COM1, data[i]);
			else
				uart_read(&vm->uart, port + i - LAYOUT_PORT_COM1, &data[i]);
		}
		return;
	}
	if ((port == LAYOUT_PORT_I8042_DATA || port == LAYOUT_PORT_I8042_CMD) && len == 1) {
		__atomic_add_fetch(&st->pio_i8042, 1, __ATOMIC_RELAXED);
		vm_handle_event(vm, i8042_io(port, data, is_write));
		return;
	}
	if ((port == LAYOUT_PORT_RTC || port == LAYOUT_PORT_RTC + 1) && len == 1) {
		__atomic_add_fetch(&st->pio_rtc, 1, __ATOMIC_RELAXED);
		rtc_io(&vm->rtc, port, data, is_write);
		return;
	}
	if (port == LAYOUT_PORT_RESET && len == 1) {
		vm_handle_event(vm, resetcr_io(data, is_write));
		return;
	}
	if (port >= LAYOUT_PORT_PM1A_EVT && port < LAYOUT_PORT_PM1A_EVT + 12) {
		__atomic_add_fetch(&st->pio_pm, 1, __ATOMIC_RELAXED);
		vm_handle_event(vm, acpi_pm_io(&vm->pm, port - LAYOUT_PORT_PM1A_EVT, data, len, is_write));
		return;
	}
	if (pci_bus_pio(&vm->pci, port, data, len, is_write)) {
		__atomic_add_fetch(&st->pio_pci, 1, __ATOMIC_RELAXED);
		return;
	}
	/* Nothing here: reads float high, writes vanish, as on a PC bus. */
	__atomic_add_fetch(&st->pio_other, 1, __ATOMIC_RELAXED);
	if (!is_write)
		memset(data, 0xff, len);
}

static void vm_mmio(struct vm *vm, uint64_t gpa, uint8_t *data, unsigned len, bool is_write)
{
	if (len > 8)
		return;
	if (pci_bus_mmio(&vm->pci, gpa, data, len, is_write)) {
		__atomic_add_fetch(&vm->stats.mmio_pci, 1, __ATOMIC_RELAXED);
		return;
	}
	__atomic_add_fetch(&vm->stats.mmio_other, 1, __ATOMIC_RELAXED);
	log_ratelimited(LOG_LEVEL_DEBUG, "unhandled MMIO %s at 0x%llx", is_write ? "write" : "read",
			(unsigned long long)gpa);
	if (!is_write)
		memset(data, 0xff, len);
}

/* ---- run state ---- */

void vm_request_exit(struct vm *vm, int code)
{
	pthread_mutex_lock(&vm->state_lock);
	if (vm->exit_code < 0) {
		vm->exit_code = code;
		uint64_t one = 1;
		if (write(vm->exit_efd, &one, sizeof(one)) < 0)
			log_error("exit eventfd: %s", strerror(errno));
	}
	pthread_cond_broadcast(&vm->state_cond);
	pthread_mutex_unlock(&vm->state_lock);
	for (unsigned i = 0; i < vm->nr_cpus; i++) {
		struct vm_vcpu *c = &vm->vcpus[i];
		if (!c->thread_started || pthread_equal(c->thread, pthread_self()))
			continue;
		__atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		pthread_kill(c->thread, VM_KICK_SIGNAL);
	}
}

static void vm_kick_all(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_cpus; i++) {
		struct vm_vcpu *c = &vm->vcpus[i];
		if (!c->thread_started)
			continue;
		__atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		pthread_kill(c->thread, VM_KICK_SIGNAL);
	}
}

int vm_pause(struct vm *vm)
{
	pthread_mutex_lock(&vm->state_lock);
	vm->pause_requested = true;
	pthread_mutex_unlock(&vm->state_lock);
	vm_kick_all(vm);
	pthread_mutex_lock(&vm->state_lock);
	while (vm->nr_paused < vm->nr_cpus && vm->exit_code < 0)
		pthread_cond_wait(&vm->state_cond, &vm->state_lock);
	pthread_mutex_unlock(&vm->state_lock);
	return 0;
}

int vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->state_lock);
	vm->pause_requested = false;
	pthread_cond_broadcast(&vm->state_cond);
	pthread_mutex_unlock(&vm->state_lock);
	return 0;
}

bool vm_is_paused(struct vm *vm)
{
	pthread_mutex_lock(&vm->state_lock);
	bool p = vm->pause_requested;
	pthread_mutex_unlock(&vm->state_lock);
	return p;
}

/* Returns false when the thread must stop. */
static bool vm_vcpu_checkpoint(struct vm_vcpu *c)
{
	struct vm *vm = c->vm;
	bool go;
	__atomic_store_n(&c->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&vm->state_lock);
	if (vm->pause_requested && vm->exit_code < 0) {
		vm->nr_paused++;
		pthread_cond_broadcast(&vm->state_cond);
		while (vm->pause_requested && vm->exit_code < 0)
			pthread_cond_wait(&vm->state_cond, &vm->state_lock);
		vm->nr_paused--;
	}
	go = vm->exit_code < 0;
	pthread_mutex_unlock(&vm->state_lock);
	return go;
}

static void *vm_vcpu_thread(void *arg)
{
	struct vm_vcpu *c = arg;
	struct vm *vm = c->vm;
	struct kvm_run *run = c->run;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, VM_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	while (vm_vcpu_checkpoint(c)) {
		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			log_error("vCPU %u: KVM_RUN failed: %s", c->id, strerror(errno));
			vm_request_exit(vm, VM_EXIT_ERROR);
			break;
		}
		if (run->exit_reason < VM_EXIT_REASONS)
			__atomic_add_fetch(&vm->stats.exits[run->exit_reason], 1, __ATOMIC_RELAXED);
		switch (run->exit_reason) {
		case KVM_EXIT_IO: {
			uint8_t *p = (uint8_t *)run + run->io.data_offset;
			if (run->io.size > 4 ||
			    run->io.data_offset + (uint64_t)run->io.size * run->io.count > c->run_size)
				break;
			for (uint32_t i = 0; i < run->io.count; i++, p += run->io.size)
				vm_pio(vm, run->io.port, p, run->io.size, run->io.direction == KVM_EXIT_IO_OUT);
			break;
		}
		case KVM_EXIT_MMIO:
			vm_mmio(vm, run->mmio.phys_addr, run->mmio.data, run->mmio.len, run->mmio.is_write);
			break;
		case KVM_EXIT_HLT:
		case KVM_EXIT_INTR:
		case KVM_EXIT_IRQ_WINDOW_OPEN:
			break;
		case KVM_EXIT_SHUTDOWN:
			/* A triple fault: what a PC does then is reset. */
			log_info("vCPU %u: triple fault; treating it as a reset", c->id);
			vm_request_exit(vm, VM_EXIT_REBOOT);
			break;
		case KVM_EXIT_SYSTEM_EVENT:
			if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
				vm_request_exit(vm, VM_EXIT_POWEROFF);
			else if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
				vm_request_exit(vm, VM_EXIT_REBOOT);
			else
				vm_request_exit(vm, VM_EXIT_ERROR);
			break;
		case KVM_EXIT_FAIL_ENTRY:
			log_error("vCPU %u: VM entry failed (hardware reason 0x%llx); the guest cannot run",
				  c->id, (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			vm_request_exit(vm, VM_EXIT_ERROR);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			log_error("vCPU %u: KVM internal error, suberror %u", c->id, run->internal.suberror);
			vm_request_exit(vm, VM_EXIT_ERROR);
			break;
		default:
			log_error("vCPU %u: unexpected exit reason %u", c->id, run->exit_reason);
			vm_request_exit(vm, VM_EXIT_ERROR);
			break;
		}
	}
	return NULL;
}

/* ---- vCPU setup ---- */

static int vm_vcpu_set_cpuid(struct vm *vm, struct vm_vcpu *c)
{
	int ret = 0;
	unsigned max = 256;
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + max * sizeof(struct kvm_cpuid_entry2));
	if (!cpuid)
		return -ENOMEM;
	cpuid->nent = max;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
		ret = -errno;
		goto out;
	}
	cpuid_setup(cpuid->entries, cpuid->nent, c->id, vm->nr_cpus);
	if (ioctl(c->fd, KVM_SET_CPUID2, cpuid) < 0)
		ret = -errno;
out:
	free(cpuid);
	return ret;
}

static int vm_vcpu_set_msrs(struct vm_vcpu *c)
{
	static const struct {
		uint32_t index;
		uint64_t data;
	} msrs[] = {
		{MSR_IA32_SYSENTER_CS, 0}, {MSR_IA32_SYSENTER_ESP, 0}, {MSR_IA32_SYSENTER_EIP, 0},
		{MSR_STAR, 0}, {MSR_CSTAR, 0}, {MSR_KERNEL_GS_BASE, 0}, {MSR_SYSCALL_MASK, 0},
		{MSR_LSTAR, 0}, {MSR_IA32_TSC, 0},
		/* fast string operations on, as firmware leaves it */
		{MSR_IA32_MISC_ENABLE, 1},
		/* MTRRs enabled, default type write-back */
		{MSR_MTRR_DEF_TYPE, (1u << 11) | 6},
	};
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[ARRAY_SIZE(msrs)];
	} buf;
	memset(&buf, 0, sizeof(buf));
	buf.hdr.nmsrs = ARRAY_SIZE(msrs);
	for (unsigned i = 0; i < ARRAY_SIZE(msrs); i++) {
		buf.e[i].index = msrs[i].index;
		buf.e[i].data = msrs[i].data;
	}
	int n = ioctl(c->fd, KVM_SET_MSRS, &buf);
	if (n < 0)
		return -errno;
	if ((unsigned)n != ARRAY_SIZE(msrs))
		log_warn("vCPU %u: KVM accepted only %d of %zu boot MSRs", c->id, n, ARRAY_SIZE(msrs));
	return 0;
}

static int vm_vcpu_set_lapic(struct vm_vcpu *c)
{
	struct kvm_lapic_state lapic;
	if (ioctl(c->fd, KVM_GET_LAPIC, &lapic) < 0)
		return -errno;
	/* LINT0 as ExtINT (the 8259 path), LINT1 as NMI: the virtual wire
	 * mode firmware sets up (MP spec §3.6.2.2). */
	uint32_t *lvt0 = (uint32_t *)(lapic.regs + APIC_LVT0);
	uint32_t *lvt1 = (uint32_t *)(lapic.regs + APIC_LVT1);
	*lvt0 = (*lvt0 & ~0x700u) | (APIC_MODE_EXTINT << 8);
	*lvt1 = (*lvt1 & ~0x700u) | (APIC_MODE_NMI << 8);
	if (ioctl(c->fd, KVM_SET_LAPIC, &lapic) < 0)
		return -errno;
	return 0;
}

static int vm_vcpu_set_boot_state(struct vm_vcpu *c, uint64_t entry)
{
	struct kvm_sregs sregs;
	if (ioctl(c->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	/* 64-bit boot protocol (boot.rst): long mode with paging, flat
	 * __BOOT_CS/__BOOT_DS, interrupts off, rsi = zero page. */
	struct kvm_segment code = {
		.base = 0, .limit = 0xfffff, .selector = BOOT_GDT_CODE_SEL, .type = 0xb,
		.present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
	};
	struct kvm_segment data = code;
	data.selector = BOOT_GDT_DATA_SEL;
	data.type = 0x3;
	data.db = 1;
	data.l = 0;
	struct kvm_segment tss = code;
	tss.selector = BOOT_GDT_TSS_SEL;
	tss.type = 0xb;
	tss.s = 0;
	tss.l = 0;
	sregs.cs = code;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.tr = tss;
	sregs.gdt.base = LAYOUT_GDT_ADDR;
	sregs.gdt.limit = 5 * 8 - 1;
	sregs.idt.base = LAYOUT_IDT_ADDR;
	sregs.idt.limit = 7;
	sregs.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_PG;
	sregs.cr3 = LAYOUT_PML4_ADDR;
	sregs.cr4 = X86_CR4_PAE;
	sregs.efer = X86_EFER_LME | X86_EFER_LMA;
	if (ioctl(c->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	struct kvm_regs regs;
	memset(&regs, 0, sizeof(regs));
	regs.rflags = 0x2;
	regs.rip = entry;
	regs.rsp = regs.rbp = LAYOUT_BOOT_STACK;
	regs.rsi = LAYOUT_ZERO_PAGE_ADDR;
	if (ioctl(c->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}

static int vm_vcpu_create(struct vm *vm, unsigned id)
{
	struct vm_vcpu *c = &vm->vcpus[id];
	c->vm = vm;
	c->id = id;
	c->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (c->fd < 0)
		return -errno;
	int sz = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz < (int)sizeof(struct kvm_run))
		return -EINVAL;
	c->run_size = (size_t)sz;
	c->run = mmap(NULL, c->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (c->run == MAP_FAILED) {
		c->run = NULL;
		return -errno;
	}
	int ret = vm_vcpu_set_cpuid(vm, c);
	if (ret == 0)
		ret = vm_vcpu_set_msrs(c);
	if (ret == 0) {
		struct kvm_fpu fpu;
		memset(&fpu, 0, sizeof(fpu));
		fpu.fcw = 0x37f;    /* x87 default control word */
		fpu.mxcsr = 0x1f80; /* SSE exceptions masked */
		if (ioctl(c->fd, KVM_SET_FPU, &fpu) < 0)
			ret = -errno;
	}
	if (ret == 0)
		ret = vm_vcpu_set_lapic(c);
	return ret;
}

/* ---- VM ---- */

static int vm_map_ram(struct vm *vm, unsigned slot, uint64_t gpa, uint64_t size, uint8_t **hva)
{
	/* 2 MiB-aligned and marked for transparent huge pages, as QEMU does:
	 * the guest then takes one fault per 2 MiB instead of per 4 KiB,
	 * which matters most when KVM itself runs nested. */
	const uint64_t align = 2 * MiB;
	uint8_t *raw = mmap(NULL, size + align, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		return -errno;
	uint8_t *p = (uint8_t *)ALIGN_UP((uintptr_t)raw, (uintptr_t)align);
	if (p > raw)
		munmap(raw, (size_t)(p - raw));
	if (raw + size + align > p + size)
		munmap(p + size, (size_t)(raw + size + align - (p + size)));
	if (madvise(p, size, MADV_HUGEPAGE) < 0)
		log_debug("guest RAM: no transparent huge pages: %s", strerror(errno));
	*hva = p;
	struct kvm_userspace_memory_region r = {
		.slot = slot, .guest_phys_addr = gpa, .memory_size = size, .userspace_addr = (uintptr_t)p,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return -errno;
	return guest_mem_add_region(&vm->mem, gpa, size, p);
}

int vm_new(unsigned nr_cpus, uint64_t mem_size, struct vm **out)
{
	int ret;
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->kvm_fd = vm->vm_fd = vm->io_epfd = vm->exit_efd = -1;
	vm->nr_cpus = nr_cpus;
	vm->mem_size = mem_size;
	vm->exit_code = -1;
	vm->next_gsi = LAYOUT_GSI_MSI_BASE;
	vm->start_ns = util_now_ns();
	pthread_mutex_init(&vm->state_lock, NULL);
	pthread_cond_init(&vm->state_cond, NULL);
	pthread_mutex_init(&vm->routing_lock, NULL);

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		ret = -errno;
		log_error("cannot open /dev/kvm: %s; vessel-vmm needs KVM (load kvm_intel or kvm_amd, "
			  "and give this user access to /dev/kvm)", strerror(errno));
		goto fail;
	}
	if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		ret = -ENOTSUP;
		log_error("/dev/kvm speaks an unexpected API version; a Linux kernel with KVM API 12 is needed");
		goto fail;
	}
	static const struct {
		int cap;
		const char *name;
	} caps[] = {
		{KVM_CAP_IRQCHIP, "IRQCHIP"}, {KVM_CAP_PIT2, "PIT2"}, {KVM_CAP_IRQFD, "IRQFD"},
		{KVM_CAP_IOEVENTFD, "IOEVENTFD"}, {KVM_CAP_IRQ_ROUTING, "IRQ_ROUTING"},
		{KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT"}, {KVM_CAP_EXT_CPUID, "EXT_CPUID"},
	};
	for (unsigned i = 0; i < ARRAY_SIZE(caps); i++) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, caps[i].cap) <= 0) {
			ret = -ENOTSUP;
			log_error("KVM lacks the %s capability; use a newer host kernel", caps[i].name);
			goto fail;
		}
	}
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		ret = -errno;
		log_error("KVM_CREATE_VM: %s", strerror(errno));
		goto fail;
	}
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_TSS_ADDR) < 0) {
		ret = -errno;
		log_error("KVM_SET_TSS_ADDR: %s", strerror(errno));
		goto fail;
	}
	uint64_t idmap = LAYOUT_IDENTITY_MAP_ADDR;
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		log_debug("KVM_SET_IDENTITY_MAP_ADDR: %s (not needed on this host)", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		ret = -errno;
		log_error("KVM_CREATE_IRQCHIP: %s", strerror(errno));
		goto fail;
	}
	struct kvm_pit_config pit = {.flags = 0};
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		ret = -errno;
		log_error("KVM_CREATE_PIT2: %s", strerror(errno));
		goto fail;
	}
	ret = vm_routing_init(vm);
	if (ret < 0)
		goto fail;

	boot_ram_split(mem_size, &vm->ram_low_size, &vm->ram_high_size);
	ret = vm_map_ram(vm, 0, 0, vm->ram_low_size, &vm->ram_low);
	if (ret == 0 && vm->ram_high_size)
		ret = vm_map_ram(vm, 1, LAYOUT_HIGH_RAM_START, vm->ram_high_size, &vm->ram_high);
	if (ret < 0) {
		log_error("cannot map %llu MiB of guest RAM: %s", (unsigned long long)(mem_size / MiB),
			  strerror(-ret));
		goto fail;
	}

	ret = pci_bus_init(&vm->pci, LAYOUT_PCI_MMIO_START, LAYOUT_PCI_MMIO_END);
	if (ret < 0)
		goto fail;
	uart_init(&vm->uart, vm_uart_tx, vm_uart_irq, vm);
	rtc_init(&vm->rtc);
	acpi_pm_init(&vm->pm, vm_sci_irq, vm);

	vm->io_epfd = epoll_create1(EPOLL_CLOEXEC);
	vm->exit_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (vm->io_epfd < 0 || vm->exit_efd < 0) {
		ret = -errno;
		goto fail;
	}
	for (unsigned i = 0; i < nr_cpus; i++) {
		ret = vm_vcpu_create(vm, i);
		if (ret < 0) {
			log_error("cannot create vCPU %u: %s", i, strerror(-ret));
			goto fail;
		}
	}
	*out = vm;
	return 0;
fail:
	vm_free(vm);
	return ret;
}

/* Map a kernel or initrd file read-only. Mapping instead of reading saves
 * one copy of a large initrd on the way into guest RAM. */
static int vm_map_file(const char *path, const char *what, uint8_t **data, size_t *len)
{
	int ret = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		log_error("%s '%s': %s; check the path", what, path, strerror(errno));
		return ret;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
		ret = -EINVAL;
		log_error("%s '%s': not a regular non-empty file", what, path);
		goto out;
	}
	*len = (size_t)st.st_size;
	void *p = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		ret = -errno;
		log_error("%s '%s': cannot map it: %s", what, path, strerror(errno));
		goto out;
	}
	*data = p;
out:
	close(fd);
	return ret;
}

int vm_load(struct vm *vm, const char *kernel, const char *initrd, const char *cmdline)
{
	uint8_t *k = NULL, *i = NULL;
	size_t klen = 0, ilen = 0;
	int ret = vm_map_file(kernel, "kernel", &k, &klen);
	if (ret < 0)
		goto out;
	if (initrd) {
		ret = vm_map_file(initrd, "initrd", &i, &ilen);
		if (ret < 0)
			goto out;
	}
	uint8_t *acpi = guest_mem_ptr(&vm->mem, LAYOUT_ACPI_ADDR, LAYOUT_ACPI_MAX);
	size_t acpi_len;
	uint64_t rsdp;
	ret = acpi ? acpi_build(acpi, LAYOUT_ACPI_MAX, LAYOUT_ACPI_ADDR, vm->nr_cpus, &acpi_len, &rsdp) : -E2BIG;
	if (ret < 0) {
		log_error("cannot build ACPI tables: %s", strerror(-ret));
		goto out;
	}
	struct boot_config cfg = {
		.mem_size = vm->mem_size, .kernel = k, .kernel_len = klen, .initrd = i, .initrd_len = ilen,
		.cmdline = cmdline, .rsdp_gpa = rsdp,
	};
	struct boot_info info;
	ret = boot_load(&vm->mem, &cfg, &info);
	if (ret < 0)
		goto out;
	vm->boot_entry = info.entry;
	log_info("kernel %s loaded (%s, entry 0x%llx)%s", kernel,
		 info.kind == BOOT_KERNEL_ELF ? "vmlinux" : "bzImage", (unsigned long long)info.entry,
		 initrd ? ", initrd placed" : "");
out:
	if (k)
		munmap(k, klen);
	if (i)
		munmap(i, ilen);
	return ret;
}

int vm_start(struct vm *vm)
{
	int ret = vm_vcpu_set_boot_state(&vm->vcpus[0], vm->boot_entry);
	if (ret < 0) {
		log_error("cannot set the boot CPU state: %s", strerror(-ret));
		return ret;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = vm_kick_handler;
	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: KVM_RUN must return EINTR on a kick */
	sigaction(VM_KICK_SIGNAL, &sa, NULL);

	ret = -pthread_create(&vm->io_thread, NULL, vm_io_thread, vm);
	if (ret < 0)
		return ret;
	vm->io_thread_started = true;
	for (unsigned i = 0; i < vm->nr_cpus; i++) {
		ret = -pthread_create(&vm->vcpus[i].thread, NULL, vm_vcpu_thread, &vm->vcpus[i]);
		if (ret < 0) {
			log_error("cannot start vCPU thread %u: %s", i, strerror(-ret));
			vm_request_exit(vm, VM_EXIT_ERROR);
			return ret;
		}
		vm->vcpus[i].thread_started = true;
	}
	return 0;
}

void vm_free(struct vm *vm)
{
	if (!vm)
		return;
	/* Called at exit only after vm_request_exit(): vCPU threads leave on
	 * their own; join them so nothing runs while we unmap. */
	for (unsigned i = 0; i < vm->nr_cpus; i++) {
		struct vm_vcpu *c = &vm->vcpus[i];
		if (c->thread_started)
			pthread_join(c->thread, NULL);
		if (c->run)
			munmap(c->run, c->run_size);
		if (c->fd > 0)
			close(c->fd);
	}
	if (vm->io_epfd >= 0)
		close(vm->io_epfd);
	if (vm->exit_efd >= 0)
		close(vm->exit_efd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->ram_low)
		munmap(vm->ram_low, vm->ram_low_size);
	if (vm->ram_high)
		munmap(vm->ram_high, vm->ram_high_size);
	free(vm->routing);
	free(vm);
}
