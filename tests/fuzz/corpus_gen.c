/* fuzz_corpus_gen OUT_DIR — writes the generated seeds of the fuzz targets: tiny valid GGUF
 * files (models with a few-token vocabulary, vocab-only files, every metadata value type),
 * truncated heads of the real models in ../shared, and signed capability records. Inputs
 * from files are too big for a fuzzer to mutate well; these are a few KiB each. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine.h"
#include "swarm.h"

#define CAP_EPOCH_MS 1700000000000ll /* fuzz_capability decodes at this time + 1 s */

struct buf {
	uint8_t *p;
	size_t n;
};

static void put(struct buf *b, const void *x, size_t n)
{
	b->p = realloc(b->p, b->n + n);
	memcpy(b->p + b->n, x, n);
	b->n += n;
}
static void put_u32(struct buf *b, uint32_t v)
{
	put(b, &v, 4);
}
static void put_u64(struct buf *b, uint64_t v)
{
	put(b, &v, 8);
}
static void put_str(struct buf *b, const char *s)
{
	put_u64(b, strlen(s));
	put(b, s, strlen(s));
}

/* Raw value of a GGUF array of strings. */
static struct buf str_array(const char *const *s, size_t n)
{
	struct buf b = {0};
	put_u32(&b, HERD_GGUF_STRING);
	put_u64(&b, n);
	for (size_t i = 0; i < n; i++)
		put_str(&b, s[i]);
	return b;
}

static void raw_array(struct herd_gguf_writer *w, const char *key, uint32_t type, const void *v,
		      size_t n, size_t esize)
{
	struct buf b = {0};
	put_u32(&b, type);
	put_u64(&b, n);
	put(&b, v, n * esize);
	herd_gguf_writer_raw(w, key, HERD_GGUF_ARRAY, b.p, b.n);
	free(b.p);
}

static void add_vocab(struct herd_gguf_writer *w, bool bpe)
{
	static const char *const spm[] = {
	    "<unk>", "<s>",    "</s>",	"\xe2\x96\x81", "a", "b", "\xe2\x96\x81\x61",
	    "ab",    "<0x0A>", "<0x41>"};
	static const char *const gpt2[] = {"<|endoftext|>", "a",  "b", "\xc4\xa0",
					   "\xc4\xa0\x61",  "ab", "1", "!"};
	static const char *const merges[] = {"\xc4\xa0 a", "a b"};
	const char *const *tok = bpe ? gpt2 : spm;
	size_t n = bpe ? sizeof gpt2 / sizeof *gpt2 : sizeof spm / sizeof *spm;
	herd_gguf_writer_str(w, "tokenizer.ggml.model", bpe ? "gpt2" : "llama");
	if (bpe)
		herd_gguf_writer_str(w, "tokenizer.ggml.pre", "gpt-2");
	struct buf b = str_array(tok, n);
	herd_gguf_writer_raw(w, "tokenizer.ggml.tokens", HERD_GGUF_ARRAY, b.p, b.n);
	free(b.p);
	float scores[16];
	int32_t types[16];
	for (size_t i = 0; i < n; i++) {
		scores[i] = -(float)i;
		types[i] = i < 3 ? 3 : (strncmp(tok[i], "<0x", 3) == 0 ? 6 : 1);
	}
	raw_array(w, "tokenizer.ggml.scores", HERD_GGUF_FLOAT32, scores, n, 4);
	raw_array(w, "tokenizer.ggml.token_type", HERD_GGUF_INT32, types, n, 4);
	if (bpe) {
		b = str_array(merges, 2);
		herd_gguf_writer_raw(w, "tokenizer.ggml.merges", HERD_GGUF_ARRAY, b.p, b.n);
		free(b.p);
		herd_gguf_writer_u32(w, "tokenizer.ggml.bos_token_id", 0);
		herd_gguf_writer_u32(w, "tokenizer.ggml.eos_token_id", 0);
	} else {
		herd_gguf_writer_u32(w, "tokenizer.ggml.bos_token_id", 1);
		herd_gguf_writer_u32(w, "tokenizer.ggml.eos_token_id", 2);
		herd_gguf_writer_u32(w, "tokenizer.ggml.unknown_token_id", 0);
	}
}

static int32_t vocab_len(bool bpe)
{
	return bpe ? 8 : 10;
}

static void save(struct herd_gguf_writer *w, const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (herd_gguf_writer_save(w, path) != HERD_OK) {
		fprintf(stderr, "fuzz_corpus_gen: %s\n", herd_last_error());
		exit(1);
	}
	herd_gguf_writer_free(w);
}

