/* ws: WebSocket (RFC 6455) opening handshake and framing, shared by vesseld
 * (server side of the console WebSocket) and the vessel CLI (client side).
 *
 * The decoder works on byte buffers so it can be tested without sockets;
 * ws_conn wraps it for a blocking file descriptor. Both sides use the same
 * code: a server requires masked frames from the client and sends unmasked
 * frames, a client does the opposite (RFC 6455 §5.1, §5.3). */
#ifndef VESSEL_LIB_WS_H
#define VESSEL_LIB_WS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 6455 §1.3: appended to Sec-WebSocket-Key before hashing. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* base64 of a 20-byte SHA-1 digest is 28 characters. */
#define WS_ACCEPT_LEN 28
/* A Sec-WebSocket-Key is base64 of 16 random bytes: 24 characters. */
#define WS_KEY_LEN 24
/* Largest frame header: 2 + 8 (64-bit length) + 4 (mask key). */
#define WS_MAX_HEADER 14
/* Default limit on one (reassembled) message. */
#define WS_DEFAULT_MAX_MESSAGE (1024 * 1024)

enum ws_opcode {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xA,
};

/* Close status codes (RFC 6455 §7.4.1). */
enum ws_close_code {
	WS_CLOSE_NORMAL = 1000,
	WS_CLOSE_GOING_AWAY = 1001,
	WS_CLOSE_PROTOCOL_ERROR = 1002,
	WS_CLOSE_TOO_BIG = 1009,
};

/* Standard base64 (RFC 4648 §4) with padding. out must hold
 * 4 * ((len + 2) / 3) + 1 bytes; returns the length written (without NUL). */
size_t ws_base64_encode(const void *in, size_t len, char *out);

/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (RFC 6455 §4.2.2):
 * base64(SHA-1(key + WS_GUID)). Returns -EINVAL when key is not 24 base64
 * characters (§4.1: the key is 16 bytes, base64-encoded). */
int ws_accept_key(const char *key, char out[WS_ACCEPT_LEN + 1]);

/* A fresh random Sec-WebSocket-Key for a client (16 random bytes). */
int ws_client_key(char out[WS_KEY_LEN + 1]);

/* Write a frame header into out (at least WS_MAX_HEADER bytes) using the
 * shortest length form (§5.2: 7-bit, 16-bit or 64-bit). mask NULL = no
 * mask. Returns the header length. */
size_t ws_frame_header_encode(uint8_t *out, bool fin, uint8_t opcode, uint64_t payload_len,
			      const uint8_t *mask);

/* XOR data with the 4-byte masking key (§5.3); `offset` is the position of
 * data[0] within the frame payload, so a payload can be masked in pieces. */
void ws_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset);

/* A complete message or control frame produced by the decoder. data is
 * owned by the decoder and valid until the next ws_decoder_feed(). */
struct ws_message {
	uint8_t opcode; /* WS_OP_TEXT, _BINARY, _CLOSE, _PING or _PONG */
	uint8_t *data;
	size_t len;
};

struct ws_decoder {
	bool server;        /* true: frames must be masked (we are the server) */
	size_t max_message; /* larger frames or reassembled messages: -EMSGSIZE */
	uint8_t *frag;      /* data message being reassembled (§5.4) */
	size_t frag_len, frag_cap;
	uint8_t frag_opcode;
	bool in_frag;
	uint8_t *ctl; /* the last control frame's payload (at most 125 bytes) */
	size_t ctl_cap;
};

void ws_decoder_init(struct ws_decoder *d, bool server, size_t max_message);
void ws_decoder_destroy(struct ws_decoder *d);

/* Consume at most one frame from buf[0..len). Returns:
 *   1 and fills *msg (sets *consumed) when a message or control frame is complete;
 *   0 and sets *consumed when a frame was consumed but no message is complete
 *     yet (a non-final fragment), or *consumed = 0 when more bytes are needed;
 *   -EPROTO for a protocol violation (reserved bits, unknown opcode, bad
 *     masking, fragmented or over-long control frame, continuation without
 *     a start, new data frame inside a fragmented message);
 *   -EMSGSIZE when the frame or the reassembled message exceeds max_message;
 *   -ENOMEM. */
int ws_decoder_feed(struct ws_decoder *d, const uint8_t *buf, size_t len, size_t *consumed,
		    struct ws_message *msg);

/* A WebSocket over a blocking stream fd. Reads from one thread and writes
 * from another are safe: writes are serialised by a lock. */
struct ws_conn {
	int fd;
	bool server;
	struct ws_decoder dec;
	uint8_t *rbuf;
	size_t rlen, rcap;
	pthread_mutex_t wlock;
	bool close_sent;
};

int ws_conn_new(int fd, bool server, size_t max_message, struct ws_conn **out);
/* Frees the connection; does not close fd. ws_conn_free(NULL) is a no-op. */
void ws_conn_free(struct ws_conn *c);

/* Send one unfragmented frame (masked with a random key on the client side). */
int ws_conn_send(struct ws_conn *c, uint8_t opcode, const void *data, size_t len);
/* Send a close frame with a status code and reason (once). */
int ws_conn_close(struct ws_conn *c, uint16_t code, const char *reason);

/* Block until the next data message. Pings are answered with pongs and
 * pongs ignored. Returns 0 with *msg filled (valid until the next call);
 * -EPIPE when the peer closed the connection or sent a close frame (a close
 * frame is answered); -EPROTO / -EMSGSIZE after sending the matching close
 * frame; or another negative errno from read(). */
int ws_conn_recv(struct ws_conn *c, struct ws_message *msg);

#endif
