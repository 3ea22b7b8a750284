/* http: how `vessel` reaches vesseld. Picks the endpoint (Unix socket or
 * TCP URL with a bearer token, docs/api.md "Transport and auth"), sends
 * requests with libcurl and turns failures into one sentence for the user:
 * the API's error.message, or "cannot reach vesseld at ...; is it running?"
 * when there is no answer at all. */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "lib/util.h"

int cli_fail(struct cli *cli, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cli->err, sizeof(cli->err), fmt, ap);
	va_end(ap);
	return code;
}

/* Read a token file: the first line, without surrounding blanks. */
static int http_token_read(struct cli *cli, const char *path)
{
	char line[4096];
	FILE *f = NULL;
	int ret = 0;

	f = fopen(path, "re");
	if (!f) {
		ret = cli_fail(cli, -errno, "cannot read token file %s: %s; give a readable file to --token-file",
			       path, strerror(errno));
		goto out;
	}
	if (!fgets(line, sizeof(line), f)) {
		ret = cli_fail(cli, -EINVAL, "token file %s is empty; put the bearer token on its first line", path);
		goto out;
	}
	char *s = line;
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strcspn(s, " \t\r\n");
	s[n] = '\0';
	if (n == 0) {
		ret = cli_fail(cli, -EINVAL, "token file %s is empty; put the bearer token on its first line", path);
		goto out;
	}
	cli->token = strdup(s);
	if (!cli->token)
		ret = -ENOMEM;
out:
	if (f)
		fclose(f);
	return ret;
}

static bool http_is_socket(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

int cli_new(const struct cli_args *args, struct cli **out)
{
	struct cli *cli;
	const char *socket_path = cli_args_get(args, CLI_OPT_SOCKET);
	const char *url = cli_args_get(args, CLI_OPT_URL);
	const char *token = cli_args_get(args, CLI_OPT_TOKEN);
	const char *token_file = cli_args_get(args, CLI_OPT_TOKEN_FILE);
	int ret = 0;

	cli = calloc(1, sizeof(*cli));
	if (!cli)
		return -ENOMEM;
	*out = cli;
	cli->json = cli_args_has(args, CLI_OPT_JSON);

	if (socket_path && url) {
		ret = cli_fail(cli, -EINVAL, "give either --socket or --url, not both");
		goto out;
	}
	/* Flags beat the environment; an explicit URL beats a socket path
	 * from the environment because it is the more specific request. */
	if (!socket_path && !url) {
		url = getenv("VESSEL_URL");
		if (url && !*url)
			url = NULL;
		if (!url) {
			socket_path = getenv("VESSEL_SOCKET");
			if (socket_path && !*socket_path)
				socket_path = NULL;
		}
	}
	if (!socket_path && !url) {
		if (http_is_socket(CLI_DEFAULT_SOCKET))
			socket_path = CLI_DEFAULT_SOCKET;
		else
			url = CLI_DEFAULT_URL;
	}

	if (socket_path) {
		cli->socket_path = strdup(socket_path);
		/* The host part is ignored over a Unix socket but HTTP/1.1
		 * needs one in the Host header. */
		cli->base_url = strdup("http://localhost");
	} else {
		if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
			ret = cli_fail(cli, -EINVAL, "URL '%s' must start with http:// or https://, e.g. %s",
				       url, CLI_DEFAULT_URL);
			goto out;
		}
		cli->base_url = strdup(url);
		if (cli->base_url) {
			size_t n = strlen(cli->base_url);
			while (n > 0 && cli->base_url[n - 1] == '/')
				cli->base_url[--n] = '\0';
		}
	}
	if (!cli->base_url || (socket_path && !cli->socket_path)) {
		ret = -ENOMEM;
		goto out;
	}

	if (token && token_file) {
		ret = cli_fail(cli, -EINVAL, "give either --token or --token-file, not both");
		goto out;
	}
	if (!token && !token_file)
		token = getenv("VESSEL_TOKEN");
	if (token_file) {
		ret = http_token_read(cli, token_file);
		if (ret < 0)
			goto out;
	} else if (token && *token) {
		cli->token = strdup(token);
		if (!cli->token) {
			ret = -ENOMEM;
			goto out;
		}
	}

	cli->curl = curl_easy_init();
	if (!cli->curl)
		ret = cli_fail(cli, -ENOMEM, "cannot initialise libcurl");
out:
	return ret;
}

