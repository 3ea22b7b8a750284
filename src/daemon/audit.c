/* audit: appending to, checking and reading DATA_DIR/audit.log (see
 * audit.h; the line format and chain are lib/audit_chain.h). */
#include "daemon/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/auth.h"
#include "daemon/http.h"
#include "daemon/store.h"
#include "lib/log.h"
#include "lib/util.h"

/* settings keys: "COUNT HASH" of the last line written, and a sentence
 * about damage found at a start (kept: verify reports it from then on). */
#define AUDIT_KEY_HEAD "audit_head"
#define AUDIT_KEY_DAMAGE "audit_damage"
#define AUDIT_LINE_MAX (1024 * 1024)

struct audit_log {
	pthread_mutex_t lock;
	char path[4096];
	int fd;
	struct store *store;
	uint64_t count;                /* lines in the file */
	char last[AUDIT_CHAIN_HEX];    /* SHA-256 of the last line */
	char warning[1024];
	bool count_known; /* set by audit_head_matches at open */
};

static void audit_time_now(char out[40])
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 40 - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* Count the lines of the open file and hash the last one; *newline_end is
 * false when the file does not end with '\n' (a cut-short write). */
static int audit_scan(struct audit_log *a, bool *newline_end, char **last_line, size_t *last_len)
{
	char buf[65536];
	off_t pos = 0, line_start = 0, prev_start = 0;
	ssize_t n;
	char lastc = '\n';
	a->count = 0;
	while ((n = pread(a->fd, buf, sizeof(buf), pos)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] == '\n') {
				a->count++;
				prev_start = line_start;
				line_start = pos + i + 1;
			}
		lastc = buf[n - 1];
		pos += n;
	}
	if (n < 0)
		return -errno;
	*newline_end = lastc == '\n';
	if (!*newline_end) {
		a->count++; /* the partial line counts */
		prev_start = line_start;
	}
	*last_line = NULL;
	*last_len = 0;
	if (!a->count)
		return 0;
	size_t len = (size_t)(pos - prev_start) - (*newline_end ? 1 : 0);
	if (len > AUDIT_LINE_MAX)
		return -EFBIG;
	char *l = malloc(len + 1);
	if (!l)
		return -ENOMEM;
	if (pread(a->fd, l, len, prev_start) != (ssize_t)len) {
		free(l);
		return -EIO;
	}
	l[len] = '\0';
	*last_line = l;
	*last_len = len;
	return 0;
}

/* true (with count and last set) when the file's last line is whole and
 * hashes to what the database recorded as written last. */
static bool audit_head_matches(struct audit_log *a)
{
	char *head = NULL;
	unsigned long long cnt = 0;
	char hash[AUDIT_CHAIN_HEX] = "", have[AUDIT_CHAIN_HEX];
	bool ok = false;
	struct stat st;
	if (!a->store || store_setting_get(a->store, AUDIT_KEY_HEAD, &head) < 0)
		return false;
	if (sscanf(head, "%llu %64s", &cnt, hash) != 2 || fstat(a->fd, &st) < 0)
		goto out;
	if (cnt == 0) {
		ok = st.st_size == 0;
		goto out;
	}
	/* The last line ends at the file's last byte, a newline. */
	size_t cap = (size_t)MIN((off_t)AUDIT_LINE_MAX + 1, st.st_size);
	char *buf = malloc(cap);
	if (!buf || pread(a->fd, buf, cap, st.st_size - (off_t)cap) != (ssize_t)cap ||
	    buf[cap - 1] != '\n') {
		free(buf);
		goto out;
	}
	size_t start = cap - 1;
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	if (start > 0 || (off_t)cap == st.st_size) {
		audit_chain_sha256_hex(buf + start, cap - 1 - start, have);
		ok = strcmp(have, hash) == 0;
	}
	free(buf);
out:
	if (ok) {
		a->count = cnt;
		a->count_known = true;
		if (cnt)
			memcpy(a->last, hash, sizeof(hash));
	}
	free(head);
	return ok;
}

