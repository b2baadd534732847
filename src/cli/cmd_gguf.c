/* herd gguf MODEL — a GGUF file's metadata and tensor table. Long arrays are summarized. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "engine.h"

#define SHOW_ARRAY 8    /* array elements printed before "..." */
#define SHOW_STRING 120 /* string bytes printed before "..." */

static void print_str(struct herd_gguf_str s)
{
	putchar('"');
	for (uint64_t i = 0; i < s.len && i < SHOW_STRING; i++) {
		unsigned char ch = (unsigned char)s.ptr[i];
		if (ch == '\n')
			fputs("\\n", stdout);
		else if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\x%02x", ch);
		else
			putchar(ch);
	}
	fputs(s.len > SHOW_STRING ? "\"..." : "\"", stdout);
}

static void print_scalar(const struct herd_gguf *g, int64_t i, enum herd_gguf_vtype t, int64_t j)
{
	int64_t iv;
	double fv;
	if (t == HERD_GGUF_STRING)
		print_str(j < 0 ? herd_gguf_kv_str(g, i) : herd_gguf_arr_str(g, i, (uint64_t)j));
	else if (t == HERD_GGUF_BOOL && (j < 0 ? herd_gguf_kv_int(g, i, &iv) : herd_gguf_arr_int(g, i, j, &iv)))
		fputs(iv ? "true" : "false", stdout);
	else if ((t == HERD_GGUF_FLOAT32 || t == HERD_GGUF_FLOAT64) &&
		 (j < 0 ? herd_gguf_kv_float(g, i, &fv) : herd_gguf_arr_float(g, i, j, &fv)))
		printf("%g", fv);
	else if (j < 0 ? herd_gguf_kv_int(g, i, &iv) : herd_gguf_arr_int(g, i, j, &iv))
		printf("%lld", (long long)iv);
	else
		fputs("?", stdout);
}

int herd_cmd_gguf(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: herd gguf MODEL\n");
		return 2;
	}
	struct herd_gguf *g;
	if (herd_gguf_open(argv[1], &g)) {
		fprintf(stderr, "herd gguf: %s\n", herd_last_error());
		return 1;
	}
	printf("GGUF v%u, %llu bytes, %lld metadata pairs, %lld tensors, alignment %llu, data at %llu\n\n",
	       herd_gguf_version(g), (unsigned long long)herd_gguf_file_size(g), (long long)herd_gguf_kv_count(g),
	       (long long)herd_gguf_tensor_count(g), (unsigned long long)herd_gguf_alignment(g),
	       (unsigned long long)herd_gguf_data_offset(g));
	for (int64_t i = 0; i < herd_gguf_kv_count(g); i++) {
		struct herd_gguf_str k = herd_gguf_kv_key(g, i);
		enum herd_gguf_vtype t = herd_gguf_kv_type(g, i);
		printf("%-44.*s ", (int)k.len, k.ptr);
		if (t == HERD_GGUF_ARRAY) {
			enum herd_gguf_vtype at = herd_gguf_arr_type(g, i);
			uint64_t n = herd_gguf_arr_len(g, i);
			printf("%s[%llu] [", herd_gguf_vtype_name(at), (unsigned long long)n);
			for (uint64_t j = 0; j < n && j < SHOW_ARRAY; j++) {
				if (j)
					fputs(", ", stdout);
				print_scalar(g, i, at, (int64_t)j);
			}
			fputs(n > SHOW_ARRAY ? ", ...]\n" : "]\n", stdout);
		} else {
			printf("%s ", herd_gguf_vtype_name(t));
			print_scalar(g, i, t, -1);
			putchar('\n');
		}
	}
	if (herd_gguf_tensor_count(g))
		printf("\n%-5s %-32s %-7s %-28s %12s %12s\n", "#", "tensor", "type", "shape", "bytes", "offset");
	uint64_t counts[HERD_TYPE_COUNT] = {0};
	for (int64_t i = 0; i < herd_gguf_tensor_count(g); i++) {
		const struct herd_tensor *t = herd_gguf_tensor(g, i);
		char shape[64];
		int n = snprintf(shape, sizeof shape, "[%lld", (long long)t->ne[0]);
		for (int d = 1; d < t->n_dims; d++)
			n += snprintf(shape + n, sizeof shape - (size_t)n, ", %lld", (long long)t->ne[d]);
		snprintf(shape + n, sizeof shape - (size_t)n, "]");
		printf("%-5lld %-32s %-7s %-28s %12llu %12llu\n", (long long)i, t->name, herd_type_name(t->type), shape,
		       (unsigned long long)t->nbytes, (unsigned long long)t->offset);
		counts[t->type]++;
	}
	if (herd_gguf_tensor_count(g)) {
		fputs("\ntypes:", stdout);
		for (int t = 0; t < HERD_TYPE_COUNT; t++)
			if (counts[t])
				printf(" %llu %s", (unsigned long long)counts[t], herd_type_name(t));
		putchar('\n');
	}
	herd_gguf_close(g);
	return 0;
}
