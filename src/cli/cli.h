/* cli — the `herd` command. Each subcommand lives in cmd_<name>.c and is declared here.
 * A subcommand returns the process exit status: 0 ok, 1 failure, 2 bad usage or bad input. */
#ifndef HERD_CLI_H
#define HERD_CLI_H

typedef int herd_cmd_fn(int argc, char **argv); /* argv[0] is the subcommand's name */

herd_cmd_fn herd_cmd_generate, herd_cmd_tokenize, herd_cmd_perplexity, herd_cmd_bench,
	herd_cmd_gguf, herd_cmd_synth, herd_cmd_split, herd_cmd_node, herd_cmd_submit,
	herd_cmd_nodes, herd_cmd_demo;

#endif
