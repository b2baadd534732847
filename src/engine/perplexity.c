/* perplexity — llama.cpp's method, so that numbers compare with its llama-perplexity:
 * tokenize the whole text once with BOS; cut it into floor(n / n_chunk_ctx) chunks of
 * n_chunk_ctx tokens (the rest is dropped); in each chunk put BOS in place of the first token,
 * evaluate the chunk in one pass from position 0 and score only its second half: the logits
 * at positions n_chunk_ctx/2 .. n_chunk_ctx-2 predict the next token. PPL = exp(mean NLL).
 *
 * The one thing to know: the first half of each chunk is context only, so every scored token
 * sees at least n_chunk_ctx/2 tokens before it. */
#include <math.h>
#include <stdlib.h>

#include "model_int.h"

/* -log softmax(logits)[target], in double. */
static double nll(const float *logits, int32_t n, int32_t target)
{
	float mx = logits[0];
	for (int32_t i = 1; i < n; i++)
		if (logits[i] > mx)
			mx = logits[i];
	double sum = 0;
	for (int32_t i = 0; i < n; i++)
		sum += exp((double)logits[i] - mx);
	return -((double)logits[target] - mx - log(sum));
}

enum herd_err herd_perplexity(struct herd_ctx *c, const char *text, size_t len, int32_t n_chunk_ctx,
			      struct herd_perplexity_result *out)
{
	const struct herd_model *m = herd_ctx_model(c);
	const int32_t V = m->info.n_vocab;
	if (n_chunk_ctx < 4 || n_chunk_ctx % 2 != 0)
		return herd_fail(HERD_ERR_BAD_INPUT, "n_ctx: must be an even number >= 4, got %d",
				 n_chunk_ctx);
	if (n_chunk_ctx > herd_ctx_n_ctx(c))
		return herd_fail(HERD_ERR_LIMIT, "n_ctx: %d is larger than the context's %d tokens",
				 n_chunk_ctx, herd_ctx_n_ctx(c));
	int32_t bos = herd_vocab_bos(m->vocab);
	if (bos < 0)
		return herd_fail(HERD_ERR_UNSUPPORTED,
				 "perplexity: the model's vocabulary has no BOS token");
	int32_t *ids = NULL;
	size_t n_ids = 0;
	enum herd_err e = herd_tokenize(m->vocab, text, len, true, &ids, &n_ids);
	if (e)
		return e;
	int32_t n_chunks = (int32_t)(n_ids / (size_t)n_chunk_ctx);
	if (n_chunks < 1) {
		free(ids);
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "text: %zu tokens, fewer than one chunk of n_ctx %d", n_ids,
				 n_chunk_ctx);
	}
	const int32_t first = n_chunk_ctx / 2;
	double sum = 0;
	int32_t scored = 0;
	for (int32_t k = 0; k < n_chunks; k++) {
		int32_t *chunk = ids + (size_t)k * (size_t)n_chunk_ctx;
		int32_t saved = chunk[0];
		chunk[0] = bos;
		herd_ctx_reset(c);
		e = herd_ctx_eval(c, chunk, n_chunk_ctx, true);
		chunk[0] = saved;
		if (e)
			goto out;
		for (int32_t j = first; j < n_chunk_ctx - 1; j++) {
			sum += nll(herd_ctx_logits(c, j), V, chunk[j + 1]);
			scored++;
		}
	}
	out->n_chunks = n_chunks;
	out->n_scored = scored;
	out->n_tokens = (int32_t)n_ids;
	out->nll_mean = sum / scored;
	out->ppl = exp(out->nll_mean);
out:
	free(ids);
	return e;
}
