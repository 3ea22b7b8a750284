/* static: the web UI's file server (see static.h). Files are handed to
 * libmicrohttpd as file descriptors, so nothing is copied into memory;
 * each reply carries an ETag (size and modification time) and
 * "Cache-Control: no-cache", so a browser revalidates and gets a 304 when
 * nothing changed, and a rebuilt UI is picked up at the next load. */
#include "daemon/static.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/http.h"
#include "lib/util.h"

#ifndef VESSEL_BUILD_ROOT
#define VESSEL_BUILD_ROOT ""
#endif
#ifndef VESSEL_INSTALL_WEB_DIR
#define VESSEL_INSTALL_WEB_DIR "/usr/local/share/vessel/web"
#endif

/* Content Security Policy for the page: everything from this host only
 * (the issue: nothing fetched from outside); WebSockets to the same host;
 * canvas images as data:/blob:. 'unsafe-inline' styles because xterm.js
 * and uPlot set element styles and xterm.js adds a <style> element. */
#define STATIC_CSP                                                                     \
	"default-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data: " \
	"blob:; style-src 'self' 'unsafe-inline'; font-src 'self'; object-src 'none'; "    \
	"base-uri 'none'; frame-ancestors 'none'"

bool static_handles(const char *method, const char *path)
{
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return false;
	if (strncmp(path, "/api/", 5) == 0 || strcmp(path, "/api") == 0)
		return false;
	return strcmp(path, "/metrics") != 0;
}

/* Characters allowed in a URL path segment of a web UI file. */
static bool static_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-' || c == '_' || c == '@' || c == '+';
}

int static_resolve(const char *root, const char *url_path, char out[PATH_MAX])
{
	char rel[PATH_MAX];
	size_t n = strlen(url_path);
	if (url_path[0] != '/' || n >= sizeof(rel) - sizeof("index.html"))
		return -EINVAL;
	/* Each segment: non-empty, not starting with '.', so "..", "." and
	 * dot files are out; only plain characters (no '\\', '%', NUL...). */
	const char *p = url_path + 1;
	while (*p) {
		const char *e = strchrnul(p, '/');
		if (e == p) {
			if (*e == '\0')
				break;
			return -EINVAL; /* "//" */
		}
		if (*p == '.')
			return -EINVAL;
		for (const char *q = p; q < e; q++)
			if (!static_char_ok(*q))
				return -EINVAL;
		p = *e ? e + 1 : e;
	}
	snprintf(rel, sizeof(rel), "%s%s", url_path + 1,
		 (n == 1 || url_path[n - 1] == '/') ? "index.html" : "");
	char joined[PATH_MAX * 2];
	snprintf(joined, sizeof(joined), "%s/%s", root, rel);
	char *real = realpath(joined, NULL);
	if (!real)
		return -ENOENT;
	size_t rl = strlen(root);
	int r = 0;
	struct stat st;
	/* a symlink may point anywhere: the resolved file must be inside */
	if (strncmp(real, root, rl) != 0 || real[rl] != '/' || stat(real, &st) < 0 ||
	    !S_ISREG(st.st_mode) || strlen(real) >= PATH_MAX)
		r = -ENOENT;
	else
		snprintf(out, PATH_MAX, "%s", real);
	free(real);
	return r;
}

const char *static_mime_type(const char *path)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{".html", "text/html; charset=utf-8"},
		{".js", "text/javascript; charset=utf-8"},
		{".mjs", "text/javascript; charset=utf-8"},
		{".css", "text/css; charset=utf-8"},
		{".json", "application/json"},
		{".svg", "image/svg+xml"},
		{".png", "image/png"},
		{".ico", "image/x-icon"},
		{".txt", "text/plain; charset=utf-8"},
		{".map", "application/json"},
		{".woff2", "font/woff2"},
	};
	const char *dot = strrchr(path, '.');
	const char *slash = strrchr(path, '/');
	if (dot && (!slash || dot > slash))
		for (size_t i = 0; i < ARRAY_SIZE(types); i++)
			if (strcmp(dot, types[i].ext) == 0)
				return types[i].type;
	return "application/octet-stream";
}

void static_default_dir(char *out, size_t cap)
{
	/* When the binary lives in the build tree (make run, the tests), the
	 * UI is the one web/build.sh put next to it in BUILD/web. */
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	size_t bl = strlen(VESSEL_BUILD_ROOT);
	if (n > 0 && bl) {
		exe[n] = '\0';
		if (strncmp(exe, VESSEL_BUILD_ROOT, bl) == 0 && exe[bl] == '/') {
			snprintf(out, cap, "%s/web", VESSEL_BUILD_ROOT);
			return;
		}
	}
	snprintf(out, cap, "%s", VESSEL_INSTALL_WEB_DIR);
}

static void static_not_found(struct http_req *req)
{
	http_reply_errorf(req, 404, "not_found",
			  "there is no file %s in the web UI and no API route by that name; "
			  "the API is under /api/v1/ (see /api/v1/openapi.json)", req->path);
}

void static_get(struct http_req *req)
{
	struct daemon *d = req->d;
	char root[PATH_MAX], file[PATH_MAX];
	if (!d->cfg.web_dir[0] || !realpath(d->cfg.web_dir, root)) {
		http_reply_errorf(req, 404, "not_found",
				  "the web UI is not installed at '%s'; build it with 'make build' "
				  "(web/build.sh) or start vesseld with --web-dir DIR",
				  d->cfg.web_dir);
		return;
	}
	int r = static_resolve(root, req->path, file);
	if (r == -EINVAL) {
		http_reply_errorf(req, 400, "invalid_argument",
				  "the path '%s' is not a web UI file name: segments may not be "
				  "empty, start with '.' or hold characters other than letters, "
				  "digits and . - _ @ +", req->path);
		return;
	}
	if (r < 0) {
		static_not_found(req);
		return;
	}
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		static_not_found(req);
		return;
	}
	char etag[96];
	snprintf(etag, sizeof(etag), "\"%" PRIx64 "-%" PRIx64 "-%lx\"", (uint64_t)st.st_size,
		 (uint64_t)st.st_mtim.tv_sec, (unsigned long)st.st_mtim.tv_nsec);
	const char *inm = http_header(req, "If-None-Match");
	bool fresh = inm && strstr(inm, etag) != NULL;
	struct MHD_Response *resp;
	if (fresh) {
		close(fd);
		resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
	} else {
		/* MHD owns fd from here (closed when the response is freed) */
		resp = MHD_create_response_from_fd((size_t)st.st_size, fd);
		if (!resp)
			close(fd);
	}
	if (!resp) {
		http_reply_errorf(req, 500, "internal", "vesseld ran out of memory; retry");
		return;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, static_mime_type(file));
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (strstr(static_mime_type(file), "text/html"))
		MHD_add_response_header(resp, "Content-Security-Policy", STATIC_CSP);
	req->status = fresh ? 304 : 200;
	req->custom = resp;
}
