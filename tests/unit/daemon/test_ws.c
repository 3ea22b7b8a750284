/* Unit tests for src/lib/ws.c: handshake key (RFC 6455 §1.3 example), length
 * forms, masking, fragmentation, control frames, oversize and malformed
 * frames, and a client/server round trip over a socketpair. */
#include "lib/ws.h"

#include "lib/util.h"
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

TEST(accept_key_rfc_example)
{
	char out[WS_ACCEPT_LEN + 1];
	/* The example in RFC 6455 §1.3. */
	CHECK_EQ_INT(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
	CHECK_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	CHECK_EQ_INT(ws_accept_key("short", out), -EINVAL);
	CHECK_EQ_INT(ws_accept_key("dGhlIHNhbXBsZSBub25j!!==", out), -EINVAL);
	CHECK_EQ_INT(ws_accept_key(NULL, out), -EINVAL);
	char key[WS_KEY_LEN + 1];
	CHECK_EQ_INT(ws_client_key(key), 0);
	CHECK_EQ_INT(ws_accept_key(key, out), 0);
}

TEST(base64)
{
	char out[16];
	CHECK_EQ_INT(ws_base64_encode("", 0, out), 0);
	ws_base64_encode("f", 1, out);
	CHECK_STR(out, "Zg==");
	ws_base64_encode("fo", 2, out);
	CHECK_STR(out, "Zm8=");
	ws_base64_encode("foo", 3, out);
	CHECK_STR(out, "Zm9v");
	ws_base64_encode("foobar", 6, out);
	CHECK_STR(out, "Zm9vYmFy");
}

/* Build a frame (masked when mask != NULL) into out; returns its length. */
static size_t build_frame(uint8_t *out, bool fin, uint8_t op, const void *data, size_t len,
			  const uint8_t *mask)
{
	size_t h = ws_frame_header_encode(out, fin, op, len, mask);
	memcpy(out + h, data, len);
	if (mask)
		ws_mask(out + h, len, mask, 0);
	return h + len;
}

TEST(length_forms)
{
	uint8_t hdr[WS_MAX_HEADER];
	CHECK_EQ_INT(ws_frame_header_encode(hdr, true, WS_OP_BINARY, 125, NULL), 2);
	CHECK_EQ_INT(hdr[1], 125);
	CHECK_EQ_INT(ws_frame_header_encode(hdr, true, WS_OP_BINARY, 126, NULL), 4);
	CHECK_EQ_INT(hdr[1], 126);
	CHECK_EQ_INT(hdr[2] << 8 | hdr[3], 126);
	CHECK_EQ_INT(ws_frame_header_encode(hdr, true, WS_OP_BINARY, 65535, NULL), 4);
	CHECK_EQ_INT(ws_frame_header_encode(hdr, true, WS_OP_BINARY, 65536, NULL), 10);
	CHECK_EQ_INT(hdr[1], 127);
	CHECK_EQ_INT(hdr[7], 1);
	uint8_t mask[4] = {1, 2, 3, 4};
	CHECK_EQ_INT(ws_frame_header_encode(hdr, true, WS_OP_TEXT, 5, mask), 6);
	CHECK_EQ_INT(hdr[0], 0x81);
	CHECK_EQ_INT(hdr[1], 0x85);

	/* Decode each length form back, masked as a client sends. */
	size_t sizes[] = {0, 1, 125, 126, 1000, 65535, 65536, 200000};
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		size_t n = sizes[i];
		uint8_t *payload = malloc(n + 1);
		uint8_t *frame = malloc(n + WS_MAX_HEADER);
		for (size_t j = 0; j < n; j++)
			payload[j] = (uint8_t)(j * 7);
		size_t fl = build_frame(frame, true, WS_OP_BINARY, payload, n, mask);
		struct ws_decoder d;
		ws_decoder_init(&d, true, 1 << 20);
		struct ws_message m;
		size_t used;
		/* Every proper prefix asks for more bytes. */
		CHECK_EQ_INT(ws_decoder_feed(&d, frame, fl - 1, &used, &m), 0);
		CHECK_EQ_INT(used, 0);
		CHECK_EQ_INT(ws_decoder_feed(&d, frame, fl, &used, &m), 1);
		CHECK_EQ_INT(used, fl);
		CHECK_EQ_INT(m.opcode, WS_OP_BINARY);
		CHECK_EQ_INT(m.len, n);
		CHECK(n == 0 || memcmp(m.data, payload, n) == 0);
		ws_decoder_destroy(&d);
		free(payload);
		free(frame);
	}
}