static void audit_head_save(struct audit_log *a)
{
	char v[128];
	snprintf(v, sizeof(v), "%llu %s", (unsigned long long)a->count, a->last);
	if (a->store)
		store_setting_put(a->store, AUDIT_KEY_HEAD, v);
}

/* Write one sealed entry; a->lock held. sync: fdatasync before returning. */
static int audit_write_locked(struct audit_log *a, json_t *fields, bool sync)
{
	int r;
	char *line = NULL;
	size_t len;
	char *f = json_dumps(fields, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!f)
		return -ENOMEM;
	if ((r = audit_chain_seal(f, strlen(f), a->last, &line, &len)) < 0)
		goto out;
	line[len] = '\n'; /* seal left room: the NUL becomes the newline */
	/* One write with O_APPEND: the line lands whole at the end even if
	 * something else appends; fsync before the client hears "done". */
	if ((r = util_write_all(a->fd, line, len + 1)) < 0 ||
	    (sync && fdatasync(a->fd) < 0 && (r = -errno))) {
		log_ratelimited(LOG_LEVEL_ERROR, "audit: cannot write %s: %s", a->path, strerror(-r));
		goto out;
	}
	audit_chain_sha256_hex(line, len, a->last);
	a->count++;
	audit_head_save(a);
out:
	free(line);
	free(f);
	return r;
}

static json_t *audit_fields(const struct audit_entry *e)
{
	char now[40];
	audit_time_now(now);
	json_t *j = json_object();
	json_object_set_new(j, "time", json_string(now));
	json_object_set_new(j, "token", json_string(e->token ? e->token : AUTH_ID_NONE));
	json_object_set_new(j, "role", json_string(e->role ? e->role : "-"));
	json_object_set_new(j, "client", json_string(e->client ? e->client : "-"));
	json_object_set_new(j, "method", json_string(e->method ? e->method : "-"));
	json_object_set_new(j, "path", json_string(e->path ? e->path : "-"));
	json_object_set_new(j, "object", e->object && *e->object ? json_string(e->object) : json_null());
	json_object_set_new(j, "result", json_integer(e->result));
	if (e->detail)
		json_object_set_new(j, "detail", json_string(e->detail));
	return j;
}

