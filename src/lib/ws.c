/* ws: WebSocket (RFC 6455) handshake key, frame encoding and a decoder that
 * reassembles fragmented messages, plus a small blocking connection wrapper.
 * Section numbers below refer to RFC 6455. */
#include "lib/ws.h"

#include <errno.h>
#include <nettle/sha1.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "lib/util.h"

static const char ws_b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t ws_base64_encode(const void *in, size_t len, char *out)
{
	const uint8_t *p = in;
	size_t o = 0;
	size_t i = 0;
	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = ws_b64_alphabet[(v >> 18) & 63];
		out[o++] = ws_b64_alphabet[(v >> 12) & 63];
		out[o++] = ws_b64_alphabet[(v >> 6) & 63];
		out[o++] = ws_b64_alphabet[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		out[o++] = ws_b64_alphabet[(v >> 18) & 63];
		out[o++] = ws_b64_alphabet[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		out[o++] = ws_b64_alphabet[(v >> 18) & 63];
		out[o++] = ws_b64_alphabet[(v >> 12) & 63];
		out[o++] = ws_b64_alphabet[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

static bool ws_is_b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

int ws_accept_key(const char *key, char out[WS_ACCEPT_LEN + 1])
{
	/* §4.2.1 item 5: a base64-encoded 16-byte value, i.e. 22 characters
	 * and "==" padding. */
	if (!key || strlen(key) != WS_KEY_LEN || key[22] != '=' || key[23] != '=')
		return -EINVAL;
	for (int i = 0; i < 22; i++)
		if (!ws_is_b64_char(key[i]))
			return -EINVAL;
	struct sha1_ctx ctx;
	uint8_t digest[SHA1_DIGEST_SIZE];
	sha1_init(&ctx);
	sha1_update(&ctx, WS_KEY_LEN, (const uint8_t *)key);
	sha1_update(&ctx, strlen(WS_GUID), (const uint8_t *)WS_GUID);
	sha1_digest(&ctx, sizeof(digest), digest);
	ws_base64_encode(digest, sizeof(digest), out);
	return 0;
}

int ws_client_key(char out[WS_KEY_LEN + 1])
{
	uint8_t raw[16];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return -EIO;
	ws_base64_encode(raw, sizeof(raw), out);
	return 0;
}

size_t ws_frame_header_encode(uint8_t *out, bool fin, uint8_t opcode, uint64_t payload_len,
			      const uint8_t *mask)
{
	size_t n = 0;
	out[n++] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
	uint8_t mbit = mask ? 0x80 : 0;
	/* §5.2: 0..125 in the 7-bit field, 126 = 16-bit length follows,
	 * 127 = 64-bit length follows (most significant bit 0). */
	if (payload_len <= 125) {
		out[n++] = mbit | (uint8_t)payload_len;
	} else if (payload_len <= 0xffff) {
		out[n++] = mbit | 126;
		out[n++] = (uint8_t)(payload_len >> 8);
		out[n++] = (uint8_t)payload_len;
	} else {
		out[n++] = mbit | 127;
		for (int i = 7; i >= 0; i--)
			out[n++] = (uint8_t)(payload_len >> (8 * i));
	}
	if (mask) {
		memcpy(out + n, mask, 4);
		n += 4;
	}
	return n;
}

void ws_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset)
{
	for (size_t i = 0; i < len; i++)
		data[i] ^= mask[(offset + i) & 3];
}

void ws_decoder_init(struct ws_decoder *d, bool server, size_t max_message)
{
	memset(d, 0, sizeof(*d));
	d->server = server;
	d->max_message = max_message ? max_message : WS_DEFAULT_MAX_MESSAGE;
}

void ws_decoder_destroy(struct ws_decoder *d)
{
	free(d->frag);
	free(d->ctl);
	memset(d, 0, sizeof(*d));
}

static int ws_buf_reserve(uint8_t **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : 256;
	while (ncap < need)
		ncap *= 2;
	uint8_t *nb = realloc(*buf, ncap);
	if (!nb)
		return -ENOMEM;
	*buf = nb;
	*cap = ncap;
	return 0;
}

int ws_decoder_feed(struct ws_decoder *d, const uint8_t *buf, size_t len, size_t *consumed,
		    struct ws_message *msg)
{
	*consumed = 0;
	if (len < 2)
		return 0;
	bool fin = buf[0] & 0x80;
	uint8_t rsv = buf[0] & 0x70;
	uint8_t opcode = buf[0] & 0x0f;
	bool masked = buf[1] & 0x80;
	uint64_t plen = buf[1] & 0x7f;
	size_t hlen = 2;

	/* §5.2: RSV1-3 must be 0 unless an extension was negotiated (we
	 * negotiate none). */
	if (rsv)
		return -EPROTO;
	bool control = opcode & 0x08;
	if (opcode != WS_OP_CONT && opcode != WS_OP_TEXT && opcode != WS_OP_BINARY &&
	    opcode != WS_OP_CLOSE && opcode != WS_OP_PING && opcode != WS_OP_PONG)
		return -EPROTO;
	/* §5.1: client-to-server frames are masked, server-to-client not. */
	if (masked != d->server)
		return -EPROTO;
	/* §5.5: control frames have at most 125 bytes and are not fragmented. */
	if (control && (!fin || plen > 125))
		return -EPROTO;

	if (plen == 126) {
		if (len < 4)
			return 0;
		plen = (uint64_t)buf[2] << 8 | buf[3];
		hlen = 4;
		/* §5.2: the minimal number of bytes must be used. */
		if (plen < 126)
			return -EPROTO;
	} else if (plen == 127) {
		if (len < 10)
			return 0;
		plen = 0;
		for (int i = 0; i < 8; i++)
			plen = plen << 8 | buf[2 + i];
		hlen = 10;
		if (plen >> 63 || plen <= 0xffff)
			return -EPROTO;
	}
	/* Refuse oversize frames from the header alone, before buffering. */
	if (plen > d->max_message)
		return -EMSGSIZE;
	const uint8_t *mask = NULL;
	if (masked) {
		if (len < hlen + 4)
			return 0;
		mask = buf + hlen;
		hlen += 4;
	}
	if (len - hlen < plen)
		return 0;
	const uint8_t *payload = buf + hlen;
	size_t n = (size_t)plen;

	if (control) {
		int r = ws_buf_reserve(&d->ctl, &d->ctl_cap, n + 1);
		if (r < 0)
			return r;
		memcpy(d->ctl, payload, n);
		if (mask)
			ws_mask(d->ctl, n, mask, 0);
		*consumed = hlen + n;
		msg->opcode = opcode;
		msg->data = d->ctl;
		msg->len = n;
		return 1;
	}

	/* §5.4: a fragmented message is a first frame with its opcode and
	 * FIN clear, then continuation frames, the last with FIN set. */
	if (opcode == WS_OP_CONT) {
		if (!d->in_frag)
			return -EPROTO;
	} else {
		if (d->in_frag)
			return -EPROTO;
		d->in_frag = true;
		d->frag_opcode = opcode;
		d->frag_len = 0;
	}
	if (d->frag_len + n > d->max_message)
		return -EMSGSIZE;
	int r = ws_buf_reserve(&d->frag, &d->frag_cap, d->frag_len + n + 1);
	if (r < 0)
		return r;
	memcpy(d->frag + d->frag_len, payload, n);
	if (mask)
		ws_mask(d->frag + d->frag_len, n, mask, 0);
	d->frag_len += n;
	*consumed = hlen + n;
	if (!fin)
		return 0;
	d->in_frag = false;
	msg->opcode = d->frag_opcode;
	msg->data = d->frag;
	msg->len = d->frag_len;
	return 1;
}

int ws_conn_new(int fd, bool server, size_t max_message, struct ws_conn **out)
{
	struct ws_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = fd;
	c->server = server;
	ws_decoder_init(&c->dec, server, max_message);
	pthread_mutex_init(&c->wlock, NULL);
	*out = c;
	return 0;
}

void ws_conn_free(struct ws_conn *c)
{
	if (!c)
		return;
	ws_decoder_destroy(&c->dec);
	free(c->rbuf);
	pthread_mutex_destroy(&c->wlock);
	free(c);
}

int ws_conn_send(struct ws_conn *c, uint8_t opcode, const void *data, size_t len)
{
	uint8_t hdr[WS_MAX_HEADER];
	uint8_t key[4];
	uint8_t *masked = NULL;
	int r = 0;

	pthread_mutex_lock(&c->wlock);
	if (c->close_sent) {
		r = -EPIPE;
		goto out;
	}
	if (!c->server) {
		/* §5.3: a fresh unpredictable key for every client frame. */
		if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key)) {
			r = -EIO;
			goto out;
		}
		masked = malloc(len ? len : 1);
		if (!masked) {
			r = -ENOMEM;
			goto out;
		}
		if (len)
			memcpy(masked, data, len);
		ws_mask(masked, len, key, 0);
		data = masked;
	}
	size_t hlen = ws_frame_header_encode(hdr, true, opcode, len, c->server ? NULL : key);
	r = util_write_all(c->fd, hdr, hlen);
	if (r == 0 && len)
		r = util_write_all(c->fd, data, len);
	if (r == 0 && opcode == WS_OP_CLOSE)
		c->close_sent = true;
out:
	pthread_mutex_unlock(&c->wlock);
	free(masked);
	return r;
}

int ws_conn_close(struct ws_conn *c, uint16_t code, const char *reason)
{
	uint8_t payload[125];
	size_t rl = reason ? strlen(reason) : 0;
	if (rl > sizeof(payload) - 2)
		rl = sizeof(payload) - 2;
	payload[0] = (uint8_t)(code >> 8);
	payload[1] = (uint8_t)code;
	if (rl)
		memcpy(payload + 2, reason, rl);
	return ws_conn_send(c, WS_OP_CLOSE, payload, rl + 2);
}

int ws_conn_recv(struct ws_conn *c, struct ws_message *msg)
{
	for (;;) {
		size_t used = 0;
		int r = ws_decoder_feed(&c->dec, c->rbuf, c->rlen, &used, msg);
		if (used) {
			memmove(c->rbuf, c->rbuf + used, c->rlen - used);
			c->rlen -= used;
		}
		if (r == -EPROTO) {
			ws_conn_close(c, WS_CLOSE_PROTOCOL_ERROR, "protocol error");
			return r;
		}
		if (r == -EMSGSIZE) {
			ws_conn_close(c, WS_CLOSE_TOO_BIG, "message too big");
			return r;
		}
		if (r < 0)
			return r;
		if (r == 1) {
			switch (msg->opcode) {
			case WS_OP_PING:
				/* §5.5.3: answer with a pong carrying the same data. */
				ws_conn_send(c, WS_OP_PONG, msg->data, msg->len);
				continue;
			case WS_OP_PONG:
				continue;
			case WS_OP_CLOSE:
				/* §5.5.1: echo the status code back, then close. */
				if (msg->len >= 2)
					ws_conn_close(c, (uint16_t)(msg->data[0] << 8 | msg->data[1]), NULL);
				else
					ws_conn_close(c, WS_CLOSE_NORMAL, NULL);
				return -EPIPE;
			default:
				return 0;
			}
		}
		if (used)
			continue;
		/* Need more bytes. The decoder refuses a frame longer than
		 * max_message from its header, so the buffer stays bounded. */
		if (c->rlen == c->rcap) {
			size_t ncap = c->rcap ? c->rcap * 2 : 8192;
			uint8_t *nb = realloc(c->rbuf, ncap);
			if (!nb)
				return -ENOMEM;
			c->rbuf = nb;
			c->rcap = ncap;
		}
		ssize_t n = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EPIPE;
		c->rlen += (size_t)n;
	}
}
