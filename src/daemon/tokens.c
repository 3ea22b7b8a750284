/* tokens: the /api/v1/tokens resource (docs/api.md "Tokens"): create a
 * token (its secret is in the reply and nowhere else), list them, revoke
 * one. The token logic is in auth.c, the rows in store.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/auth.h"
#include "daemon/daemon.h"
#include "daemon/http.h"
#include "daemon/store.h"
#include "lib/util.h"

static json_t *tokens_to_json(const struct token_record *t)
{
	char created[32], expires[32], used[32], revoked[32];
	auth_time_format(t->created, created);
	auth_time_format(t->expires, expires);
	auth_time_format(t->last_used, used);
	auth_time_format(t->revoked, revoked);
	return json_pack("{s:s,s:s,s:s,s:o,s:s,s:o,s:o,s:o}", "id", t->id, "name", t->name, "role",
			 auth_role_name(t->role), "project",
			 t->project[0] ? json_string(t->project) : json_null(), "created_at", created,
			 "expires_at", t->expires ? json_string(expires) : json_null(),
			 "last_used_at", t->last_used ? json_string(used) : json_null(),
			 "revoked_at", t->revoked ? json_string(revoked) : json_null());
}

void tokens_list(struct http_req *req)
{
	struct token_record *v = NULL;
	size_t n = 0;
	if (store_token_list(req->d->store, &v, &n) < 0) {
		http_reply_errorf(req, 500, "internal", "cannot read the tokens from the database; "
				  "see vesseld's log");
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		/* the stored last use lags up to a minute behind memory's */
		struct token_record mem;
		if (auth_tokens_get(req->d->tokens, v[i].id, &mem) == 0)
			v[i].last_used = mem.last_used;
		json_array_append_new(arr, tokens_to_json(&v[i]));
	}
	free(v);
	http_reply_json(req, 200, json_pack("{s:o}", "tokens", arr));
}

/* Validate a create body into t; replies 400 and returns -EINVAL. */
static int tokens_parse(struct http_req *req, json_t *body, struct token_record *t)
{
	const char *key;
	json_t *val;
	json_object_foreach(body, key, val) {
		if (strcmp(key, "name") && strcmp(key, "role") && strcmp(key, "project") &&
		    strcmp(key, "expires")) {
			http_reply_errorf(req, 400, "invalid_argument",
					  "unknown field '%s': a token takes name, role, project and "
					  "expires", key);
			return -EINVAL;
		}
		if (!json_is_string(val) && !(json_is_null(val) && strcmp(key, "name") &&
					       strcmp(key, "role"))) {
			http_reply_errorf(req, 400, "invalid_argument", "field '%s' must be a string",
					  key);
			return -EINVAL;
		}
	}
	const char *name = json_string_value(json_object_get(body, "name"));
	const char *role = json_string_value(json_object_get(body, "role"));
	const char *project = json_string_value(json_object_get(body, "project"));
	const char *expires = json_string_value(json_object_get(body, "expires"));
	char err[AUTH_ERR_MAX];
	if (!name || !util_is_dns_label(name)) {
		http_reply_errorf(req, 400, "invalid_argument",
				  "token name '%s' is not valid: give 1 to 63 of a-z, 0-9 and '-', not "
				  "starting or ending with '-'", name ? name : "");
		return -EINVAL;
	}
	if (!role || auth_role_parse(role, &t->role) < 0) {
		http_reply_errorf(req, 400, "invalid_argument",
				  "role '%s' is not valid: give admin, operator or viewer",
				  role ? role : "");
		return -EINVAL;
	}
	if (project && !util_is_dns_label(project)) {
		http_reply_errorf(req, 400, "invalid_argument",
				  "project '%s' is not a valid project name: give 1 to 63 of a-z, 0-9 "
				  "and '-'", project);
		return -EINVAL;
	}
	if (project && t->role == AUTH_ROLE_ADMIN) {
		http_reply_errorf(req, 400, "invalid_argument",
				  "an admin token cannot be scoped to project '%s': admins manage the "
				  "whole host; give role operator or viewer for a project", project);
		return -EINVAL;
	}
	t->created = (int64_t)time(NULL);
	if (expires && auth_expiry_parse(expires, t->created, &t->expires, err) < 0) {
		http_reply_errorf(req, 400, "invalid_argument", "%s", err);
		return -EINVAL;
	}
	snprintf(t->name, sizeof(t->name), "%s", name);
	snprintf(t->project, sizeof(t->project), "%s", project ? project : "");
	return 0;
}

void tokens_create(struct http_req *req)
{
	json_t *body = NULL;
	struct token_record t = {0};
	char secret[AUTH_TOKEN_MAX];
	if (http_body_json(req, false, &body) < 0 || tokens_parse(req, body, &t) < 0)
		goto out;
	if (auth_token_generate(t.id, secret, t.hash) < 0) {
		http_reply_errorf(req, 500, "internal", "cannot read random bytes for the token; retry");
		goto out;
	}
	int r = store_token_insert(req->d->store, &t);
	if (r == -EEXIST) {
		http_reply_errorf(req, 409, "conflict",
				  "a token named '%s' already exists (names stay taken after a token is "
				  "revoked); choose another name", t.name);
		goto out;
	}
	if (r == 0)
		r = auth_tokens_put(req->d->tokens, &t);
	if (r < 0) {
		http_reply_errorf(req, 500, "internal", "cannot store the token; see vesseld's log");
		goto out;
	}
	log_info("tokens: created token %s '%s' (%s%s%s)", t.id, t.name, auth_role_name(t.role),
		 t.project[0] ? ", project " : "", t.project);
	/* The only time the secret leaves vesseld: only its hash is stored. */
	http_reply_json(req, 201, json_pack("{s:o,s:s}", "token", tokens_to_json(&t), "secret",
					    secret));
out:
	explicit_bzero(secret, sizeof(secret));
	json_decref(body);
}

void tokens_revoke(struct http_req *req)
{
	const char *id = req->params[0];
	struct token_record t;
	int64_t now = (int64_t)time(NULL);
	int r = strlen(id) == AUTH_ID_LEN ? store_token_revoke(req->d->store, id, now) : -ENOENT;
	if (r == 0 && auth_tokens_get(req->d->tokens, id, &t) == 0) {
		t.revoked = now;
		r = auth_tokens_put(req->d->tokens, &t);
	}
	if (r == -ENOENT) {
		http_reply_errorf(req, 404, "not_found",
				  "there is no token with id '%s'; list them with GET /api/v1/tokens", id);
	} else if (r == -EALREADY) {
		http_reply_errorf(req, 409, "conflict", "token '%s' is already revoked", id);
	} else if (r < 0) {
		http_reply_errorf(req, 500, "internal", "cannot revoke the token; see vesseld's log");
	} else {
		log_info("tokens: revoked token %s", id);
		http_reply_json(req, 200, json_pack("{s:s}", "revoked", id));
	}
}