int audit_open(const char *path, struct store *store, struct audit_log **out, char **err)
{
	int r;
	char *last_line = NULL;
	size_t last_len = 0;
	bool nl_end = true;
	struct audit_log *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->fd = -1;
	pthread_mutex_init(&a->lock, NULL);
	snprintf(a->path, sizeof(a->path), "%s", path);
	a->store = store;
	snprintf(a->last, sizeof(a->last), "%s", AUDIT_CHAIN_GENESIS);
	a->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (a->fd < 0) {
		r = -errno;
		asprintf(err, "cannot open the audit log %s: %s; check the data directory", path,
			 strerror(-r));
		goto out;
	}
	/* Fast path: when the last line is the one the database says was
	 * written last, its count is known and the file need not be read. */
	if (!audit_head_matches(a) &&
	    (r = audit_scan(a, &nl_end, &last_line, &last_len)) < 0) {
		asprintf(err, "cannot read the audit log %s: %s", path, strerror(-r));
		goto out;
	}
	char damage[768] = "";
	if (last_line && !a->count_known) {
		audit_chain_sha256_hex(last_line, last_len, a->last);
		char reason[AUDIT_CHAIN_REASON_MAX];
		/* Only the line's own seal can be checked without the line
		 * before it; the prev link of every line is verify's job. */
		char own_prev[AUDIT_CHAIN_HEX] = "";
		if (last_len > 9 + 64)
			snprintf(own_prev, sizeof(own_prev), "%.64s", last_line + 9);
		if (!nl_end)
			snprintf(damage, sizeof(damage),
				 "its last line %llu was cut short (no newline)",
				 (unsigned long long)a->count);
		else if (audit_chain_check(last_line, last_len, own_prev, reason) < 0)
			snprintf(damage, sizeof(damage), "its last line %llu is damaged: %s",
				 (unsigned long long)a->count, reason);
	}
	char *head = NULL;
	if (!damage[0] && !a->count_known && store &&
	    store_setting_get(store, AUDIT_KEY_HEAD, &head) == 0) {
		unsigned long long cnt = 0;
		char hash[AUDIT_CHAIN_HEX] = "";
		if (sscanf(head, "%llu %64s", &cnt, hash) == 2 &&
		    (cnt != a->count || strcmp(hash, a->last) != 0))
			snprintf(damage, sizeof(damage),
				 "it has %llu lines but vesseld last wrote line %llu with another hash: "
				 "lines at the end were removed or rewritten",
				 (unsigned long long)a->count, cnt);
	}
	free(head);
	if (damage[0]) {
		snprintf(a->warning, sizeof(a->warning),
			 "the audit log %s is damaged: %s. It was not truncated; new entries follow "
			 "the damage. Run 'vessel audit verify' and keep a copy of the file", path,
			 damage);
		log_error("%s", a->warning);
		/* End the partial line so it stays one (damaged) line that
		 * verify names, and the next entry starts on its own line. */
		if (!nl_end && util_write_all(a->fd, "\n", 1) < 0)
			log_error("audit: cannot end the partial last line of %s", path);
		if (store)
			store_setting_put(store, AUDIT_KEY_DAMAGE, a->warning);
		/* The log itself says what was found, so the next reader sees it
		 * even without the database. */
		struct audit_entry e = {.token = AUTH_ID_NONE, .role = "-", .client = "vesseld",
					.method = "START", .path = path, .result = 500,
					.detail = damage};
		json_t *f = audit_fields(&e);
		audit_write_locked(a, f, true);
		json_decref(f);
	} else {
		audit_head_save(a);
	}
	*out = a;
	a = NULL;
	r = 0;
out:
	free(last_line);
	audit_free(a);
	return r;
}

