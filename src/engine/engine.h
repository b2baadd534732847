/* engine — herd's own Llama inference on the CPU: GGUF files (mmap'd), quantized tensor types,
 * tokenizers, the forward pass with a KV cache, sampling, generation and perplexity.
 * The engine knows nothing about networks.
 *
 * Ownership: a herd_model is immutable after loading and may be shared by any number of
 * contexts on any threads; a herd_ctx (KV cache, scratch, thread pool) belongs to one thread
 * at a time. Weights stay in the read-only file mapping; nothing is copied. */
#ifndef HERD_ENGINE_H
#define HERD_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"

/* ---- tensor types (ggml's numbering, as stored in GGUF files) ---- */
enum herd_type {
	HERD_TYPE_F32 = 0,
	HERD_TYPE_F16 = 1,
	HERD_TYPE_Q4_0 = 2,
	HERD_TYPE_Q4_1 = 3,
	HERD_TYPE_Q5_0 = 6,
	HERD_TYPE_Q5_1 = 7,
	HERD_TYPE_Q8_0 = 8,
	HERD_TYPE_Q8_1 = 9,
	HERD_TYPE_Q2_K = 10,
	HERD_TYPE_Q3_K = 11,
	HERD_TYPE_Q4_K = 12,
	HERD_TYPE_Q5_K = 13,
	HERD_TYPE_Q6_K = 14,
	HERD_TYPE_Q8_K = 15,
	HERD_TYPE_IQ4_NL = 20,
	HERD_TYPE_BF16 = 30,
	HERD_TYPE_COUNT = 39, /* one past the largest id ggml has used */
};

/* Name ("Q4_K"), or NULL for an id that no ggml version has used. */
const char *herd_type_name(enum herd_type t);
/* Elements per block (1 for F32/F16/BF16) and bytes per block; 0 for an unknown id. */
int herd_type_block_size(enum herd_type t);
size_t herd_type_block_bytes(enum herd_type t);
/* Bytes of a row of n elements (n must be a multiple of the block size). */
size_t herd_type_row_bytes(enum herd_type t, int64_t n);
/* Whether herd can compute with tensors of this type (quant.c). */
bool herd_type_supported(enum herd_type t);
/* Parses a name as herd_type_name prints it (case-insensitive); false if unknown. */
bool herd_type_from_name(const char *name, enum herd_type *out);

/* ---- GGUF files ---- */
struct herd_gguf; /* an open, fully validated, mmap'd GGUF file (v2 or v3) */

/* Opens and validates the whole header (magic, version, counts, strings, value types, array
 * lengths, tensor shapes and offsets, alignment). On error *out is NULL and herd_last_error()
 * says what is wrong and where. The file stays mapped until herd_gguf_close. */
enum herd_err herd_gguf_open(const char *path, struct herd_gguf **out);
void herd_gguf_close(struct herd_gguf *g);

uint32_t herd_gguf_version(const struct herd_gguf *g);
uint64_t herd_gguf_file_size(const struct herd_gguf *g);
uint64_t herd_gguf_alignment(const struct herd_gguf *g);
uint64_t herd_gguf_data_offset(const struct herd_gguf *g); /* start of tensor data */

enum herd_gguf_vtype {
	HERD_GGUF_UINT8 = 0,
	HERD_GGUF_INT8 = 1,
	HERD_GGUF_UINT16 = 2,
	HERD_GGUF_INT16 = 3,
	HERD_GGUF_UINT32 = 4,
	HERD_GGUF_INT32 = 5,
	HERD_GGUF_FLOAT32 = 6,
	HERD_GGUF_BOOL = 7,
	HERD_GGUF_STRING = 8,
	HERD_GGUF_ARRAY = 9,
	HERD_GGUF_UINT64 = 10,
	HERD_GGUF_INT64 = 11,
	HERD_GGUF_FLOAT64 = 12,
	HERD_GGUF_VTYPE_COUNT
};
const char *herd_gguf_vtype_name(enum herd_gguf_vtype t);

