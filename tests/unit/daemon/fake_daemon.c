/* fake_daemon: starts the daemon the API, metrics and web unit tests talk
 * to over HTTP: a temporary data directory, its own socket and a free TCP
 * port, with the engine test double instead of QEMU (no KVM, no root). */
#include "fake_daemon.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake_engine.h"

/* A port the kernel had free a moment ago: bind to port 0 and ask. */
static int fake_daemon_free_port(int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int r = 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
		r = -errno;
	else
		*port = ntohs(sa.sin_port);
	close(fd);
	return r;
}

int fake_daemon_start(struct daemon_config *cfg, const char *dir, struct daemon **out,
		      int *tcp_port)
{
	struct daemon *d = NULL;
	char *err = NULL;
	int r;

	snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%.200s/data", dir);
	snprintf(cfg->socket_path, sizeof(cfg->socket_path), "%.200s/s.sock", dir);
	if ((r = fake_daemon_free_port(tcp_port)) < 0)
		goto out;
	snprintf(cfg->listen, sizeof(cfg->listen), "127.0.0.1:%d", *tcp_port);
	cfg->http_threads = 2;
	if ((r = daemon_new(cfg, fake_engine(), &d, &err)) < 0)
		goto out;
	if ((r = daemon_start(d, &err)) < 0)
		goto out;
	*out = d;
	d = NULL;
out:
	if (err)
		fprintf(stderr, "  %s\n", err);
	free(err);
	if (d)
		daemon_free(d);
	return r;
}

int fake_daemon_connect(int tcp_port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)tcp_port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}
