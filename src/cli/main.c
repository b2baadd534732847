/* herd — entry point: dispatches to the subcommands of cli.h.
 * Subcommands are weak references, so a part that is not built yet says so instead of
 * breaking the link. */
#include <stdio.h>
#include <string.h>

#include "base.h"
#include "cli.h"

#pragma weak herd_cmd_generate
#pragma weak herd_cmd_tokenize
#pragma weak herd_cmd_perplexity
#pragma weak herd_cmd_bench
#pragma weak herd_cmd_gguf
#pragma weak herd_cmd_synth
#pragma weak herd_cmd_split
#pragma weak herd_cmd_node
#pragma weak herd_cmd_submit
#pragma weak herd_cmd_nodes
#pragma weak herd_cmd_demo

static const struct {
	const char *name;
	herd_cmd_fn *fn;
	const char *usage;
} cmds[] = {
	{"generate", herd_cmd_generate,
	 "-m MODEL [-p PROMPT | -f FILE] [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] "
	 "[--seed S] [-t THREADS] [-c CTX] [--ids] [--json]"},
	{"tokenize", herd_cmd_tokenize, "-m MODEL -p TEXT [--no-bos]"},
	{"perplexity", herd_cmd_perplexity, "-m MODEL -f FILE -c N [-t THREADS] [--json]"},
	{"bench", herd_cmd_bench, "-m MODEL [-p 128] [-n 128] [-t THREADS] [--json] [--membw]"},
	{"gguf", herd_cmd_gguf, "MODEL"},
	{"synth", herd_cmd_synth, "--shape NAME --type TYPE --vocab-from MODEL -o OUT.gguf [--seed S]"},
	{"split", herd_cmd_split, "[--fragments N] < request.json"},
	{"node", herd_cmd_node,
	 "--listen HOST:PORT [--dht-port P] [--bootstrap HOST:PORT]... [-m [NAME=]MODEL]... "
	 "[--data-dir DIR] [--threads T] [--slots K]"},
	{"submit", herd_cmd_submit,
	 "--to URL (REQUEST.json | -f TEXT_FILE --model NAME [--fragments N] [--max-tokens N] ...) "
	 "[--stream] [--json]"},
	{"nodes", herd_cmd_nodes, "--to URL [--json]"},
	{"demo", herd_cmd_demo, ""},
};
#define NCMDS (sizeof cmds / sizeof cmds[0])

static void usage(FILE *f)
{
	fprintf(f, "herd %s — Llama inference spread over a swarm of nodes\n\nusage:\n", HERD_VERSION);
	for (size_t i = 0; i < NCMDS; i++)
		fprintf(f, "  herd %-10s %s\n", cmds[i].name, cmds[i].usage);
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("herd %s\n", HERD_VERSION);
		return 0;
	}
	for (size_t i = 0; i < NCMDS; i++) {
		if (strcmp(argv[1], cmds[i].name))
			continue;
		if (!cmds[i].fn) {
			fprintf(stderr, "herd %s: not available in this build yet\n", cmds[i].name);
			return 1;
		}
		return cmds[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "herd: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