/* A string inside the mapping: NOT NUL-terminated; valid until herd_gguf_close. */
struct herd_gguf_str {
	const char *ptr;
	uint64_t len;
};

/* Metadata: keys are indexed 0..count-1 in file order. */
int64_t herd_gguf_kv_count(const struct herd_gguf *g);
struct herd_gguf_str herd_gguf_kv_key(const struct herd_gguf *g, int64_t i);
int64_t herd_gguf_find_kv(const struct herd_gguf *g, const char *key); /* index or -1 */
enum herd_gguf_vtype herd_gguf_kv_type(const struct herd_gguf *g, int64_t i);
/* Scalars of any numeric or bool type, converted (bool: 0/1). Strings: herd_gguf_kv_str. */
bool herd_gguf_kv_int(const struct herd_gguf *g, int64_t i, int64_t *out);   /* false if not integral/bool or out of int64 range */
bool herd_gguf_kv_float(const struct herd_gguf *g, int64_t i, double *out);  /* any numeric */
struct herd_gguf_str herd_gguf_kv_str(const struct herd_gguf *g, int64_t i); /* {NULL,0} if not a string */
/* Arrays: element type and length; elements by index (strings in O(1)). */
enum herd_gguf_vtype herd_gguf_arr_type(const struct herd_gguf *g, int64_t i);
uint64_t herd_gguf_arr_len(const struct herd_gguf *g, int64_t i);
bool herd_gguf_arr_int(const struct herd_gguf *g, int64_t i, uint64_t j, int64_t *out);
bool herd_gguf_arr_float(const struct herd_gguf *g, int64_t i, uint64_t j, double *out);
struct herd_gguf_str herd_gguf_arr_str(const struct herd_gguf *g, int64_t i, uint64_t j);

/* Typed look-ups by key for loaders. HERD_ERR_NOT_FOUND when absent (message names the key),
 * HERD_ERR_FORMAT when present with the wrong type or out of range. */
enum herd_err herd_gguf_get_int(const struct herd_gguf *g, const char *key, int64_t min, int64_t max,
				int64_t *out);
enum herd_err herd_gguf_get_float(const struct herd_gguf *g, const char *key, double *out);
enum herd_err herd_gguf_get_str(const struct herd_gguf *g, const char *key, struct herd_gguf_str *out);
enum herd_err herd_gguf_get_bool(const struct herd_gguf *g, const char *key, bool *out);

/* Tensors, in file order. ne[0] is the contiguous row length; unused dims are 1. */
struct herd_tensor {
	const char *name; /* NUL-terminated copy */
	enum herd_type type;
	int n_dims;
	int64_t ne[4];
	uint64_t offset;  /* from the start of tensor data */
	uint64_t nbytes;
	const void *data; /* inside the read-only mapping, or the model's packed copy */
	bool packed;	  /* data is 16-row interleaved (herd_x16_pack), not the file's rows */
};
int64_t herd_gguf_tensor_count(const struct herd_gguf *g);
const struct herd_tensor *herd_gguf_tensor(const struct herd_gguf *g, int64_t i);
const struct herd_tensor *herd_gguf_find_tensor(const struct herd_gguf *g, const char *name);

/* ---- writing GGUF files (herd synth, tests) ---- */
struct herd_gguf_writer;
struct herd_gguf_writer *herd_gguf_writer_new(uint64_t alignment); /* 0 = 32 */
void herd_gguf_writer_free(struct herd_gguf_writer *w);
/* Metadata, in the order added. Strings and arrays are copied. */
void herd_gguf_writer_u32(struct herd_gguf_writer *w, const char *key, uint32_t v);
void herd_gguf_writer_f32(struct herd_gguf_writer *w, const char *key, float v);
void herd_gguf_writer_bool(struct herd_gguf_writer *w, const char *key, bool v);
void herd_gguf_writer_str(struct herd_gguf_writer *w, const char *key, const char *v);
/* Copies metadata pair i of g (any type, arrays included) under its own key. */
void herd_gguf_writer_copy_kv(struct herd_gguf_writer *w, const struct herd_gguf *g, int64_t i);
/* Raw pair: the value bytes exactly as GGUF stores them after the type (tests use this to
 * write malformed values). */
