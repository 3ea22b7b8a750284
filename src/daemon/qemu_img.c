/* qemu_img: child-process runner for qemu-img with progress parsing, the
 * JSON of `qemu-img info`, and file hashing with nettle's SHA-256. */
#include "daemon/qemu_img.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <nettle/sha2.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

bool qemu_img_parse_progress(const char *buf, size_t len, double *pct)
{
	/* qemu-img -p prints "    (12.34/100%)\r" repeatedly; take the last
	 * complete one. */
	bool found = false;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '(')
			continue;
		size_t j = i + 1;
		double v = 0, frac = 0.1;
		bool digits = false, dot = false;
		for (; j < len; j++) {
			char c = buf[j];
			if (c >= '0' && c <= '9') {
				digits = true;
				if (dot) {
					v += (c - '0') * frac;
					frac /= 10;
				} else {
					v = v * 10 + (c - '0');
				}
			} else if (c == '.' && !dot) {
				dot = true;
			} else {
				break;
			}
		}
		if (digits && len - j >= 6 && memcmp(buf + j, "/100%)", 6) == 0 && v <= 100.0) {
			*pct = v;
			found = true;
		}
	}
	return found;
}

/* Append to a growing buffer, keeping at most `keep` bytes (the tail). */
static void qemu_img_buf_append(char **buf, size_t *len, const char *data, size_t n, size_t keep)
{
	char *nb = realloc(*buf, *len + n + 1);
	if (!nb)
		return;
	memcpy(nb + *len, data, n);
	*len += n;
	nb[*len] = '\0';
	if (*len > keep) {
		memmove(nb, nb + *len - keep, keep + 1);
		*len = keep;
	}
	*buf = nb;
}

int qemu_img_run(const char *bin, const char *const *args, qemu_img_progress_fn *progress,
		 void *opaque, char **out_stdout, char **err)
{
	int outp[2] = {-1, -1}, errp[2] = {-1, -1};
	char *obuf = NULL, *ebuf = NULL;
	size_t olen = 0, elen = 0;
	int r = 0, last_pct = -1;
	const char *argv[32];
	size_t argc = 0;

	argv[argc++] = bin;
	for (size_t i = 0; args[i] && argc < ARRAY_SIZE(argv) - 1; i++)
		argv[argc++] = args[i];
	argv[argc] = NULL;

	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		r = -errno;
		asprintf(err, "cannot create pipes for qemu-img: %s", strerror(-r));
		goto out;
	}
	pid_t pid = fork();
	if (pid < 0) {
		r = -errno;
		asprintf(err, "cannot start qemu-img: %s", strerror(-r));
		goto out;
	}
	if (pid == 0) {
		/* vesseld blocks SIGTERM/SIGINT in every thread and ignores
		 * SIGPIPE; exec keeps both, so give qemu-img the defaults. */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(outp[1], 1);
		dup2(errp[1], 2);
		execvp(bin, (char *const *)argv);
		dprintf(2, "cannot run %s: %s", bin, strerror(errno));
		_exit(127);
	}
	close(outp[1]);
	close(errp[1]);
	outp[1] = errp[1] = -1;

	struct pollfd pfd[2] = {{.fd = outp[0], .events = POLLIN}, {.fd = errp[0], .events = POLLIN}};
	int open_fds = 2;
	while (open_fds) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char chunk[4096];
			ssize_t n = read(pfd[i].fd, chunk, sizeof(chunk));
			if (n <= 0) {
				pfd[i].fd = -1;
				open_fds--;
				continue;
			}
			if (i == 0) {
				double pct;
				if (progress && qemu_img_parse_progress(chunk, (size_t)n, &pct) &&
				    (int)pct != last_pct) {
					last_pct = (int)pct;
					progress(opaque, last_pct);
				}
				qemu_img_buf_append(&obuf, &olen, chunk, (size_t)n,
						    out_stdout ? 1024 * 1024 : 4096);
			} else {
				qemu_img_buf_append(&ebuf, &elen, chunk, (size_t)n, 4096);
			}
		}
	}
	int status = 0;
	pid_t w;
	while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (w < 0) {
		/* someone else reaped it (waitpid(-1) or SIGCHLD ignored) */
		r = -errno;
		asprintf(err, "qemu-img %s: its exit status was lost (%s), so vesseld cannot tell "
			      "whether it worked; retry", args[0], strerror(-r));
		goto out;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		/* qemu-img's message ends in a newline; trim it for the sentence. */
		while (elen && (ebuf[elen - 1] == '\n' || ebuf[elen - 1] == '\r'))
			ebuf[--elen] = '\0';
		if (WIFSIGNALED(status))
			asprintf(err, "qemu-img %s was killed by signal %d", args[0], WTERMSIG(status));
		else
			asprintf(err, "qemu-img %s failed: %s", args[0],
				 elen ? ebuf : "no error text (exit status non-zero)");
		r = -EIO;
		goto out;
	}
	if (out_stdout) {
		*out_stdout = obuf ? obuf : strdup("");
		obuf = NULL;
	}
out:
	for (int i = 0; i < 2; i++) {
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	free(obuf);
	free(ebuf);
	return r;
}

int qemu_img_info_parse(const char *text, struct qemu_img_info *out)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	int r = 0;
	memset(out, 0, sizeof(*out));
	if (!json_is_object(j)) {
		r = -EINVAL;
		goto out;
	}
	json_t *fmt = json_object_get(j, "format");
	json_t *vs = json_object_get(j, "virtual-size");
	json_t *as = json_object_get(j, "actual-size");
	json_t *bf = json_object_get(j, "backing-filename");
	if (!json_is_string(fmt) || !json_is_integer(vs) || json_integer_value(vs) < 0) {
		r = -EINVAL;
		goto out;
	}
	snprintf(out->format, sizeof(out->format), "%s", json_string_value(fmt));
	out->virtual_size = (uint64_t)json_integer_value(vs);
	if (json_is_integer(as) && json_integer_value(as) >= 0)
		out->actual_size = (uint64_t)json_integer_value(as);
	if (json_is_string(bf))
		snprintf(out->backing, sizeof(out->backing), "%s", json_string_value(bf));
out:
	json_decref(j);
	return r;
}

int qemu_img_info(const char *bin, const char *path, const char *format,
		  struct qemu_img_info *out, char **err)
{
	char *text = NULL;
	const char *args[8];
	size_t n = 0;
	args[n++] = "info";
	args[n++] = "--output=json";
	if (format) {
		args[n++] = "-f";
		args[n++] = format;
	}
	args[n++] = path;
	args[n] = NULL;
	int r = qemu_img_run(bin, args, NULL, NULL, &text, err);
	if (r < 0)
		return r;
	r = qemu_img_info_parse(text, out);
	if (r < 0)
		asprintf(err, "qemu-img info printed output vesseld cannot read for %s", path);
	free(text);
	return r;
}

int qemu_img_sha256(const char *path, char hex[65])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct sha256_ctx ctx;
	sha256_init(&ctx);
	size_t cap = 1024 * 1024;
	uint8_t *buf = malloc(cap);
	int r = 0;
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf, cap);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		sha256_update(&ctx, (size_t)n, buf);
	}
	uint8_t d[SHA256_DIGEST_SIZE];
	sha256_digest(&ctx, sizeof(d), d);
	for (size_t i = 0; i < sizeof(d); i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
out:
	free(buf);
	close(fd);
	return r;
}
