/* herd demo [MODEL] — a whole swarm on this machine, end to end: starts three `herd node`
 * child processes (this same binary) on free 127.0.0.1 ports, the first with the other two
 * as peers, submits a short story in six fragments to it, streams the progress, prints
 * which node ran which fragment and the combined output, and stops the nodes with SIGTERM.
 * The one thing to know: the nodes learn their ports themselves (--listen 127.0.0.1:0) and
 * say them on stderr, which goes to a log file per node that the demo reads. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "proto.h"
#include "submit.h"

#define DEMO_NODES 3
#define DEMO_START_TIMEOUT_MS 15000

/* A TinyStories-like story written for herd's demo. */
static const char story[] =
    "Once upon a time, in a small town by the sea, there lived a girl named Mia. Mia had a "
    "little boat with a white sail, and every morning she watched the fishermen go out.\n\n"
    "One day, a big gray cloud came over the water. The wind blew hard and the waves grew "
    "tall. Mia saw a small boat far away. A boy in the boat was waving his arms.\n\n"
    "Mia ran to her grandpa. \"Grandpa, a boy needs help!\" she said. Grandpa took his rope "
    "and his big coat, and they went down to the water together.\n\n"
    "They rowed and rowed. The rain was cold, but Mia was brave. At last they reached the "
    "boy and tied his boat to theirs with the rope.\n\n"
    "When they came back to the beach, the boy's mother was waiting. She hugged him and "
    "thanked Mia and her grandpa again and again.\n\n"
    "From that day on, the boy came to play with Mia every morning. They watched the boats "
    "together, and Mia taught him how to tie a good knot.";

struct demo_node {
	pid_t pid;
	char log[64];
	char url[128];
	char id[80];
};

static const char *node_name(const struct demo_node *nodes, const char *id)
{
	static const char *names[DEMO_NODES] = {"node A", "node B", "node C"};
	for (int i = 0; i < DEMO_NODES; i++)
		if (id && !strcmp(nodes[i].id, id))
			return names[i];
	return "?";
}

static bool spawn(struct demo_node *d, const char *self, const char *model, char **peers,
		  int n_peers)
{
	snprintf(d->log, sizeof d->log, "/tmp/herd-demo-%d-XXXXXX", (int)getpid());
	int fd = mkstemp(d->log);
	if (fd < 0) {
		fprintf(stderr, "herd demo: %s: %s\n", d->log, strerror(errno));
		return false;
	}
	char *argv[32];
	int a = 0;
	argv[a++] = (char *)self;
	argv[a++] = "node";
	argv[a++] = "--listen";
	argv[a++] = "127.0.0.1:0";
	argv[a++] = "-m";
	argv[a++] = (char *)model;
	argv[a++] = "--slots";
	argv[a++] = "1";
	argv[a++] = "--threads";
	argv[a++] = "1";
	for (int i = 0; i < n_peers; i++) {
		argv[a++] = "--peer";
		argv[a++] = peers[i];
	}
	argv[a] = NULL;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "herd demo: fork: %s\n", strerror(errno));
		close(fd);
		return false;
	}
	if (pid == 0) {
		dup2(fd, STDERR_FILENO);
		int devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0)
			dup2(devnull, STDOUT_FILENO);
		execv(self, argv);
		_exit(127);
	}
	close(fd);
	d->pid = pid;
	return true;
}

/* Waits for "herd node <id> listening on http://HOST:PORT" in the node's log. */
static bool wait_listening(struct demo_node *d)
{
	double until = herd_now_ms() + DEMO_START_TIMEOUT_MS;
	while (herd_now_ms() < until) {
		FILE *fp = fopen(d->log, "r");
		char line[512];
		while (fp && fgets(line, sizeof line, fp)) {
			char id[80], url[128];
			if (sscanf(line, "herd node %79s listening on %127s", id, url) == 2) {
				fclose(fp);
				snprintf(d->id, sizeof d->id, "%s", id);
				snprintf(d->url, sizeof d->url, "%s", url);
				return true;
			}
		}
		if (fp)
			fclose(fp);
		int st;
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			d->pid = 0;
			break;
		}
		usleep(50 * 1000);
	}
	fprintf(stderr, "herd demo: a node did not start; its log (%s):\n", d->log);
	FILE *fp = fopen(d->log, "r");
	char line[512];
	while (fp && fgets(line, sizeof line, fp))
		fputs(line, stderr);
	if (fp)
		fclose(fp);
	return false;
}

/* SIGTERM, then wait; true when the node exited 0. */
static bool stop(struct demo_node *d)
{
	bool ok = true;
	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		int st = 0;
		while (waitpid(d->pid, &st, 0) < 0 && errno == EINTR)
			;
		ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
		d->pid = 0;
	}
	if (d->log[0])
		unlink(d->log);
	return ok;
}