/* A whole Llama of n_embd e (2 heads), n_ff f, one or two layers, tensors of type t. */
static void tiny_model(const char *dir, const char *name, enum herd_type t, int e, int f,
		       int layers, bool bpe, bool tied)
{
	struct herd_gguf_writer *w = herd_gguf_writer_new(0);
	herd_gguf_writer_str(w, "general.architecture", "llama");
	herd_gguf_writer_str(w, "general.name", name);
	herd_gguf_writer_u32(w, "llama.context_length", 16);
	herd_gguf_writer_u32(w, "llama.embedding_length", (uint32_t)e);
	herd_gguf_writer_u32(w, "llama.feed_forward_length", (uint32_t)f);
	herd_gguf_writer_u32(w, "llama.block_count", (uint32_t)layers);
	herd_gguf_writer_u32(w, "llama.attention.head_count", 2);
	herd_gguf_writer_u32(w, "llama.attention.head_count_kv", 1);
	herd_gguf_writer_u32(w, "llama.rope.dimension_count", (uint32_t)e / 2);
	herd_gguf_writer_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
	herd_gguf_writer_f32(w, "llama.rope.freq_base", 10000.0f);
	add_vocab(w, bpe);
	int64_t V = vocab_len(bpe), E = e, F = f, KV = e / 2;
	enum herd_type nt = HERD_TYPE_F32;
	herd_gguf_writer_tensor(w, "token_embd.weight", t, 2, (int64_t[]){E, V}, NULL, NULL);
	herd_gguf_writer_tensor(w, "output_norm.weight", nt, 1, (int64_t[]){E}, NULL, NULL);
	if (!tied)
		herd_gguf_writer_tensor(w, "output.weight", t, 2, (int64_t[]){E, V}, NULL, NULL);
	for (int l = 0; l < layers; l++) {
		char n[64];
#define T(suffix, type, nd, ...)                                                                   \
	snprintf(n, sizeof n, "blk.%d.%s.weight", l, suffix);                                      \
	herd_gguf_writer_tensor(w, n, type, nd, (int64_t[]){__VA_ARGS__}, NULL, NULL)
		T("attn_norm", nt, 1, E);
		T("attn_q", t, 2, E, E);
		T("attn_k", t, 2, E, KV);
		T("attn_v", t, 2, E, KV);
		T("attn_output", t, 2, E, E);
		T("ffn_norm", nt, 1, E);
		T("ffn_gate", t, 2, E, F);
		T("ffn_up", t, 2, E, F);
		T("ffn_down", t, 2, F, E);
#undef T
	}
	save(w, dir, name);
}

static void gguf_seeds(const char *dir)
{
	tiny_model(dir, "model-f32.gguf", HERD_TYPE_F32, 8, 16, 1, false, false);
	tiny_model(dir, "model-f16-bpe-tied.gguf", HERD_TYPE_F16, 8, 8, 2, true, true);
	tiny_model(dir, "model-q8_0.gguf", HERD_TYPE_Q8_0, 32, 32, 1, false, false);
	tiny_model(dir, "model-q4_0-bpe.gguf", HERD_TYPE_Q4_0, 32, 32, 1, true, false);

	struct herd_gguf_writer *w = herd_gguf_writer_new(0);
	add_vocab(w, false);
	save(w, dir, "vocab-spm.gguf");
	w = herd_gguf_writer_new(0);
	add_vocab(w, true);
	save(w, dir, "vocab-bpe.gguf");

	/* every value type once, and an alignment of 64 */
	w = herd_gguf_writer_new(64);
	herd_gguf_writer_u32(w, "general.alignment", 64);
	uint8_t u8 = 200;
	int8_t i8 = -5;
	uint16_t u16 = 60000;
	int16_t i16 = -300;
	int32_t i32 = -70000;
	uint64_t u64 = 1ull << 40;
	int64_t i64 = -(1ll << 40);
	double f64 = 0.5;
	uint8_t b = 1;
	herd_gguf_writer_raw(w, "u8", HERD_GGUF_UINT8, &u8, 1);
	herd_gguf_writer_raw(w, "i8", HERD_GGUF_INT8, &i8, 1);
	herd_gguf_writer_raw(w, "u16", HERD_GGUF_UINT16, &u16, 2);
	herd_gguf_writer_raw(w, "i16", HERD_GGUF_INT16, &i16, 2);
	herd_gguf_writer_raw(w, "i32", HERD_GGUF_INT32, &i32, 4);
	herd_gguf_writer_raw(w, "u64", HERD_GGUF_UINT64, &u64, 8);
	herd_gguf_writer_raw(w, "i64", HERD_GGUF_INT64, &i64, 8);
	herd_gguf_writer_raw(w, "f64", HERD_GGUF_FLOAT64, &f64, 8);
	herd_gguf_writer_raw(w, "bool", HERD_GGUF_BOOL, &b, 1);
	herd_gguf_writer_f32(w, "f32", 1.5f);
	herd_gguf_writer_str(w, "str", "hello");
	int16_t a16[3] = {1, -2, 3};
	raw_array(w, "arr.i16", HERD_GGUF_INT16, a16, 3, 2);
	double a64[2] = {1.0, -2.5};
	raw_array(w, "arr.f64", HERD_GGUF_FLOAT64, a64, 2, 8);
	uint8_t ab[2] = {0, 1};
	raw_array(w, "arr.bool", HERD_GGUF_BOOL, ab, 2, 1);
	herd_gguf_writer_tensor(w, "q4k", HERD_TYPE_Q4_K, 2, (int64_t[]){256, 2}, NULL, NULL);
	herd_gguf_writer_tensor(w, "bf16", HERD_TYPE_BF16, 3, (int64_t[]){2, 3, 4}, NULL, NULL);
	save(w, dir, "types.gguf");

	/* truncated heads of real files: the header parser's seeds */
	static const char *const real[] = {"models/stories260K.gguf",
					   "models/vocab/ggml-vocab-gpt-2.gguf",
					   "models/llama-2-tiny-random.gguf"};
	static const size_t cut[] = {512, 4096};
	for (size_t i = 0; i < sizeof real / sizeof *real; i++) {
		char src[4096];
		snprintf(src, sizeof src, "%s/%s", HERD_SHARED_DIR, real[i]);
		FILE *f = fopen(src, "rb");
		if (!f) {
			fprintf(stderr, "fuzz_corpus_gen: %s: %s (skipped)\n", src,
				strerror(errno));
			continue;
		}
		uint8_t head[4096];
		size_t n = fread(head, 1, sizeof head, f);
		fclose(f);
		for (size_t c = 0; c < sizeof cut / sizeof *cut; c++) {
			char dst[4096];
			snprintf(dst, sizeof dst, "%s/head%zu-%zu.gguf", dir, cut[c], i);
			FILE *o = fopen(dst, "wb");
			if (!o || fwrite(head, 1, n < cut[c] ? n : cut[c], o) == 0 ||
			    fclose(o) != 0) {
				fprintf(stderr, "fuzz_corpus_gen: cannot write %s\n", dst);
				exit(1);
			}
		}
	}
}

