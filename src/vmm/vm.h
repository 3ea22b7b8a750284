/* vm: the KVM virtual machine of vessel-vmm. Creates the VM (in-kernel
 * IRQCHIP and PIT, TSS and identity-map pages), maps guest RAM around the
 * 32-bit PCI hole, creates vCPUs with their CPUID, MSRs and the 64-bit boot
 * state, and runs one thread per vCPU that dispatches port I/O and MMIO exits
 * to the devices (UART, i8042, RTC, ACPI PM, PCI). Virtio-pci devices get
 * MSI-X through KVM_SET_GSI_ROUTING + KVM_IRQFD and queue notifications
 * through KVM_IOEVENTFD, served by one I/O thread. */
#ifndef VESSEL_VMM_VM_H
#define VESSEL_VMM_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "vmm/acpi.h"
#include "vmm/hw/legacy.h"
#include "vmm/hw/uart.h"
#include "vmm/mem.h"
#include "vmm/pci.h"
#include "vmm/virtio/pci.h"

/* Process exit codes (also documented in --help). */
#define VM_EXIT_POWEROFF 0
#define VM_EXIT_REBOOT 1
#define VM_EXIT_ERROR 2

#define VM_MAX_VIRTIO 16
#define VM_EXIT_REASONS 64

struct vm;

struct vm_vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool thread_started;
};

/* One queue notifier: an ioeventfd the I/O thread waits on. */
struct vm_notifier {
	struct vm *vm;
	struct virtio_pci *vp;
	unsigned q;
	int fd;
	uint64_t gpa;
};

struct vm_virtio {
	struct virtio_pci *vp;
	struct virtio_dev *dev;
	const char *name;
	unsigned gsi_base;
	int irqfds[VIRTIO_MAX_QUEUES + 1];
	struct vm_notifier notifiers[VIRTIO_MAX_QUEUES];
};

struct vm_stats {
	uint64_t exits[VM_EXIT_REASONS];
	uint64_t pio_uart, pio_pci, pio_rtc, pio_pm, pio_i8042, pio_other;
	uint64_t mmio_pci, mmio_other;
};

struct vm {
	int kvm_fd, vm_fd;
	unsigned nr_cpus;
	uint64_t mem_size;
	struct guest_mem mem;
	uint8_t *ram_low, *ram_high;
	uint64_t ram_low_size, ram_high_size;
	uint64_t boot_entry;
	struct vm_vcpu vcpus[ACPI_MAX_CPUS];

	struct pci_bus pci;
	struct uart uart;
	struct rtc rtc;
	struct acpi_pm pm;

	struct vm_virtio virtio[VM_MAX_VIRTIO];
	unsigned nr_virtio;
	unsigned next_gsi;
	pthread_mutex_t routing_lock;
	struct kvm_irq_routing *routing;   /* IOAPIC/PIC defaults + MSI routes */

	int io_epfd;
	pthread_t io_thread;
	bool io_thread_started;

	/* run state: guarded by state_lock */
	pthread_mutex_t state_lock;
	pthread_cond_t state_cond;
	bool pause_requested;
	unsigned nr_paused;
	int exit_code;                     /* -1 while running */
	int exit_efd;                      /* readable once exit_code is set */
	uint64_t start_ns;

	struct vm_stats stats;

	/* where the UART's output goes */
	void (*console_tx)(void *opaque, const uint8_t *data, size_t len);
	void *console_opaque;
};

/* Create the VM with mem_size bytes of RAM and nr_cpus vCPUs. Returns 0 or
 * a negative errno after logging what went wrong (e.g. no /dev/kvm). */
int vm_new(unsigned nr_cpus, uint64_t mem_size, struct vm **out);
void vm_free(struct vm *vm);

/* Put a virtio device on the PCI bus (before vm_start). name is for stats. */
int vm_add_virtio(struct vm *vm, struct virtio_dev *dev, const char *name);

/* Write ACPI tables and load the kernel/initrd/cmdline (files on disk). */
int vm_load(struct vm *vm, const char *kernel, const char *initrd, const char *cmdline);

/* Set up the vCPUs and start their threads and the I/O thread. */
int vm_start(struct vm *vm);

/* Ask the VM to stop with this exit code; the first request wins. */
void vm_request_exit(struct vm *vm, int code);
/* Pause all vCPUs (returns once all are out of KVM_RUN) / resume them. */
int vm_pause(struct vm *vm);
int vm_resume(struct vm *vm);
bool vm_is_paused(struct vm *vm);

/* Name of a KVM exit reason for stats (NULL when unknown). */
const char *vm_exit_reason_name(unsigned reason);

#endif