TEST(mask_in_pieces)
{
	uint8_t mask[4] = {0xde, 0xad, 0xbe, 0xef};
	uint8_t a[10], b[10];
	for (int i = 0; i < 10; i++)
		a[i] = b[i] = (uint8_t)i;
	ws_mask(a, 10, mask, 0);
	ws_mask(b, 3, mask, 0);
	ws_mask(b + 3, 7, mask, 3);
	CHECK(memcmp(a, b, 10) == 0);
	CHECK_EQ_INT(a[0], 0xde);
	ws_mask(a, 10, mask, 0);
	CHECK_EQ_INT(a[9], 9);
}

TEST(masking_rules)
{
	uint8_t mask[4] = {9, 8, 7, 6};
	uint8_t f[64];
	struct ws_message m;
	size_t used;
	struct ws_decoder srv, cli;
	ws_decoder_init(&srv, true, 0);
	ws_decoder_init(&cli, false, 0);
	/* §5.1: a server refuses unmasked client frames... */
	size_t n = build_frame(f, true, WS_OP_TEXT, "hi", 2, NULL);
	CHECK_EQ_INT(ws_decoder_feed(&srv, f, n, &used, &m), -EPROTO);
	/* ...and a client refuses masked server frames. */
	n = build_frame(f, true, WS_OP_TEXT, "hi", 2, mask);
	CHECK_EQ_INT(ws_decoder_feed(&cli, f, n, &used, &m), -EPROTO);
	CHECK_EQ_INT(ws_decoder_feed(&srv, f, n, &used, &m), 1);
	CHECK_EQ_INT(m.len, 2);
	CHECK(memcmp(m.data, "hi", 2) == 0);
	ws_decoder_destroy(&srv);
	ws_decoder_destroy(&cli);
}

TEST(fragmentation_with_interleaved_control)
{
	uint8_t mask[4] = {1, 1, 2, 3};
	uint8_t buf[256];
	size_t n = 0;
	n += build_frame(buf + n, false, WS_OP_TEXT, "hel", 3, mask);
	n += build_frame(buf + n, true, WS_OP_PING, "p", 1, mask);
	n += build_frame(buf + n, false, WS_OP_CONT, "lo ", 3, mask);
	n += build_frame(buf + n, true, WS_OP_CONT, "world", 5, mask);
	struct ws_decoder d;
	ws_decoder_init(&d, true, 0);
	struct ws_message m;
	size_t used, off = 0;
	CHECK_EQ_INT(ws_decoder_feed(&d, buf + off, n - off, &used, &m), 0);
	CHECK(used > 0);
	off += used;
	/* §5.4: control frames may be injected in the middle of a message. */
	CHECK_EQ_INT(ws_decoder_feed(&d, buf + off, n - off, &used, &m), 1);
	CHECK_EQ_INT(m.opcode, WS_OP_PING);
	CHECK_EQ_INT(m.len, 1);
	off += used;
	CHECK_EQ_INT(ws_decoder_feed(&d, buf + off, n - off, &used, &m), 0);
	off += used;
	CHECK_EQ_INT(ws_decoder_feed(&d, buf + off, n - off, &used, &m), 1);
	off += used;
	CHECK_EQ_INT(off, n);
	CHECK_EQ_INT(m.opcode, WS_OP_TEXT);
	CHECK_EQ_INT(m.len, 11);
	CHECK(memcmp(m.data, "hello world", 11) == 0);
	ws_decoder_destroy(&d);
}

TEST(protocol_errors)
{
	uint8_t mask[4] = {5, 6, 7, 8};
	uint8_t f[512];
	uint8_t big[200];
	memset(big, 'x', sizeof(big));
	struct ws_message m;
	size_t used, n;
	struct ws_decoder d;

	ws_decoder_init(&d, true, 0);
	/* continuation without a started message */
	n = build_frame(f, true, WS_OP_CONT, "x", 1, mask);
	CHECK_EQ_INT(ws_decoder_feed(&d, f, n, &used, &m), -EPROTO);
	/* fragmented control frame */
	n = build_frame(f, false, WS_OP_PING, "x", 1, mask);
	CHECK_EQ_INT(ws_decoder_feed(&d, f, n, &used, &m), -EPROTO);
	/* control frame longer than 125 bytes */
	n = build_frame(f, true, WS_OP_PING, big, 126, mask);
	CHECK_EQ_INT(ws_decoder_feed(&d, f, n, &used, &m), -EPROTO);
	/* reserved bits set */
	n = build_frame(f, true, WS_OP_TEXT, "x", 1, mask);
	f[0] |= 0x40;
	CHECK_EQ_INT(ws_decoder_feed(&d, f, n, &used, &m), -EPROTO);
	/* unknown opcode 3 */
	n = build_frame(f, true, 3, "x", 1, mask);
	CHECK_EQ_INT(ws_decoder_feed(&d, f, n, &used, &m), -EPROTO);
	/* non-minimal 16-bit length */
	f[0] = 0x82;
	f[1] = 0x80 | 126;
	f[2] = 0;
	f[3] = 5;
	CHECK_EQ_INT(ws_decoder_feed(&d, f, 8, &used, &m), -EPROTO);
	/* a new data frame inside a fragmented message */
	n = build_frame(f, false, WS_OP_TEXT, "a", 1, mask);
	CHECK_EQ_INT(ws_decoder_feed(&d, f, n, &used, &m), 0);
	CHECK_EQ_INT(used, n);
	CHECK_EQ_INT(ws_decoder_feed(&d, f, n, &used, &m), -EPROTO);
	ws_decoder_destroy(&d);
}