static void capability_seeds(const char *dir)
{
	struct herd_identity id;
	herd_identity_generate(&id);
	for (int k = 0; k < 3; k++) {
		struct herd_capability cap;
		if (herd_capability_measure(&id, &cap) != HERD_OK) {
			fprintf(stderr, "fuzz_corpus_gen: %s\n", herd_last_error());
			exit(1);
		}
		snprintf(cap.address, sizeof cap.address, k == 1 ? "[::1]:9000" : "127.0.0.1:%d",
			 8080 + k);
		snprintf(cap.swarm, sizeof cap.swarm, "default");
		cap.cpu_cores = 4;
		cap.memory_mb = 8192;
		cap.timestamp_ms = CAP_EPOCH_MS - k * 1000;
		cap.seq = (uint64_t)k;
		cap.slots = 2;
		cap.running = k == 2;
		cap.n_models = k;
		for (int m = 0; m < k; m++) {
			struct herd_model_cap *mc = &cap.models[m];
			snprintf(mc->name, sizeof mc->name, "stories%d", m);
			mc->size_bytes = 1000000;
			memset(mc->sha256, 'a' + m, 64);
			mc->sha256[64] = 0;
			mc->n_tensor_types = 2;
			snprintf(mc->tensor_types[0], sizeof mc->tensor_types[0], "f32");
			snprintf(mc->tensor_types[1], sizeof mc->tensor_types[1], "q8_0");
			mc->tokens_per_s = 123.5 * m;
		}
		char *rec;
		size_t len;
		if (herd_capability_encode(&cap, &id, &rec, &len) != HERD_OK) {
			fprintf(stderr, "fuzz_corpus_gen: %s\n", herd_last_error());
			exit(1);
		}
		char path[4096];
		snprintf(path, sizeof path, "%s/record%d.json", dir, k);
		FILE *o = fopen(path, "wb");
		if (!o || fwrite(rec, 1, len, o) != len || fclose(o) != 0) {
			fprintf(stderr, "fuzz_corpus_gen: cannot write %s\n", path);
			exit(1);
		}
		free(rec);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(
		    stderr,
		    "usage: fuzz_corpus_gen OUT_DIR  (writes OUT_DIR/gguf, OUT_DIR/capability)\n");
		return 2;
	}
	char d[4096];
	mkdir(argv[1], 0755);
	snprintf(d, sizeof d, "%s/gguf", argv[1]);
	mkdir(d, 0755);
	gguf_seeds(d);
	snprintf(d, sizeof d, "%s/capability", argv[1]);
	mkdir(d, 0755);
	capability_seeds(d);
	return 0;
}