static void on_fragment(const json_t *f, void *ud)
{
	const struct demo_node *nodes = ud;
	const char *id = json_string_value(json_object_get(f, "node_id"));
	fprintf(stderr, "%s  fragment %lld done on %s (%s): %lld tokens in %.0f ms\n",
		isatty(STDERR_FILENO) ? "\r\033[K" : "",
		(long long)json_integer_value(json_object_get(f, "fragment_index")),
		node_name(nodes, id), id ? id : "?",
		(long long)json_integer_value(json_object_get(f, "tokens_generated")),
		json_number_value(json_object_get(f, "processing_time_ms")));
}

int herd_cmd_demo(int argc, char **argv)
{
	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fprintf(stderr, "usage: herd demo [MODEL]\n");
		return argc == 2 && !strcmp(argv[1], "--help") ? 0 : 2;
	}
	const char *model = argc == 2 ? argv[1] : HERD_SHARED_DIR "/models/stories260K.gguf";
	if (access(model, R_OK) != 0) {
		fprintf(stderr, "herd demo: %s: %s\n", model, strerror(errno));
		return 2;
	}
	/* the model's request name: the file name without .gguf (as herd node names it) */
	const char *base = strrchr(model, '/') ? strrchr(model, '/') + 1 : model;
	char name[256];
	snprintf(name, sizeof name, "%s", base);
	size_t nl = strlen(name);
	if (nl > 5 && !strcmp(name + nl - 5, ".gguf"))
		name[nl - 5] = '\0';
	char self[4096];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
	if (sl <= 0) {
		fprintf(stderr, "herd demo: cannot find my own binary: %s\n", strerror(errno));
		return 1;
	}
	self[sl] = '\0';

	struct demo_node nodes[DEMO_NODES] = {0};
	int rc = 1;
	json_t *answer = NULL;
	fprintf(stderr, "starting three nodes with %s ...\n", model);
	/* B and C first, then A with them as peers: A coordinates */
	for (int i = 1; i < DEMO_NODES; i++)
		if (!spawn(&nodes[i], self, model, NULL, 0) || !wait_listening(&nodes[i]))
			goto out;
	char *peers[] = {nodes[1].url, nodes[2].url};
	if (!spawn(&nodes[0], self, model, peers, 2) || !wait_listening(&nodes[0]))
		goto out;
	for (int i = 0; i < DEMO_NODES; i++)
		fprintf(stderr, "  %s: %s  id %s%s\n", node_name(nodes, nodes[i].id), nodes[i].url,
			nodes[i].id, i == 0 ? "  (coordinator)" : "");

	struct herd_command *c = herd_command_new(HERD_COMMAND_EXECUTE_TASK, NULL, "herd-demo", "");
	herd_command_with_param(c, "task_type", json_string("llama_inference"));
	herd_command_with_param(c, "model_name", json_string(name));
	herd_command_with_param(c, "input_data", json_string(story));
	herd_command_with_param(c, "num_fragments", json_integer(6));
	herd_command_with_param(c, "max_tokens", json_integer(32));
	herd_command_with_param(c, "temperature", json_real(0.0));
	herd_command_with_param(c, "context_overlap", json_integer(128));
	json_t *env = herd_command_to_json(c);
	herd_command_free(c);
	fprintf(stderr, "\nsubmitting a %zu-byte story in six fragments to node A:\n",
		sizeof story - 1);
	struct herd_submit_opts o = {.progress = true, .on_fragment = on_fragment, .ud = nodes};
	enum herd_err e = herd_submit_job(nodes[0].url, env, &o, &answer);
	json_decref(env);
	if (e) {
		fprintf(stderr, "herd demo: %s\n", herd_last_error());
		goto out;
	}
	json_t *res = json_object_get(answer, "result");
	if (strcmp(json_string_value(json_object_get(answer, "status")) ?: "", "success")) {
		fprintf(
		    stderr, "herd demo: the job failed: %s\n",
		    json_string_value(json_object_get(json_object_get(answer, "error"), "message"))
			?: "?");
		goto out;
	}
	printf("\nwhich node ran which fragment (in order):\n");
	size_t i;
	json_t *fr;
	json_array_foreach(json_object_get(res, "fragment_results"), i, fr)
	{
		const char *id = json_string_value(json_object_get(fr, "node_id"));
		printf("  fragment %zu on %s: \"%s\"\n", i, node_name(nodes, id),
		       json_string_value(json_object_get(fr, "output")) ?: "");
	}
	json_t *out = json_object_get(res, "output");
	printf("\ncombined output (%lld tokens from %lld fragments, %.0f ms):\n%s\n",
	       (long long)json_integer_value(json_object_get(res, "total_tokens")),
	       (long long)json_integer_value(json_object_get(res, "fragments_processed")),
	       json_number_value(json_object_get(res, "wall_time_ms")),
	       json_string_value(out) ?: "");
	rc = 0;
out:
	fflush(stdout);
	for (int k = 0; k < DEMO_NODES; k++) {
		bool had = nodes[k].pid > 0;
		if (!stop(&nodes[k]) && had) {
			fprintf(stderr, "herd demo: %s did not stop cleanly\n",
				node_name(nodes, nodes[k].id));
			rc = 1;
		}
	}
	if (rc == 0)
		fprintf(stderr, "stopped the three nodes.\n");
	json_decref(answer);
	return rc;
}
