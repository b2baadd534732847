/* herd node — runs one node of the swarm until SIGINT/SIGTERM: the HTTP API, the worker
 * with its models, the coordinator and (with a DHT flag) discovery. Prints one line
 * `herd node <id> listening on http://HOST:PORT` to stderr once it serves, so that scripts
 * can read the port of `--listen 127.0.0.1:0`. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "limits.h"
#include "node.h"

#define USAGE                                                                                      \
	"usage: herd node --listen HOST:PORT [--advertise HOST:PORT] [--peer URL]... "             \
	"[-m [NAME=]MODEL]...\n"                                                                   \
	"                 [--data-dir DIR] [--threads T] [--slots K] [--dht-port P] "              \
	"[--bootstrap HOST:PORT]...\n"                                                             \
	"                 [--swarm NAME] [--cores N] [--memory-mb N]\n"                            \
	"  A DHT flag (--dht-port, --bootstrap, --swarm) starts discovery (OpenDHT).\n"

#define bad(...) herd_cli_usage("node", USAGE, __VA_ARGS__)

/* "HOST:PORT" → host (copied into buf) and port. */
static bool split_host_port(const char *s, char *host, size_t size, long *port)
{
	const char *colon = s ? strrchr(s, ':') : NULL;
	if (!colon || colon == s || (size_t)(colon - s) >= size)
		return false;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	if (host[0] == '[') { /* [::1]:80 */
		size_t l = strlen(host);
		if (host[l - 1] != ']')
			return false;
		memmove(host, host + 1, l - 2);
		host[l - 2] = '\0';
	}
	return herd_cli_parse_long(colon + 1, 0, 65535, port);
}

/* The file name without directories and without ".gguf". */
static char *default_name(const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	size_t len = strlen(base);
	if (len > 5 && !strcmp(base + len - 5, ".gguf"))
		len -= 5;
	char *s = malloc(len + 1);
	memcpy(s, base, len);
	s[len] = '\0';
	return s;
}

int herd_cmd_node(int argc, char **argv)
{
	struct herd_node_params p = herd_node_default_params();
	const char *listen = NULL, *peers[HERD_NODE_MAX_PEERS], *boot[HERD_DHT_MAX_BOOTSTRAP];
	struct herd_node_model models[HERD_NODE_MAX_MODELS];
	char *names[HERD_NODE_MAX_MODELS] = {0};
	size_t n_peers = 0, n_boot = 0, n_models = 0;
	char host[256];
	long v;
	int rc = 2;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			printf(USAGE);
			rc = 0;
			goto out;
		}
		if (!val) {
			rc = bad("%s: needs a value", a);
			goto out;
		}
		i++;
		if (!strcmp(a, "--listen")) {
			listen = val;
		} else if (!strcmp(a, "--advertise")) {
			p.advertise = val;
		} else if (!strcmp(a, "--peer")) {
			if (n_peers == HERD_NODE_MAX_PEERS) {
				rc = bad("%s: too many (at most 256)", a);
				goto out;
			}
			peers[n_peers++] = val;
		} else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
			if (n_models == HERD_NODE_MAX_MODELS) {
				rc = bad("%s: too many models (at most 8)", a);
				goto out;
			}
			const char *eq = strchr(val, '=');
			if (eq && eq != val) {
				names[n_models] = strndup(val, (size_t)(eq - val));
				models[n_models].path = eq + 1;
			} else {
				names[n_models] = default_name(val);
				models[n_models].path = val;
			}
			models[n_models].name = names[n_models];
			n_models++;
		} else if (!strcmp(a, "--data-dir")) {
			p.data_dir = val;
		} else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) {
			if (!herd_cli_parse_long(val, 1, HERD_MAX_THREADS, &v)) {
				rc = bad("%s: must be an integer 1..512, got '%s'", a, val);
				goto out;
			}
			p.threads = (int)v;
		} else if (!strcmp(a, "--slots")) {
			if (!herd_cli_parse_long(val, 1, HERD_MAX_SLOTS, &v)) {
				rc = bad("%s: must be an integer 1..256, got '%s'", a, val);
				goto out;
			}
			p.slots = (int)v;
		} else if (!strcmp(a, "--dht-port")) {
			if (!herd_cli_parse_long(val, 0, 65535, &v)) {
				rc = bad("%s: must be a port 0..65535, got '%s'", a, val);
				goto out;
			}
			p.dht = true;
			p.dht_port = (uint16_t)v;
		} else if (!strcmp(a, "--bootstrap")) {
			if (n_boot == HERD_DHT_MAX_BOOTSTRAP) {
				rc = bad("%s: too many (at most 64)", a);
				goto out;
			}
			p.dht = true;
			boot[n_boot++] = val;
		} else if (!strcmp(a, "--swarm")) {
			p.dht = true;
			p.swarm = val;
		} else if (!strcmp(a, "--cores")) {
			if (!herd_cli_parse_long(val, 1, 65536, &v)) {
				rc = bad("%s: must be an integer 1..65536, got '%s'", a, val);
				goto out;
			}
			p.cores = (int)v;
		} else if (!strcmp(a, "--memory-mb")) {
			if (!herd_cli_parse_long(val, 1, 1L << 40, &v)) {
				rc = bad("%s: must be a positive integer, got '%s'", a, val);
				goto out;
			}
			p.memory_mb = v;
		} else {
			rc = bad("unknown argument '%s'", a);
			goto out;
		}
	}
	if (!listen) {
		rc = bad("--listen HOST:PORT is required");
		goto out;
	}
	if (!split_host_port(listen, host, sizeof host, &v)) {
		rc = bad("--listen: must be HOST:PORT (port 0..65535), got '%s'", listen);
		goto out;
	}
	p.host = host;
	p.port = (uint16_t)v;
	p.peers = peers;
	p.n_peers = n_peers;
	p.bootstrap = boot;
	p.n_bootstrap = n_boot;
	p.models = models;
	p.n_models = n_models;

	/* Block the stop signals in every thread; this one waits for them. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	struct herd_node *n = NULL;
	enum herd_err e = herd_node_start(&p, &n);
	if (e) {
		fprintf(stderr, "herd node: %s\n", herd_last_error());
		rc = e == HERD_ERR_BAD_INPUT || e == HERD_ERR_LIMIT ? 2 : 1;
		goto out;
	}
	fprintf(stderr, "herd node %s listening on %s\n", herd_node_id(n), herd_node_url(n));
	fflush(stderr);
	int sig = 0;
	sigwait(&set, &sig);
	fprintf(stderr, "herd node: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
	herd_node_free(n);
	fprintf(stderr, "herd node: stopped\n");
	rc = 0;
out:
	for (size_t i = 0; i < n_models; i++)
		free(names[i]);
	return rc;
}
