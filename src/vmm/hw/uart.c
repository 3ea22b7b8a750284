/* uart: 16550A register semantics as in the National Semiconductor PC16550D
 * datasheet (register table, "Interrupt Identification Register" priorities).
 * The guest drives every register, so no value it writes can make this code
 * misbehave: the receive ring is bounded and registers are plain bytes. */
#include "vmm/hw/uart.h"

#include <string.h>

#include "lib/util.h"

#define UART_RBR_THR 0
#define UART_IER 1
#define UART_IIR_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define UART_LCR_DLAB 0x80
#define UART_IER_RDI 0x01
#define UART_IER_THRI 0x02
#define UART_IER_MSI 0x08
#define UART_IIR_NO_INT 0x01
#define UART_IIR_THRI 0x02
#define UART_IIR_RDI 0x04
#define UART_IIR_MSI 0x00
#define UART_IIR_FIFO 0xc0
#define UART_FCR_ENABLE 0x01
#define UART_FCR_CLEAR_RCVR 0x02
#define UART_LSR_DR 0x01
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40
#define UART_MCR_DTR 0x01
#define UART_MCR_RTS 0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10
#define UART_MSR_CTS 0x10
#define UART_MSR_DSR 0x20
#define UART_MSR_RI 0x40
#define UART_MSR_DCD 0x80

void uart_init(struct uart *u, void (*tx)(void *, const uint8_t *, size_t),
	       void (*set_irq)(void *, bool), void *opaque)
{
	memset(u, 0, sizeof(*u));
	pthread_mutex_init(&u->lock, NULL);
	u->tx = tx;
	u->set_irq = set_irq;
	u->opaque = opaque;
	u->dll = 12; /* 9600 baud, the reset value firmware leaves */
	u->lcr = 0x03;
}

void uart_destroy(struct uart *u)
{
	pthread_mutex_destroy(&u->lock);
}

static uint8_t uart_iir(const struct uart *u)
{
	uint8_t fifo = (u->fcr & UART_FCR_ENABLE) ? UART_IIR_FIFO : 0;
	if ((u->ier & UART_IER_RDI) && u->rx_len)
		return fifo | UART_IIR_RDI;
	if ((u->ier & UART_IER_THRI) && u->thr_ipending)
		return fifo | UART_IIR_THRI;
	if ((u->ier & UART_IER_MSI) && u->msr_delta)
		return fifo | UART_IIR_MSI;
	return fifo | UART_IIR_NO_INT;
}

/* Drive the line from the interrupt state; an edge-triggered IOAPIC pin
 * sees a rising edge each time a new condition appears after the driver
 * has read IIR. Lock held. */
static void uart_update_irq(struct uart *u)
{
	bool level = !(uart_iir(u) & UART_IIR_NO_INT);
	if (level != u->irq_level) {
		u->irq_level = level;
		if (u->set_irq)
			u->set_irq(u->opaque, level);
	}
}

static uint8_t uart_msr(const struct uart *u)
{
	if (u->mcr & UART_MCR_LOOP) {
		/* Loopback wires the modem outputs to the inputs. */
		uint8_t m = 0;
		if (u->mcr & UART_MCR_RTS)
			m |= UART_MSR_CTS;
		if (u->mcr & UART_MCR_DTR)
			m |= UART_MSR_DSR;
		if (u->mcr & UART_MCR_OUT1)
			m |= UART_MSR_RI;
		if (u->mcr & UART_MCR_OUT2)
			m |= UART_MSR_DCD;
		return m;
	}
	return UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
}

static void uart_rx_push(struct uart *u, uint8_t c)
{
	if (u->rx_len == UART_RX_BUF)
		return;
	u->rx[(u->rx_head + u->rx_len) % UART_RX_BUF] = c;
	u->rx_len++;
}

void uart_read(struct uart *u, unsigned off, uint8_t *val)
{
	pthread_mutex_lock(&u->lock);
	switch (off) {
	case UART_RBR_THR:
		if (u->lcr & UART_LCR_DLAB) {
			*val = u->dll;
		} else if (u->rx_len) {
			*val = u->rx[u->rx_head];
			u->rx_head = (u->rx_head + 1) % UART_RX_BUF;
			u->rx_len--;
		} else {
			*val = 0;
		}
		break;
	case UART_IER:
		*val = (u->lcr & UART_LCR_DLAB) ? u->dlm : u->ier;
		break;
	case UART_IIR_FCR:
		*val = uart_iir(u);
		/* Reading IIR while it reports THRE clears that interrupt. */
		if ((*val & 0x0f) == UART_IIR_THRI)
			u->thr_ipending = false;
		break;
	case UART_LCR: *val = u->lcr; break;
	case UART_MCR: *val = u->mcr; break;
	case UART_LSR:
		*val = UART_LSR_THRE | UART_LSR_TEMT | (u->rx_len ? UART_LSR_DR : 0);
		break;
	case UART_MSR:
		*val = uart_msr(u) | u->msr_delta;
		u->msr_delta = 0;
		break;
	case UART_SCR: *val = u->scr; break;
	default: *val = 0xff; break;
	}
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

void uart_write(struct uart *u, unsigned off, uint8_t val)
{
	pthread_mutex_lock(&u->lock);
	switch (off) {
	case UART_RBR_THR:
		if (u->lcr & UART_LCR_DLAB) {
			u->dll = val;
			break;
		}
		if (u->mcr & UART_MCR_LOOP) {
			uart_rx_push(u, val);
		} else {
			u->tx_bytes++;
			if (u->tx)
				u->tx(u->opaque, &val, 1);
		}
		u->thr_ipending = true;
		break;
	case UART_IER:
		if (u->lcr & UART_LCR_DLAB) {
			u->dlm = val;
			break;
		}
		/* Enabling THRI with THR empty raises it at once. */
		if (!(u->ier & UART_IER_THRI) && (val & UART_IER_THRI))
			u->thr_ipending = true;
		u->ier = val & 0x0f;
		break;
	case UART_IIR_FCR:
		u->fcr = val & 0xc9;
		if (val & UART_FCR_CLEAR_RCVR)
			u->rx_len = 0;
		break;
	case UART_LCR: u->lcr = val; break;
	case UART_MCR: u->mcr = val & 0x1f; break;
	case UART_SCR: u->scr = val; break;
	default: break; /* LSR and MSR are read-only */
	}
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

size_t uart_receive(struct uart *u, const uint8_t *data, size_t len)
{
	pthread_mutex_lock(&u->lock);
	size_t n = MIN(len, UART_RX_BUF - u->rx_len);
	for (size_t i = 0; i < n; i++)
		uart_rx_push(u, data[i]);
	u->rx_bytes += n;
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}
