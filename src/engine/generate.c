/* generate — prompt in, tokens out: evaluates the prompt as one pass, then samples and feeds
 * back one token at a time, streaming text through a callback.
 *
 * The one thing to know: the callback sees only complete UTF-8. A token can end inside a
 * character (byte-fallback tokens carry one byte each); its bytes are held back and handed
 * over with the token that completes the character. */
#include <stdlib.h>
#include <string.h>

#include "model_int.h"

struct herd_generate_params herd_generate_default_params(const struct herd_model *m)
{
	return (struct herd_generate_params){
	    .max_tokens = 128,
	    .sampling = herd_sampler_default_params(),
	    .add_bos = m ? herd_vocab_add_bos(m->vocab) : true,
	    .stop_at_eos = true,
	};
}

/* Length of the longest prefix of s[0..n) that does not end inside a UTF-8 character. Bytes
 * that can never become valid (stray continuation bytes, 0xF8..0xFF) do not hold text back. */
static size_t utf8_complete(const unsigned char *s, size_t n)
{
	/* look at most 3 bytes back for the lead byte of an unfinished sequence */
	for (size_t back = 1; back <= 3 && back <= n; back++) {
		unsigned char b = s[n - back];
		if ((b & 0xC0) == 0x80)
			continue; /* continuation: keep looking for its lead */
		size_t need = (b & 0xE0) == 0xC0   ? 2
			      : (b & 0xF0) == 0xE0 ? 3
			      : (b & 0xF8) == 0xF0 ? 4
						   : 1;
		return need > back ? n - back : n;
	}
	return n;
}

enum herd_err herd_generate(struct herd_ctx *c, const char *prompt, size_t len,
			    const struct herd_generate_params *p, struct herd_generate_result *out)
{
	memset(out, 0, sizeof *out);
	const struct herd_model *m = herd_ctx_model(c);
	const int32_t n_vocab = m->info.n_vocab;
	if (p->max_tokens < 0)
		return herd_fail(HERD_ERR_BAD_INPUT, "max_tokens: must be >= 0, got %d",
				 p->max_tokens);
	struct herd_sampler *s = herd_sampler_new(&p->sampling, n_vocab);
	if (!s)
		return HERD_ERR_BAD_INPUT;
	int32_t *ids = NULL;
	size_t n_ids = 0;
	enum herd_err e = herd_tokenize(m->vocab, prompt, len, p->add_bos, &ids, &n_ids);
	if (e)
		goto out;
	if (n_ids == 0) {
		e = herd_fail(HERD_ERR_BAD_INPUT,
			      "prompt: empty, and the model has no BOS token to start from");
		goto out;
	}
	if (n_ids >= (size_t)herd_ctx_n_ctx(c)) {
		e = herd_fail(HERD_ERR_LIMIT,
			      "prompt: %zu tokens do not fit a context of %d (one more is needed "
			      "to generate)",
			      n_ids, herd_ctx_n_ctx(c));
		goto out;
	}
	herd_ctx_reset(c);
	for (size_t i = 0; i < n_ids; i++)
		herd_sampler_accept(s, ids[i]);
	double t0 = herd_now_ms();
	if ((e = herd_ctx_eval(c, ids, (int32_t)n_ids, false)))
		goto out;
	double t1 = herd_now_ms();
	out->n_prompt = (int32_t)n_ids;
	out->prompt_ms = t1 - t0;
	out->ids = herd_xmalloc(((size_t)p->max_tokens + 1) * sizeof *out->ids);

	struct herd_buf text = {0};
	herd_buf_add(&text, "", 0);
	size_t streamed = 0; /* bytes of text already handed to the callback */
	const float *logits = herd_ctx_logits(c, (int32_t)n_ids - 1);
	int32_t eos = herd_vocab_eos(m->vocab);
	for (int32_t k = 0; k < p->max_tokens; k++) {
		int32_t id = herd_sampler_sample(s, logits);
		herd_sampler_accept(s, id);
		out->ids[out->n_ids++] = id;
		bool is_eos = id == eos && eos >= 0;
		size_t tl = 0;
		const char *tt = herd_token_text(m->vocab, id, &tl);
		if (tt && tl)
			herd_buf_add(&text, tt, tl);
		size_t done = utf8_complete((const unsigned char *)text.p, text.len);
		if (p->on_token) {
			int stop = p->on_token(p->ud, id, text.p + streamed, done - streamed);
			streamed = done;
			if (stop)
				break;
		}
		if (is_eos && p->stop_at_eos) {
			out->stopped_at_eos = true;
			break;
		}
		if (k + 1 == p->max_tokens || herd_ctx_pos(c) >= herd_ctx_n_ctx(c))
			break;
		/* cannot fail: the id came from the sampler and the context has room; an error here
		 * would be a bug, and the callback has already run (so no error may be returned) */
		enum herd_err ee = herd_ctx_eval(c, &id, 1, false);
		HERD_ASSERT(ee == HERD_OK);
		logits = herd_ctx_logits(c, 0);
	}
	out->gen_ms = herd_now_ms() - t1;
	out->text = text.p;
	out->text_len = text.len;
out:
	if (e)
		herd_generate_result_free(out);
	free(ids);
	herd_sampler_free(s);
	return e;
}

void herd_generate_result_free(struct herd_generate_result *r)
{
	if (!r)
		return;
	free(r->ids);
	free(r->text);
	memset(r, 0, sizeof *r);
}