void audit_free(struct audit_log *a)
{
	if (!a)
		return;
	if (a->fd >= 0)
		close(a->fd);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

int audit_append(struct audit_log *a, const struct audit_entry *e)
{
	json_t *f = audit_fields(e);
	if (!f)
		return -ENOMEM;
	/* A change is on disk before its reply. A refusal (401/403/429) is
	 * written at once but not flushed: anyone can send those by the
	 * thousand, and a flush each (about 6 ms here) would let them stall
	 * vesseld's HTTP threads; the next change's flush, or the kernel's
	 * writeback within seconds, puts them on disk too. */
	bool sync = !(e->result == 401 || e->result == 403 || e->result == 429);
	pthread_mutex_lock(&a->lock);
	int r = audit_write_locked(a, f, sync);
	pthread_mutex_unlock(&a->lock);
	json_decref(f);
	return r;
}

const char *audit_warning(struct audit_log *a)
{
	return a && a->warning[0] ? a->warning : NULL;
}

int audit_verify(struct audit_log *a, struct audit_chain_result *res)
{
	pthread_mutex_lock(&a->lock);
	int r = audit_chain_verify_file(a->path, res);
	char *damage = NULL;
	if (r == 0 && res->ok) {
		if (res->entries < a->count) {
			res->ok = false;
			res->first_bad_line = res->entries + 1;
			snprintf(res->reason, sizeof(res->reason),
				 "line %llu is missing: the file ends after %llu lines but vesseld "
				 "wrote %llu; lines at the end were removed",
				 (unsigned long long)res->entries + 1,
				 (unsigned long long)res->entries, (unsigned long long)a->count);
		} else if (res->entries > a->count) {
			res->ok = false;
			res->first_bad_line = a->count + 1;
			snprintf(res->reason, sizeof(res->reason),
				 "line %llu and the lines after it were not written by vesseld (it wrote "
				 "%llu lines): they were added to the file",
				 (unsigned long long)a->count + 1, (unsigned long long)a->count);
		} else if (strcmp(res->last_hash, a->last) != 0) {
			/* Same length, chain intact, other end: every hash was
			 * recomputed, so no single line can be named. */
			res->ok = false;
			res->first_bad_line = res->entries;
			snprintf(res->reason, sizeof(res->reason),
				 "line %llu is not the line vesseld wrote last (its hash differs from the "
				 "one recorded in the database): the log was rewritten with recomputed "
				 "hashes; compare it with a copy kept elsewhere",
				 (unsigned long long)res->entries);
		} else if (a->store && store_setting_get(a->store, AUDIT_KEY_DAMAGE, &damage) == 0) {
			/* The chain holds, but an earlier start found it broken
			 * and the lines were then replaced: stay not ok. */
			res->ok = false;
			res->first_bad_line = 1;
			snprintf(res->reason, sizeof(res->reason), "recorded at an earlier start: %.260s",
				 damage);
		}
	}
	free(damage);
	pthread_mutex_unlock(&a->lock);
	return r;
}

static bool audit_match(const struct audit_filter *f, json_t *e)
{
	const char *s;
	if (f->since_ms || f->until_ms) {
		int64_t t;
		if (auth_time_parse_ms(json_string_value(json_object_get(e, "time")), &t) < 0)
			return false;
		if ((f->since_ms && t < f->since_ms) || (f->until_ms && t >= f->until_ms))
			return false;
	}
	if (f->token && (!(s = json_string_value(json_object_get(e, "token"))) || strcmp(s, f->token)))
		return false;
	if (f->method &&
	    (!(s = json_string_value(json_object_get(e, "method"))) || strcasecmp(s, f->method)))
		return false;
	if (f->path_prefix && (!(s = json_string_value(json_object_get(e, "path"))) ||
			       strncmp(s, f->path_prefix, strlen(f->path_prefix))))
		return false;
	if (f->result) {
		json_int_t res = json_integer_value(json_object_get(e, "result"));
		if (f->result < 10 ? res / 100 != (json_int_t)f->result : res != (json_int_t)f->result)
			return false;
	}
	return true;
}

int audit_list(struct audit_log *a, const struct audit_filter *f, json_t **entries, size_t *total)
{
	int r = 0;
	size_t n = 0, cap = 0;
	json_t **ring = calloc(f->limit ? f->limit : 1, sizeof(*ring));
	FILE *fp = NULL;
	char *line = NULL;
	size_t lcap = 0;
	uint64_t lineno = 0;
	json_t *arr = json_array();
	if (!ring || !arr) {
		r = -ENOMEM;
		goto out;
	}
	cap = MAX(f->limit, (size_t)1);
	/* Lines are appended whole under the lock, so everything before the
	 * size seen under it is complete: read up to there, without holding
	 * up writers for the whole read. */
	struct stat st;
	pthread_mutex_lock(&a->lock);
	int sr = fstat(a->fd, &st);
	pthread_mutex_unlock(&a->lock);
	if (sr < 0) {
		r = -errno;
		goto out;
	}
	fp = fopen(a->path, "re");
	if (!fp && errno != ENOENT) { /* a missing log is an empty one */
		r = -errno;
		goto out;
	}
	ssize_t len;
	off_t pos = 0;
	while (fp && pos < st.st_size && (len = getline(&line, &lcap, fp)) >= 0) {
		pos += len;
		lineno++;
		json_t *e = json_loadb(line, (size_t)len, 0, NULL);
		if (!json_is_object(e)) {
			/* A damaged line still shows up, flagged, so a reader of
			 * the list is not misled by its absence. */
			json_decref(e);
			e = json_pack("{s:s}", "damaged", "this line is not valid JSON");
			if (f->since_ms || f->until_ms || f->token || f->method || f->path_prefix ||
			    f->result) {
				json_decref(e);
				continue;
			}
		} else if (!audit_match(f, e)) {
			json_decref(e);
			continue;
		}
		json_object_del(e, "prev");
		json_object_del(e, "hash");
		json_object_set_new(e, "line", json_integer((json_int_t)lineno));
		json_decref(ring[n % cap]);
		ring[n % cap] = e;
		n++;
	}
	for (size_t i = n > cap ? n - cap : 0; i < n; i++)
		json_array_append(arr, ring[i % cap]);
	*entries = arr;
	arr = NULL;
	*total = n;
out:
	for (size_t i = 0; ring && i < cap; i++)
		json_decref(ring[i]);
	free(ring);
	free(line);
	if (fp)
		fclose(fp);
	json_decref(arr);
	return r;
}

/* ---- the /api/v1/audit resource (docs/api.md "Audit") ---- */

void audit_get(struct http_req *req)
{
	struct audit_filter f = {.limit = 1000};
	const char *s;
	uint64_t v;
	if ((s = http_query(req, "since")) && auth_time_parse_ms(s, &f.since_ms) < 0) {
		http_reply_errorf(req, 400, "invalid_argument",
				  "since '%s' is not a UTC time such as 2026-11-26T10:00:00Z or a date "
				  "such as 2026-11-26", s);
		return;
	}
	if ((s = http_query(req, "until")) && auth_time_parse_ms(s, &f.until_ms) < 0) {
		http_reply_errorf(req, 400, "invalid_argument",
				  "until '%s' is not a UTC time such as 2026-11-26T10:00:00Z or a date "
				  "such as 2026-11-26", s);
		return;
	}
	if ((s = http_query(req, "limit")) && util_parse_u64(s, 1, 100000, &v) < 0) {
		http_reply_errorf(req, 400, "invalid_argument",
				  "limit '%s' is not a number from 1 to 100000", s);
		return;
	} else if (s) {
		f.limit = (size_t)v;
	}
	if ((s = http_query(req, "result"))) {
		if (strlen(s) == 3 && s[1] == 'x' && s[2] == 'x' && s[0] >= '1' && s[0] <= '5')
			f.result = (unsigned)(s[0] - '0');
		else if (util_parse_u64(s, 100, 599, &v) == 0)
			f.result = (unsigned)v;
		else {
			http_reply_errorf(req, 400, "invalid_argument",
					  "result '%s' is not an HTTP status (100..599) or a class "
					  "such as 4xx", s);
			return;
		}
	}
	f.token = http_query(req, "token");
	f.method = http_query(req, "method");
	f.path_prefix = http_query(req, "path");
	json_t *entries = NULL;
	size_t total = 0;
	if (audit_list(req->d->audit, &f, &entries, &total) < 0) {
		http_reply_errorf(req, 500, "internal", "cannot read the audit log; see vesseld's log");
		return;
	}
	http_reply_json(req, 200, json_pack("{s:o,s:I,s:b}", "entries", entries, "matched",
					    (json_int_t)total, "truncated",
					    total > json_array_size(entries)));
}

void audit_verify_get(struct http_req *req)
{
	struct audit_chain_result res;
	int r = audit_verify(req->d->audit, &res);
	if (r < 0) {
		http_reply_errorf(req, 500, "internal", "cannot read the audit log: %s", strerror(-r));
		return;
	}
	http_reply_json(req, 200, json_pack("{s:b,s:I,s:o,s:o}", "ok", res.ok, "entries",
					    (json_int_t)res.entries, "first_bad_line",
					    res.ok ? json_null() : json_integer((json_int_t)res.first_bad_line),
					    "reason", res.ok ? json_null() : json_string(res.reason)));
}
