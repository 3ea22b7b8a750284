/* fake_daemon: the fixture the daemon tests share (see .c). */
#ifndef VESSEL_TESTS_FAKE_DAEMON_H
#define VESSEL_TESTS_FAKE_DAEMON_H

#include "daemon/daemon.h"

/* Start a vesseld core on the engine test double (fake_engine.c): data in
 * dir/data, the Unix socket dir/s.sock, a free loopback TCP port (in
 * *tcp_port) and 2 HTTP threads; the other fields of cfg stay as the test
 * set them. 0 and *out, or the -errno of daemon_new/daemon_start (their
 * message printed to stderr). */
int fake_daemon_start(struct daemon_config *cfg, const char *dir, struct daemon **out,
		      int *tcp_port);

/* A TCP connection to the daemon on 127.0.0.1:tcp_port: the fd, or -1. */
int fake_daemon_connect(int tcp_port);

#endif