void herd_gguf_writer_raw(struct herd_gguf_writer *w, const char *key, uint32_t vtype, const void *val,
			  size_t len);
/* A tensor whose bytes fill(ud, index, buf, nbytes) writes when the file is saved (so huge
 * files need no buffer of their size); ne has n_dims entries, ne[0] = row length. */
typedef void herd_gguf_fill_fn(void *ud, int64_t index, void *buf, uint64_t nbytes);
void herd_gguf_writer_tensor(struct herd_gguf_writer *w, const char *name, enum herd_type type, int n_dims,
			     const int64_t *ne, herd_gguf_fill_fn *fill, void *ud);
enum herd_err herd_gguf_writer_save(struct herd_gguf_writer *w, const char *path);

/* ---- tokenizer ---- */
struct herd_vocab;

/* Reads tokenizer.ggml.* from a GGUF: model "llama" (SentencePiece-style with byte fallback)
 * or "gpt2" (byte-level BPE with its pre-tokenizer). The vocab points into g's mapping, so g
 * must outlive it. */
enum herd_err herd_vocab_load(const struct herd_gguf *g, struct herd_vocab **out);
void herd_vocab_free(struct herd_vocab *v);
int32_t herd_vocab_size(const struct herd_vocab *v);
int32_t herd_vocab_bos(const struct herd_vocab *v); /* -1 when none */
int32_t herd_vocab_eos(const struct herd_vocab *v);
bool herd_vocab_add_bos(const struct herd_vocab *v); /* tokenizer.ggml.add_bos_token, or the model's default */
/* Text to ids. *ids is allocated (caller frees); add_bos prepends BOS when the vocab has one.
 * Special tokens in the text are not parsed (they tokenize as plain text). */
enum herd_err herd_tokenize(const struct herd_vocab *v, const char *text, size_t len, bool add_bos,
			    int32_t **ids, size_t *n_ids);
/* The bytes one token stands for in output text (byte tokens give their byte, "▁" gives a
 * space, control tokens give ""). Points into the vocab; valid while it lives. */
const char *herd_token_text(const struct herd_vocab *v, int32_t id, size_t *len);
/* Ids to text, as llama.cpp detokenizes: concatenated token texts, with the space that the
 * SentencePiece tokenizer prefixed to the text removed again. *text is allocated and
 * NUL-terminated (caller frees). */
enum herd_err herd_detokenize(const struct herd_vocab *v, const int32_t *ids, size_t n_ids, char **text,
			      size_t *len);

/* ---- models ---- */
struct herd_model;

struct herd_model_info {
	const char *arch;         /* general.architecture ("llama") */
	const char *name;         /* general.name, or the file name */
	int32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx_train, n_rot;
	float rope_freq_base, rope_freq_scale, norm_eps;
	uint64_t file_bytes;   /* size of the GGUF file */
	uint64_t weight_bytes; /* bytes of weights read to generate one token */
};

/* Loads a GGUF Llama model (architecture "llama"); all hyperparameters from metadata. An
 * unsupported architecture, tensor type or a missing key or tensor is a clear error. */
enum herd_err herd_model_load(const char *path, struct herd_model **out);
void herd_model_free(struct herd_model *m);
const struct herd_model_info *herd_model_info(const struct herd_model *m);
const struct herd_vocab *herd_model_vocab(const struct herd_model *m);
const struct herd_gguf *herd_model_gguf(const struct herd_model *m);

/* ---- contexts: KV cache, scratch, threads ---- */
struct herd_ctx;