TEST(oversize_rejected_from_header)
{
	struct ws_decoder d;
	ws_decoder_init(&d, true, 100);
	struct ws_message m;
	size_t used;
	uint8_t hdr[WS_MAX_HEADER];
	uint8_t mask[4] = {0};
	/* Only the header of a 2^40-byte frame: refused without the payload. */
	size_t h = ws_frame_header_encode(hdr, true, WS_OP_BINARY, 1ull << 40, mask);
	CHECK_EQ_INT(ws_decoder_feed(&d, hdr, h, &used, &m), -EMSGSIZE);
	h = ws_frame_header_encode(hdr, true, WS_OP_BINARY, 101, mask);
	CHECK_EQ_INT(ws_decoder_feed(&d, hdr, h, &used, &m), -EMSGSIZE);
	/* 64-bit length with the most significant bit set is invalid. */
	hdr[0] = 0x82;
	hdr[1] = 0x80 | 127;
	memset(hdr + 2, 0xff, 8);
	CHECK_EQ_INT(ws_decoder_feed(&d, hdr, 14, &used, &m), -EPROTO);
	ws_decoder_destroy(&d);

	/* Fragments that add up past the limit. */
	ws_decoder_init(&d, true, 100);
	uint8_t f[128], data[60];
	memset(data, 'a', sizeof(data));
	size_t n = build_frame(f, false, WS_OP_BINARY, data, 60, mask);
	CHECK_EQ_INT(ws_decoder_feed(&d, f, n, &used, &m), 0);
	n = build_frame(f, true, WS_OP_CONT, data, 60, mask);
	CHECK_EQ_INT(ws_decoder_feed(&d, f, n, &used, &m), -EMSGSIZE);
	ws_decoder_destroy(&d);
}

TEST(conn_roundtrip)
{
	int sv[2];
	CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct ws_conn *srv = NULL, *cli = NULL;
	CHECK_EQ_INT(ws_conn_new(sv[0], true, 0, &srv), 0);
	CHECK_EQ_INT(ws_conn_new(sv[1], false, 0, &cli), 0);
	struct ws_message m;

	/* client -> server: masked on the wire, unmasked on receipt */
	CHECK_EQ_INT(ws_conn_send(cli, WS_OP_TEXT, "ls\n", 3), 0);
	CHECK_EQ_INT(ws_conn_recv(srv, &m), 0);
	CHECK_EQ_INT(m.opcode, WS_OP_TEXT);
	CHECK_EQ_INT(m.len, 3);
	CHECK(memcmp(m.data, "ls\n", 3) == 0);

	/* a ping from the client is answered by the server's recv loop */
	CHECK_EQ_INT(ws_conn_send(cli, WS_OP_PING, "pp", 2), 0);
	CHECK_EQ_INT(ws_conn_send(cli, WS_OP_BINARY, "x", 1), 0);
	CHECK_EQ_INT(ws_conn_recv(srv, &m), 0);
	CHECK_EQ_INT(m.opcode, WS_OP_BINARY);

	/* server -> client: the pong comes first and is skipped */
	CHECK_EQ_INT(ws_conn_send(srv, WS_OP_BINARY, "out", 3), 0);
	CHECK_EQ_INT(ws_conn_recv(cli, &m), 0);
	CHECK_EQ_INT(m.len, 3);
	CHECK(memcmp(m.data, "out", 3) == 0);

	/* close handshake: the server echoes the close, both see -EPIPE */
	CHECK_EQ_INT(ws_conn_close(cli, WS_CLOSE_NORMAL, "bye"), 0);
	CHECK_EQ_INT(ws_conn_recv(srv, &m), -EPIPE);
	CHECK_EQ_INT(ws_conn_recv(cli, &m), -EPIPE);
	CHECK_EQ_INT(ws_conn_send(srv, WS_OP_BINARY, "late", 4), -EPIPE);

	/* an unmasked frame sent to the server is a protocol error */
	struct ws_conn *srv2 = NULL;
	CHECK_EQ_INT(ws_conn_new(sv[0], true, 0, &srv2), 0);
	uint8_t raw[] = {0x82, 0x01, 'z'};
	CHECK_EQ_INT(write(sv[1], raw, sizeof(raw)), 3);
	CHECK_EQ_INT(ws_conn_recv(srv2, &m), -EPROTO);
	uint8_t reply[4];
	CHECK_EQ_INT(read(sv[1], reply, sizeof(reply)), 4);
	CHECK_EQ_INT(reply[0], 0x88);
	CHECK_EQ_INT(reply[2] << 8 | reply[3], WS_CLOSE_PROTOCOL_ERROR);

	ws_conn_free(srv);
	ws_conn_free(srv2);
	ws_conn_free(cli);
	ws_conn_free(NULL);
	close(sv[0]);
	close(sv[1]);
}

