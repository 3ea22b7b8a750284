/* validate: strict checks of API request bodies, done before anything is
 * changed (docs/api.md: a request that fails changes nothing). Pure
 * functions: they read the JSON and the file system (for paths) and fill a
 * record; on failure they return -EINVAL with a sentence in err that says
 * what was wrong and what to do, which the API returns as a 400. */
#ifndef VESSEL_DAEMON_VALIDATE_H
#define VESSEL_DAEMON_VALIDATE_H

#include <jansson.h>
#include <stddef.h>

#include "daemon/model.h"

#define VALIDATE_ERR_MAX 512
#define VALIDATE_BODY_MAX (64 * 1024) /* docs/api.md: larger bodies → 413 */

struct validate_ctx {
	const char *const *allow_dirs; /* resolved (realpath) directories */
	size_t nr_allow_dirs;
};

/* Parse a request body: must be a JSON object. An empty body gives an empty
 * object when allow_empty, else an error. */
int validate_body_parse(const char *body, size_t len, bool allow_empty, json_t **out,
			char err[VALIDATE_ERR_MAX]);

/* A path given by a client: must exist, be a regular file after resolving
 * symlinks, and lie under one of the allowed directories. resolved gets the
 * canonical path. `what` names the field in the message. */
int validate_path(const char *path, const char *what, const struct validate_ctx *vc,
		  char resolved[MODEL_PATH_MAX], char err[VALIDATE_ERR_MAX]);

/* POST /api/v1/vms. Fills out with defaults for missing fields (vcpus 1,
 * memory 512 MiB, bios, restart never); disks get index, image, clone and
 * size_gib (paths and sizes are set later by the daemon). */
int validate_vm_create(const json_t *body, const struct validate_ctx *vc, struct vm_record *out,
		       char err[VALIDATE_ERR_MAX]);

/* PATCH /api/v1/vms/{name}: applies the given fields to *vm (a copy the
 * caller stores only on success). */
int validate_vm_patch(const json_t *body, const struct validate_ctx *vc, struct vm_record *vm,
		      char err[VALIDATE_ERR_MAX]);

/* POST /api/v1/vms/{name}/stop: optional {"timeout": 0..3600}, default 60. */
int validate_vm_stop(const json_t *body, unsigned *timeout_s, char err[VALIDATE_ERR_MAX]);

/* POST /api/v1/images: name, path, format (auto|raw|qcow2|vmdk|vhd). */
int validate_image_import(const json_t *body, const struct validate_ctx *vc,
			  struct image_record *out, char err[VALIDATE_ERR_MAX]);

/* true when the string is "true"/"1" (query flags such as ?force=true). */
bool validate_flag(const char *s);

#endif
