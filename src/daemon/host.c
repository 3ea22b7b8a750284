/* host: GET /api/v1/host (what this machine offers and how VMs run on it),
 * the embedded OpenAPI document and the web UI's index page. */
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "daemon/audit.h"
#include "daemon/daemon.h"
#include "daemon/http.h"

void host_get(struct http_req *req)
{
	struct daemon *d = req->d;
	struct sysinfo si;
	uint64_t mem_mib = 0;
	if (sysinfo(&si) == 0)
		mem_mib = (uint64_t)si.totalram * si.mem_unit / (1024 * 1024);
	long cpus = d->cpus; /* taken once at start: sysconf reads /sys */
	json_t *warnings = json_array();
	if (d->host.warning[0])
		json_array_append_new(warnings, json_string(d->host.warning));
	if (audit_warning(d->audit))
		json_array_append_new(warnings, json_string(audit_warning(d->audit)));
	json_t *j = json_pack("{s:s,s:s,s:i,s:I,s:s,s:o,s:s,s:s,s:I,s:I}", "hostname", d->hostname,
			      "version", "0.1.0", "cpus", (int)(cpus > 0 ? cpus : 1), "memory_mib",
			      (json_int_t)mem_mib, "accel", d->host.accel[0] ? d->host.accel : "tcg",
			      "warnings", warnings, "qemu_version", d->host.qemu_version,
			      "data_dir", d->cfg.data_dir, "vms", (json_int_t)vm_count(d), "images",
			      (json_int_t)image_count(d));
	http_reply_json(req, 200, j);
}

void host_openapi(struct http_req *req)
{
	char *copy = malloc(embed_openapi_json_len);
	if (!copy) {
		http_reply_errorf(req, 500, "internal", "vesseld ran out of memory; retry");
		return;
	}
	memcpy(copy, embed_openapi_json, embed_openapi_json_len);
	http_reply_raw(req, 200, "application/json", copy, embed_openapi_json_len);
}

void host_index(struct http_req *req)
{
	char *copy = malloc(embed_index_html_len);
	if (!copy) {
		http_reply_errorf(req, 500, "internal", "vesseld ran out of memory; retry");
		return;
	}
	memcpy(copy, embed_index_html, embed_index_html_len);
	http_reply_raw(req, 200, "text/html; charset=utf-8", copy, embed_index_html_len);
}
