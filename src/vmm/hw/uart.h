/* uart: a 16550A-compatible serial port (the PC's COM1: 8 registers at
 * 0x3f8, IRQ 4), enough for Linux's 8250 driver and early console: THR/RBR
 * with a receive buffer, IER/IIR interrupt identification, FIFO control,
 * LCR/divisor latch, MCR loopback (the driver's autoconfig test), LSR/MSR
 * and the scratch register. Transmitting is instant: THR is always empty. */
#ifndef VESSEL_VMM_HW_UART_H
#define VESSEL_VMM_HW_UART_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UART_RX_BUF 4096

struct uart {
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, msr_delta, scr, dll, dlm, fcr;
	bool thr_ipending;
	bool irq_level;
	uint8_t rx[UART_RX_BUF];
	size_t rx_head, rx_len;
	/* Where transmitted bytes go (called with the lock held; keep it
	 * short) and how the interrupt line is driven (level). */
	void (*tx)(void *opaque, const uint8_t *data, size_t len);
	void (*set_irq)(void *opaque, bool level);
	void *opaque;
	uint64_t tx_bytes, rx_bytes;
};

void uart_init(struct uart *u, void (*tx)(void *, const uint8_t *, size_t),
	       void (*set_irq)(void *, bool), void *opaque);
void uart_destroy(struct uart *u);

/* A guest access to register off (0..7), one byte. */
void uart_read(struct uart *u, unsigned off, uint8_t *val);
void uart_write(struct uart *u, unsigned off, uint8_t val);

/* Bytes typed on the console; returns how many fit in the receive buffer. */
size_t uart_receive(struct uart *u, const uint8_t *data, size_t len);

#endif