void cli_free(struct cli *cli)
{
	if (!cli)
		return;
	if (cli->curl)
		curl_easy_cleanup(cli->curl);
	free(cli->socket_path);
	free(cli->base_url);
	free(cli->token);
	free(cli);
}

const char *cli_endpoint_name(const struct cli *cli, char *buf, size_t len)
{
	if (cli->socket_path)
		snprintf(buf, len, "unix socket %s", cli->socket_path);
	else
		snprintf(buf, len, "%s", cli->base_url);
	return buf;
}

void cli_response_clear(struct cli_response *resp)
{
	free(resp->body);
	json_decref(resp->json);
	memset(resp, 0, sizeof(*resp));
}

static size_t http_body_cb(char *data, size_t size, size_t nmemb, void *opaque)
{
	struct cli_response *resp = opaque;
	size_t n = size * nmemb;
	char *b = realloc(resp->body, resp->len + n + 1);

	if (!b)
		return 0;
	memcpy(b + resp->len, data, n);
	resp->len += n;
	b[resp->len] = '\0';
	resp->body = b;
	return n;
}

static bool http_header_u64(const char *line, size_t n, const char *name, uint64_t *out)
{
	size_t nl = strlen(name);
	char val[32];

	if (n <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return false;
	const char *v = line + nl + 1;
	size_t vn = n - nl - 1;
	while (vn && (*v == ' ' || *v == '\t')) {
		v++;
		vn--;
	}
	while (vn && (v[vn - 1] == '\r' || v[vn - 1] == '\n' || v[vn - 1] == ' '))
		vn--;
	if (vn == 0 || vn >= sizeof(val))
		return false;
	memcpy(val, v, vn);
	val[vn] = '\0';
	return util_parse_u64(val, 0, UINT64_MAX, out) == 0;
}

static size_t http_header_cb(char *data, size_t size, size_t nmemb, void *opaque)
{
	struct cli_response *resp = opaque;
	size_t n = size * nmemb;

	if (http_header_u64(data, n, "X-Console-Next", &resp->console_next))
		resp->has_console_next = true;
	http_header_u64(data, n, "X-Console-Start", &resp->console_start);
	return n;
}

int cli_http_request(struct cli *cli, const char *method, const char *path,
		     const char *ctype, const void *body, size_t body_len,
		     struct cli_response *resp)
{
	CURL *c = cli->curl;
	struct curl_slist *hdrs = NULL, *h;
	char *url = NULL, *hdr_auth = NULL, *hdr_ctype = NULL;
	char curl_err[CURL_ERROR_SIZE] = "";
	int ret = 0;

	memset(resp, 0, sizeof(*resp));
	if (asprintf(&url, "%s%s%s", cli->base_url, CLI_API_PREFIX, path) < 0) {
		url = NULL;
		ret = -ENOMEM;
		goto out;
	}
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_body_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "vessel-cli/0.1");
	if (cli->socket_path)
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, cli->socket_path);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		if (asprintf(&hdr_ctype, "Content-Type: %s", ctype ? ctype : "application/json") < 0) {
			hdr_ctype = NULL;
			ret = -ENOMEM;
			goto out;
		}
		h = curl_slist_append(hdrs, hdr_ctype);
		if (!h) {
			ret = -ENOMEM;
			goto out;
		}
		hdrs = h;
	} else if (strcmp(method, "POST") == 0 || strcmp(method, "PATCH") == 0) {
		/* An action such as start has no body; say so explicitly so
		 * libcurl does not wait for one on stdin. */
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	}
	/* "Expect: 100-continue" would add a round trip for large bodies. */
	h = curl_slist_append(hdrs, "Expect:");
	if (!h) {
		ret = -ENOMEM;
		goto out;
	}
	hdrs = h;
	if (cli->token) {
		if (asprintf(&hdr_auth, "Authorization: Bearer %s", cli->token) < 0) {
			hdr_auth = NULL;
			ret = -ENOMEM;
			goto out;
		}
		h = curl_slist_append(hdrs, hdr_auth);
		if (!h) {
			ret = -ENOMEM;
			goto out;
		}
		hdrs = h;
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);

	CURLcode cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		char ep[512];
		long os_errno = 0;
		curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
		const char *reason = os_errno ? strerror((int)os_errno)
				     : (curl_err[0] ? curl_err : curl_easy_strerror(cc));
		if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
		    cc == CURLE_COULDNT_RESOLVE_PROXY || (cc == CURLE_OPERATION_TIMEDOUT && !resp->body))
			ret = cli_fail(cli, -ECONNREFUSED, "cannot reach vesseld at %s: %s; is it running?",
				       cli_endpoint_name(cli, ep, sizeof(ep)), reason);
		else
			ret = cli_fail(cli, -EIO, "the request %s %s to vesseld at %s failed: %s; see vesseld's log",
				       method, path, cli_endpoint_name(cli, ep, sizeof(ep)), reason);
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	if (!resp->body) {
		resp->body = strdup("");
		if (!resp->body) {
			ret = -ENOMEM;
			goto out;
		}
	}
	if (resp->len > 0 && (resp->body[0] == '{' || resp->body[0] == '['))
		resp->json = json_loadb(resp->body, resp->len, 0, NULL);
