/* sampler — turns logits into the next token: repetition penalty, then top-k, top-p, min-p,
 * temperature and a draw (llama.cpp's order), or the argmax when the temperature is 0.
 *
 * The one thing to know: results depend only on the logits, the parameters and the seed.
 * The PRNG is herd's own (xoshiro256** seeded through splitmix64) and the sort breaks ties by
 * token id, so the same seed gives the same tokens on every machine and libc. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "limits.h"

struct cand {
	int32_t id;
	float logit;
};

struct herd_sampler {
	struct herd_sampler_params p;
	int32_t n_vocab;
	struct cand *cands; /* (n_vocab) scratch, reused for every token */
	float *probs;	    /* (n_vocab) */
	uint32_t *counts;   /* (n_vocab) occurrences of each id in the recent window */
	int32_t *recent;    /* ring of the last repeat_last_n accepted ids */
	int32_t n_recent, recent_head;
	uint64_t rng[4];
};

struct herd_sampler_params herd_sampler_default_params(void)
{
	return (struct herd_sampler_params){
	    .temperature = 0.8f,
	    .top_k = 40,
	    .top_p = 0.95f,
	    .min_p = 0.05f,
	    .repeat_penalty = 1.0f,
	    .repeat_last_n = 64,
	    .seed = 0,
	};
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t next_u64(uint64_t s[4])
{
	uint64_t r = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

/* Uniform in [0, 1) with 53 random bits. */
static double next_unit(uint64_t s[4])
{
	return (double)(next_u64(s) >> 11) * 0x1.0p-53;
}

struct herd_sampler *herd_sampler_new(const struct herd_sampler_params *p, int32_t n_vocab)
{
	if (n_vocab < 1 || n_vocab > HERD_MAX_VOCAB) {
		herd_fail(HERD_ERR_BAD_INPUT, "n_vocab: must be 1..%d, got %d", HERD_MAX_VOCAB,
			  n_vocab);
		return NULL;
	}
	if (!(p->temperature >= 0.0f) || !isfinite(p->temperature)) {
		herd_fail(HERD_ERR_BAD_INPUT, "temperature: must be a finite number >= 0, got %g",
			  (double)p->temperature);
		return NULL;
	}
	if (p->top_k < 0) {
		herd_fail(HERD_ERR_BAD_INPUT, "top_k: must be >= 0 (0 = off), got %d", p->top_k);
		return NULL;
	}
	if (!(p->top_p > 0.0f && p->top_p <= 1.0f)) {
		herd_fail(HERD_ERR_BAD_INPUT, "top_p: must be in (0, 1] (1 = off), got %g",
			  (double)p->top_p);
		return NULL;
	}
	if (!(p->min_p >= 0.0f && p->min_p <= 1.0f)) {
		herd_fail(HERD_ERR_BAD_INPUT, "min_p: must be in [0, 1] (0 = off), got %g",
			  (double)p->min_p);
		return NULL;
	}
	if (!(p->repeat_penalty > 0.0f) || !isfinite(p->repeat_penalty)) {
		herd_fail(HERD_ERR_BAD_INPUT,
			  "repeat_penalty: must be a finite number > 0 (1 = off), got %g",
			  (double)p->repeat_penalty);
		return NULL;
	}
	if (p->repeat_last_n < 0 || p->repeat_last_n > HERD_MAX_REPEAT_LAST_N) {
		herd_fail(HERD_ERR_BAD_INPUT, "repeat_last_n: must be 0..%d, got %d",
			  HERD_MAX_REPEAT_LAST_N, p->repeat_last_n);
		return NULL;
	}
	struct herd_sampler *s = herd_xcalloc(1, sizeof *s);
	s->p = *p;
	s->n_vocab = n_vocab;
	s->cands = herd_xmalloc((size_t)n_vocab * sizeof *s->cands);
	s->probs = herd_xmalloc((size_t)n_vocab * sizeof *s->probs);
	s->counts = herd_xcalloc((size_t)n_vocab, sizeof *s->counts);
	s->recent =
	    herd_xmalloc((size_t)(p->repeat_last_n > 0 ? p->repeat_last_n : 1) * sizeof *s->recent);
	uint64_t x = p->seed;
	for (int i = 0; i < 4; i++)
		s->rng[i] = splitmix64(&x);
	return s;
}

void herd_sampler_free(struct herd_sampler *s)
{
	if (!s)
		return;
	free(s->cands);
	free(s->probs);
	free(s->counts);
	free(s->recent);
	free(s);
}

void herd_sampler_accept(struct herd_sampler *s, int32_t id)
{
	int32_t cap = s->p.repeat_last_n;
	if (cap == 0 || id < 0 || id >= s->n_vocab)
		return;
	if (s->n_recent == cap) {
		s->counts[s->recent[s->recent_head]]--;
		s->recent[s->recent_head] = id;
		s->recent_head = (s->recent_head + 1) % cap;
	} else {
		s->recent[(s->recent_head + s->n_recent) % cap] = id;
		s->n_recent++;
	}
	s->counts[id]++;
}

/* a ranks before b: larger logit, then smaller id (a total order: results never depend on
 * the order the candidates came in). */
static inline bool better(const struct cand *a, const struct cand *b)
{
	return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

/* Min-heap on `better` (the root is the worst candidate). */
static void sift_down(struct cand *h, int32_t n, int32_t i)
{
	for (;;) {
		int32_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && better(&h[m], &h[l]))
			m = l;
		if (r < n && better(&h[m], &h[r]))
			m = r;
		if (m == i)
			return;
		struct cand t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

/* Moves the k best of c[0..n) to c[0..k), sorted best first. O(n log k), in place. */
static void select_top(struct cand *c, int32_t n, int32_t k)
{
	for (int32_t i = k / 2 - 1; i >= 0; i--)
		sift_down(c, k, i);
	for (int32_t i = k; i < n; i++) {
		if (better(&c[i], &c[0])) {
			c[0] = c[i];
			sift_down(c, k, 0);
		}
	}
	/* heapsort: the worst goes to the end each time, which leaves the best first */
	for (int32_t end = k - 1; end > 0; end--) {
		struct cand t = c[0];
		c[0] = c[end];
		c[end] = t;
		sift_down(c, end, 0);
	}
}

/* probs[i] = softmax of the logits of c[0..n). */
static void softmax(const struct cand *c, int32_t n, float *probs)
{
	float mx = c[0].logit;
	for (int32_t i = 1; i < n; i++)
		if (c[i].logit > mx)
			mx = c[i].logit;
	double sum = 0;
	for (int32_t i = 0; i < n; i++) {
		probs[i] = expf(c[i].logit - mx);
		sum += probs[i];
	}
	for (int32_t i = 0; i < n; i++)
		probs[i] = (float)(probs[i] / sum);
}

int32_t herd_sampler_sample(struct herd_sampler *s, const float *logits)
{
	const struct herd_sampler_params *p = &s->p;
	struct cand *c = s->cands;
	int32_t n = s->n_vocab;
	for (int32_t i = 0; i < n; i++)
		c[i] = (struct cand){i, logits[i]};

	/* repetition penalty (llama.cpp's rule: shrink positive logits, grow negative ones),
	 * once per distinct id in the window */
	if (p->repeat_penalty != 1.0f && s->n_recent > 0) {
		for (int32_t j = 0; j < s->n_recent; j++) {
			int32_t id = s->recent[j];
			if (c[id].logit == logits[id]) { /* not yet penalised this call */
				float l = logits[id];
				float pen = l <= 0 ? l * p->repeat_penalty : l / p->repeat_penalty;
				/* a penalty of exactly 1 or a logit of 0 leaves it equal: harmless
				 */
				c[id].logit = pen;
			}
		}
	}

	if (p->temperature <= 0.0f) {
		int32_t best = 0;
		for (int32_t i = 1; i < n; i++)
			if (better(&c[i], &c[best]))
				best = i;
		return c[best].id;
	}

	bool sorted = false;
	if (p->top_k > 0 && p->top_k < n) {
		select_top(c, n, p->top_k);
		n = p->top_k;
		sorted = true;
	}
	if (p->top_p < 1.0f && n > 1) {
		if (!sorted) {
			select_top(c, n, n);
			sorted = true;
		}
		softmax(c, n, s->probs);
		double cum = 0;
		int32_t keep = n;
		for (int32_t i = 0; i < n; i++) {
			cum += s->probs[i];
			if (cum >= p->top_p) {
				keep = i + 1;
				break;
			}
		}
		n = keep;
	}
	if (p->min_p > 0.0f && n > 1) {
		/* p_i >= min_p * p_max  <=>  logit_i >= logit_max + log(min_p) */
		float mx = c[0].logit;
		for (int32_t i = 1; i < n; i++)
			if (c[i].logit > mx)
				mx = c[i].logit;
		float thr = mx + logf(p->min_p);
		int32_t m = 0;
		for (int32_t i = 0; i < n; i++)
			if (c[i].logit >= thr)
				c[m++] = c[i];
		n = m; /* the max itself always passes */
	}
	for (int32_t i = 0; i < n; i++)
		c[i].logit /= p->temperature;
	softmax(c, n, s->probs);
	double r = next_unit(s->rng), cum = 0;
	for (int32_t i = 0; i < n; i++) {
		cum += s->probs[i];
		if (r < cum)
			return c[i].id;
	}
	return c[n - 1].id; /* r fell in the rounding gap above the last cumulative sum */
}