/* xorshift: deterministic pseudo-random bytes so failures reproduce */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

TEST(random_messages_split_anywhere)
{
	/* Random fragmented messages with interleaved pings, fed to the
	 * decoder in random-sized pieces, come out intact. */
	uint8_t *wire = malloc(1 << 20), *msg = malloc(1 << 16);
	for (int round = 0; round < 200; round++) {
		size_t mlen = rng() % 5000, n = 0, off = 0;
		for (size_t i = 0; i < mlen; i++)
			msg[i] = (uint8_t)rng();
		while (off < mlen || off == 0) {
			size_t part = mlen - off ? 1 + rng() % (mlen - off) : 0;
			bool last = off + part == mlen;
			uint8_t mask[4] = {(uint8_t)rng(), (uint8_t)rng(), (uint8_t)rng(), (uint8_t)rng()};
			n += build_frame(wire + n, last, off == 0 ? WS_OP_BINARY : WS_OP_CONT, msg + off,
					 part, mask);
			if (rng() % 3 == 0)
				n += build_frame(wire + n, true, WS_OP_PING, "x", 1, mask);
			off += part;
			if (last)
				break;
		}
		struct ws_decoder d;
		ws_decoder_init(&d, true, 1 << 16);
		size_t have = 0, pos = 0;
		bool got = false;
		while (pos < n && !got) {
			have = MIN(n, have + 1 + rng() % 700);
			struct ws_message m;
			size_t used;
			int r = ws_decoder_feed(&d, wire + pos, have - pos, &used, &m);
			CHECK(r >= 0);
			if (r < 0)
				break;
			pos += used;
			if (r == 1 && m.opcode == WS_OP_BINARY) {
				CHECK_EQ_INT(m.len, mlen);
				CHECK(mlen == 0 || memcmp(m.data, msg, mlen) == 0);
				got = true;
			}
		}
		CHECK(got);
		ws_decoder_destroy(&d);
	}
	free(wire);
	free(msg);
}

TEST(random_garbage_never_crashes)
{
	/* Hostile input: random bytes (and random bit flips of valid frames)
	 * must give errors or messages, never a crash or an overread (ASan). */
	uint8_t buf[512];
	for (int round = 0; round < 20000; round++) {
		size_t n = 1 + rng() % sizeof(buf);
		if (round % 2) {
			uint8_t mask[4] = {1, 2, 3, 4};
			n = build_frame(buf, rng() % 2, (uint8_t)(rng() % 16), "payload", 7, mask);
			buf[rng() % n] ^= (uint8_t)(1u << (rng() % 8));
		} else {
			for (size_t i = 0; i < n; i++)
				buf[i] = (uint8_t)rng();
		}
		struct ws_decoder d;
		ws_decoder_init(&d, round % 4 != 0, 300);
		size_t pos = 0;
		for (int steps = 0; steps < 64 && pos < n; steps++) {
			struct ws_message m;
			size_t used;
			int r = ws_decoder_feed(&d, buf + pos, n - pos, &used, &m);
			CHECK(used <= n - pos);
			if (r < 0 || used == 0)
				break;
			if (r == 1)
				CHECK(m.len <= 300);
			pos += used;
		}
		ws_decoder_destroy(&d);
	}
}

HARNESS_MAIN
