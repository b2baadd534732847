/* herd nodes — the swarm as one node sees it: GET URL/v1/nodes, as a table or (--json) the
 * node's JSON unchanged. The table is the same as FIND_NODES without filters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "net.h"

static int usage_error(const char *msg)
{
	fprintf(stderr, "herd nodes: %s\nusage: herd nodes --to URL [--json]\n", msg);
	return 2;
}

static void print_table(const json_t *reply)
{
	json_t *nodes = json_object_get(reply, "nodes"), *n;
	size_t i;
	printf("swarm %s, seen by %s: %zu node(s)\n",
	       json_string_value(json_object_get(reply, "swarm")) ?: "?",
	       json_string_value(json_object_get(reply, "peer_id")) ?: "?", json_array_size(nodes));
	printf("%-32s  %-21s %5s %8s %5s %6s %4s %5s %6s %8s  %s\n", "PEER ID", "ADDRESS", "CORES",
	       "MEM_MB", "SLOTS", "LOAD", "REP", "OK", "FAILED", "EFF_TPS", "MODELS");
	json_array_foreach(nodes, i, n)
	{
		char models[512] = "";
		size_t len = 0, k;
		json_t *m;
		json_array_foreach(json_object_get(n, "models"), k, m)
		{
			const char *name = json_string_value(json_object_get(m, "name"));
			len += (size_t)snprintf(models + len, sizeof models - len, "%s%s",
						k ? "," : "", name ? name : "?");
			if (len >= sizeof models)
				break;
		}
		const char *mark = json_is_true(json_object_get(n, "self"))	   ? " (self)"
				   : json_is_false(json_object_get(n, "verified")) ? " (unverified)"
										   : "";
		/* this node's experience of the peer across jobs (standing.c) */
		json_t *st = json_object_get(n, "standing");
		char eff[32] = "-";
		if (json_is_number(json_object_get(st, "effective_tps")))
			snprintf(eff, sizeof eff, "%.0f",
				 json_number_value(json_object_get(st, "effective_tps")));
		printf("%-32s  %-21s %5lld %8lld %5lld %6.2f %4.2f %5lld %6lld %8s  %s%s\n",
		       json_string_value(json_object_get(n, "peer_id")) ?: "?",
		       json_string_value(json_object_get(n, "address")) ?: "?",
		       (long long)json_integer_value(json_object_get(n, "cpu_cores")),
		       (long long)json_integer_value(json_object_get(n, "memory_mb")),
		       (long long)json_integer_value(json_object_get(n, "slots")),
		       json_number_value(json_object_get(n, "load_ratio")),
		       json_number_value(json_object_get(n, "reputation")),
		       (long long)json_integer_value(json_object_get(st, "completed")),
		       (long long)json_integer_value(json_object_get(st, "failed")), eff, models,
		       mark);
	}
}

int herd_cmd_nodes(int argc, char **argv)
{
	const char *to = NULL;
	bool as_json = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--to") && i + 1 < argc)
			to = argv[++i];
		else if (!strcmp(argv[i], "--json"))
			as_json = true;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("usage: herd nodes --to URL [--json]\n");
			return 0;
		} else {
			char msg[300];
			snprintf(msg, sizeof msg, "unknown or incomplete argument '%.200s'",
				 argv[i]);
			return usage_error(msg);
		}
	}
	if (!to)
		return usage_error("--to URL: required");
	if (strncmp(to, "http://", 7) && strncmp(to, "https://", 8))
		return usage_error("--to: must be an http:// or https:// URL");
	char url[2048];
	size_t tl = strlen(to);
	while (tl && to[tl - 1] == '/')
		tl--;
	if (snprintf(url, sizeof url, "%.*s/v1/nodes", (int)tl, to) >= (int)sizeof url)
		return usage_error("--to: URL too long");
	long status = 0;
	json_t *reply = NULL;
	if (herd_http_get_json(url, 0, &status, &reply)) {
		fprintf(stderr, "herd nodes: %s\n", herd_last_error());
		return 1;
	}
	if (status != 200 || !json_is_array(json_object_get(reply, "nodes"))) {
		json_t *e = json_object_get(reply, "error");
		fprintf(stderr, "herd nodes: %s answered HTTP %ld: %s\n", url, status,
			json_string_value(json_object_get(e, "message")) ?: "no node table");
		json_decref(reply);
		return 1;
	}
	if (as_json) {
		char *s = json_dumps(reply, JSON_INDENT(2) | JSON_SORT_KEYS);
		puts(s);
		free(s);
	} else {
		print_table(reply);
	}
	json_decref(reply);
	return 0;
}
