/* cli — the `herd` command. Each subcommand lives in cmd_<name>.c and is declared here.
 * A subcommand returns the process exit status: 0 ok, 1 failure, 2 bad usage or bad input. */
#ifndef HERD_CLI_H
#define HERD_CLI_H

#include <stdbool.h>

typedef int herd_cmd_fn(int argc, char **argv); /* argv[0] is the subcommand's name */

herd_cmd_fn herd_cmd_generate, herd_cmd_tokenize, herd_cmd_perplexity, herd_cmd_bench,
	herd_cmd_gguf, herd_cmd_synth, herd_cmd_split, herd_cmd_node, herd_cmd_submit,
	herd_cmd_nodes, herd_cmd_demo;

/* Prints "herd CMD: <message>" and the usage text to stderr; returns 2 (bad usage). */
int herd_cli_usage(const char *cmd, const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Parses s as a whole decimal integer in [min, max]; false for anything else (NULL too),
 * leaving *out unchanged. */
bool herd_cli_parse_long(const char *s, long min, long max, long *out);

#endif
