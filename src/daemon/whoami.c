/* whoami: GET /api/v1/whoami, the identity the request authenticated as
 * (token id, role, project scope). The web UI reads it after login to
 * offer only the actions the role allows (docs/web.md "Roles"); the API
 * enforces the roles regardless. */
#include "daemon/auth.h"
#include "daemon/http.h"

void whoami_get(struct http_req *req)
{
	const struct auth_identity *w = &req->who;
	json_t *j = json_pack("{s:s,s:s,s:o}", "token_id", w->token_id, "role",
			      auth_role_name(w->role), "project",
			      w->project[0] ? json_string(w->project) : json_null());
	http_reply_json(req, 200, j);
}