out:
	curl_slist_free_all(hdrs);
	free(hdr_auth);
	free(hdr_ctype);
	free(url);
	return ret;
}

void cli_error_from_body(long status, const char *body, char *buf, size_t len)
{
	json_t *j = body ? json_loads(body, 0, NULL) : NULL;
	json_t *e = json_object_get(j, "error");
	const char *msg = cli_json_str(e, "message");

	if (msg && *msg) {
		snprintf(buf, len, "%s", msg);
	} else if (status == 401) {
		snprintf(buf, len, "vesseld refused the request (HTTP 401); give the admin token with --token, "
			 "--token-file or VESSEL_TOKEN");
	} else {
		snprintf(buf, len, "vesseld answered HTTP %ld without an error message; see its log", status);
	}
	json_decref(j);
}

static int http_status_errno(long status)
{
	switch (status) {
	case 400: return -EINVAL;
	case 401: return -EACCES;
	case 404: return -ENOENT;
	case 405: return -EOPNOTSUPP;
	case 409: return -EBUSY;
	case 413: return -E2BIG;
	default: return -EIO;
	}
}

int cli_api(struct cli *cli, const char *method, const char *path, json_t *body,
	    struct cli_response *resp)
{
	char *text = NULL;
	int ret;

	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		if (!text) {
			memset(resp, 0, sizeof(*resp));
			return -ENOMEM;
		}
	}
	ret = cli_http_request(cli, method, path, NULL, text, text ? strlen(text) : 0, resp);
	if (ret < 0)
		goto out;
	if (resp->status < 200 || resp->status > 299) {
		cli_error_from_body(resp->status, resp->body, cli->err, sizeof(cli->err));
		ret = http_status_errno(resp->status);
		goto out;
	}
	if (!resp->json)
		ret = cli_fail(cli, -EPROTO, "vesseld answered %s %s with something that is not JSON; "
			       "is %s really vesseld?", method, path, cli->base_url);
out:
	free(text);
	return ret;
}

int cli_path(char **out, const char *fmt, ...)
{
	va_list ap;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int ret = 0;

	if (!f)
		return -ENOMEM;
	va_start(ap, fmt);
	for (const char *p = fmt; *p; p++) {
		if (p[0] == '%' && p[1] == 's') {
			const char *arg = va_arg(ap, const char *);
			/* RFC 3986 unreserved characters pass; everything else,
			 * '/' and '.' included (libcurl would fold "..", RFC 3986
			 * §5.2.4), is escaped so a name cannot change the path. */
			for (const unsigned char *q = (const unsigned char *)arg; *q; q++) {
				if ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
				    (*q >= '0' && *q <= '9') || strchr("-_~", *q))
					fputc(*q, f);
				else
					fprintf(f, "%%%02X", *q);
			}
			p++;
		} else {
			fputc(*p, f);
		}
	}
	va_end(ap);
	if (fclose(f) != 0 || !buf) {
		free(buf);
		ret = -ENOMEM;
	} else {
		*out = buf;
	}
	return ret;
}
