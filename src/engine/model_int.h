/* model_int — what model.c, forward.c and generate.c share: the loaded model's tensors.
 * Everything points into the GGUF mapping except the norm vectors of files that store them in
 * a type other than F32 (converted once at load; a few KiB). */
#ifndef HERD_MODEL_INT_H
#define HERD_MODEL_INT_H

#include "engine_int.h"

struct herd_layer {
	const float *attn_norm, *ffn_norm;	/* (n_embd) */
	const struct herd_tensor *wq, *wk, *wv; /* (n_embd -> n_embd), (n_embd -> kv_dim) x2 */
	const struct herd_tensor *wo;		/* (n_embd -> n_embd) */
	const struct herd_tensor *gate, *up;	/* (n_embd -> n_ff) */
	const struct herd_tensor *down;		/* (n_ff -> n_embd) */
};

struct herd_model {
	struct herd_gguf *g;
	struct herd_vocab *vocab;
	struct herd_model_info info;
	char *arch, *name;
	int32_t head_dim, kv_dim;	    /* n_embd / n_head, n_head_kv * head_dim */
	const struct herd_tensor *tok_embd; /* (n_embd, n_vocab): ne[0] = n_embd */
	const struct herd_tensor *output;   /* (n_embd -> n_vocab); tok_embd when tied */
	const float *output_norm;	    /* (n_embd) */
	struct herd_layer *layers;	    /* (n_layer) */
	float *norm_copies;		    /* owned: every norm, as floats */
	struct herd_tensor *packed;	    /* owned: the packed matrices' descriptions */
	void *pack_buf;			    /* owned mapping: their data, pack_bytes long */
	size_t pack_bytes;
};

/* The model a context runs (forward.c). */
const struct herd_model *herd_ctx_model(const struct herd_ctx *c);

#endif