struct herd_ctx_params {
	int32_t n_ctx;     /* tokens of KV cache; 0 = min(model's n_ctx_train, 4096) */
	int32_t n_threads; /* 0 = the machine's cores */
	int32_t n_batch;   /* most tokens evaluated in one pass (prompts are cut into batches) */
};
struct herd_ctx_params herd_ctx_default_params(void);

enum herd_err herd_ctx_new(const struct herd_model *m, const struct herd_ctx_params *p, struct herd_ctx **out);
void herd_ctx_free(struct herd_ctx *c);
/* Forgets the KV cache: the next eval starts at position 0. */
void herd_ctx_reset(struct herd_ctx *c);
int32_t herd_ctx_pos(const struct herd_ctx *c);
int32_t herd_ctx_n_ctx(const struct herd_ctx *c);
/* Runs n tokens through the model at the current position (the prompt as one batch, causal
 * mask), adding them to the KV cache. Afterwards herd_ctx_logits(c, i) gives the logits
 * (n_vocab floats) of token i of this call when all_logits, else only of the last (i = n-1).
 * HERD_ERR_LIMIT when the context would overflow; HERD_ERR_BAD_INPUT for an id out of range. */
enum herd_err herd_ctx_eval(struct herd_ctx *c, const int32_t *tokens, int32_t n, bool all_logits);
const float *herd_ctx_logits(const struct herd_ctx *c, int32_t i);

/* ---- sampling ---- */
struct herd_sampler_params {
	float temperature;    /* 0 = greedy */
	int32_t top_k;        /* 0 = off */
	float top_p;          /* 1 = off */
	float min_p;          /* 0 = off */
	float repeat_penalty; /* 1 = off */
	int32_t repeat_last_n;
	uint64_t seed;
};
struct herd_sampler_params herd_sampler_default_params(void);
struct herd_sampler;
/* NULL with herd_last_error() set when a parameter is out of range. */
struct herd_sampler *herd_sampler_new(const struct herd_sampler_params *p, int32_t n_vocab);
void herd_sampler_free(struct herd_sampler *s);
int32_t herd_sampler_sample(struct herd_sampler *s, const float *logits);
void herd_sampler_accept(struct herd_sampler *s, int32_t id); /* for the repetition penalty */

/* ---- generation ---- */
/* Called with each generated token and the newly completed UTF-8 text (a token that ends
 * inside a character gives len 0; its bytes come with a later token). Non-zero stops. */
typedef int herd_token_cb(void *ud, int32_t id, const char *text, size_t len);

struct herd_generate_params {
	int32_t max_tokens;
	struct herd_sampler_params sampling;
	bool add_bos;       /* prepend BOS to the prompt (default: the vocab's rule) */
	bool stop_at_eos;   /* default true */
	herd_token_cb *on_token;
	void *ud;
};
struct herd_generate_params herd_generate_default_params(const struct herd_model *m);

struct herd_generate_result {
	int32_t *ids; /* generated ids (not the prompt's) */
	size_t n_ids;
	char *text; /* generated text, NUL-terminated */
	size_t text_len;
	int32_t n_prompt;
	double prompt_ms, gen_ms;
	bool stopped_at_eos;
};
/* Resets c, evaluates the prompt, then samples up to max_tokens. Fills *out (free with
 * herd_generate_result_free). */
enum herd_err herd_generate(struct herd_ctx *c, const char *prompt, size_t len,
			    const struct herd_generate_params *p, struct herd_generate_result *out);
void herd_generate_result_free(struct herd_generate_result *r);

/* ---- perplexity (llama.cpp's method: see ../shared/reference/README.md) ---- */
struct herd_perplexity_result {
	double ppl, nll_mean;
	int32_t n_chunks, n_scored, n_tokens;
};
enum herd_err herd_perplexity(struct herd_ctx *c, const char *text, size_t len, int32_t n_chunk_ctx,
			      struct herd_perplexity_result *out);

#endif
