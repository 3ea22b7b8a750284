/* static: serves the web UI's files (HTML, CSS, JS modules, the npm
 * packages copied by web/build.sh) from --web-dir, without a token: the page
 * itself holds no data, every API call it makes carries the token.
 *
 * Only regular files under the web directory are served: the URL path is
 * checked segment by segment (no "..", no dot files, no NUL or backslash,
 * a small set of characters), and the file's realpath must still lie under
 * the web directory's realpath, so a symlink out of it is refused too. */
#ifndef VESSEL_DAEMON_STATIC_H
#define VESSEL_DAEMON_STATIC_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

struct http_req;

/* true for the requests the static server answers: GET or HEAD of a path
 * outside /api/ and /metrics. */
bool static_handles(const char *method, const char *path);

/* Map a decoded URL path to a file under root (a realpath). "/" and paths
 * ending in '/' mean index.html. Returns 0 with out set to the file's real
 * path, -EINVAL for a path that may not be asked for (traversal, bad
 * characters), -ENOENT when there is no such regular file under root (also
 * when a symlink leads out of it). */
int static_resolve(const char *root, const char *url_path, char out[PATH_MAX]);

/* Content-Type for a file name, by extension; unknown ones are
 * application/octet-stream (with nosniff, a browser will not run them). */
const char *static_mime_type(const char *path);

/* The default --web-dir: the build tree's web folder when vesseld runs from
 * the build tree, else the installed share path. */
void static_default_dir(char *out, size_t cap);

/* GET / and every path static_handles() accepts. */
void static_get(struct http_req *req);

#endif
