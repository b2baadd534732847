/* gguf_write — writes GGUF v3 files: metadata in memory, tensor bytes streamed from a fill
 * callback at save time, so that `herd synth` can write multi-GiB models with little memory. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

static void put_u32(struct herd_buf *b, uint32_t v)
{
	herd_buf_add(b, &v, 4);
}

static void put_u64(struct herd_buf *b, uint64_t v)
{
	herd_buf_add(b, &v, 8);
}

static void put_str(struct herd_buf *b, const char *s, uint64_t len)
{
	put_u64(b, len);
	herd_buf_add(b, s, len);
}

struct wtensor {
	char *name;
	enum herd_type type;
	int n_dims;
	int64_t ne[4];
	uint64_t nbytes, offset;
	herd_gguf_fill_fn *fill;
	void *ud;
};

struct herd_gguf_writer {
	uint64_t alignment;
	struct herd_buf kv; /* serialized metadata pairs */
	int64_t n_kv;
	struct wtensor *t;
	int64_t n_t;
	uint64_t data_bytes;
};

struct herd_gguf_writer *herd_gguf_writer_new(uint64_t alignment)
{
	struct herd_gguf_writer *w = herd_xcalloc(1, sizeof *w);
	w->alignment = alignment ? alignment : 32;
	return w;
}

void herd_gguf_writer_free(struct herd_gguf_writer *w)
{
	if (!w)
		return;
	for (int64_t i = 0; i < w->n_t; i++)
		free(w->t[i].name);
	free(w->t);
	free(w->kv.p);
	free(w);
}

void herd_gguf_writer_raw(struct herd_gguf_writer *w, const char *key, uint32_t vtype, const void *val, size_t len)
{
	put_str(&w->kv, key, strlen(key));
	put_u32(&w->kv, vtype);
	herd_buf_add(&w->kv, val, len);
	w->n_kv++;
}

void herd_gguf_writer_u32(struct herd_gguf_writer *w, const char *key, uint32_t v)
{
	herd_gguf_writer_raw(w, key, HERD_GGUF_UINT32, &v, 4);
}

void herd_gguf_writer_f32(struct herd_gguf_writer *w, const char *key, float v)
{
	herd_gguf_writer_raw(w, key, HERD_GGUF_FLOAT32, &v, 4);
}

void herd_gguf_writer_bool(struct herd_gguf_writer *w, const char *key, bool v)
{
	uint8_t b = v;
	herd_gguf_writer_raw(w, key, HERD_GGUF_BOOL, &b, 1);
}

void herd_gguf_writer_str(struct herd_gguf_writer *w, const char *key, const char *v)
{
	struct herd_buf b = {0};
	put_str(&b, v, strlen(v));
	herd_gguf_writer_raw(w, key, HERD_GGUF_STRING, b.p, b.len);
	free(b.p);
}

/* Size in bytes of one scalar of a GGUF value type (0 for string/array). */
static size_t vsize(enum herd_gguf_vtype t)
{
	switch (t) {
	case HERD_GGUF_UINT8: case HERD_GGUF_INT8: case HERD_GGUF_BOOL: return 1;
	case HERD_GGUF_UINT16: case HERD_GGUF_INT16: return 2;
	case HERD_GGUF_UINT32: case HERD_GGUF_INT32: case HERD_GGUF_FLOAT32: return 4;
	case HERD_GGUF_UINT64: case HERD_GGUF_INT64: case HERD_GGUF_FLOAT64: return 8;
	default: return 0;
	}
}

/* Appends element j (or the scalar, j = -1) of pair i in its own encoding. */
static void put_value(struct herd_buf *b, const struct herd_gguf *g, int64_t i, enum herd_gguf_vtype t, int64_t j)
{
	if (t == HERD_GGUF_STRING) {
		struct herd_gguf_str s = j < 0 ? herd_gguf_kv_str(g, i) : herd_gguf_arr_str(g, i, (uint64_t)j);
		put_str(b, s.ptr, s.len);
		return;
	}
	uint8_t raw[8];
	int64_t iv = 0;
	double fv = 0;
	bool isf = t == HERD_GGUF_FLOAT32 || t == HERD_GGUF_FLOAT64;
	if (isf)
		(void)(j < 0 ? herd_gguf_kv_float(g, i, &fv) : herd_gguf_arr_float(g, i, (uint64_t)j, &fv));
	else
		(void)(j < 0 ? herd_gguf_kv_int(g, i, &iv) : herd_gguf_arr_int(g, i, (uint64_t)j, &iv));
	if (t == HERD_GGUF_FLOAT32) {
		float f = (float)fv;
		memcpy(raw, &f, 4);
	} else if (t == HERD_GGUF_FLOAT64) {
		memcpy(raw, &fv, 8);
	} else {
		memcpy(raw, &iv, 8); /* little-endian: the low bytes come first */
	}
	herd_buf_add(b, raw, vsize(t));
}

void herd_gguf_writer_copy_kv(struct herd_gguf_writer *w, const struct herd_gguf *g, int64_t i)
{
	struct herd_gguf_str key = herd_gguf_kv_key(g, i);
	enum herd_gguf_vtype t = herd_gguf_kv_type(g, i);
	put_str(&w->kv, key.ptr, key.len);
	put_u32(&w->kv, t);
	if (t == HERD_GGUF_ARRAY) {
		enum herd_gguf_vtype at = herd_gguf_arr_type(g, i);
		uint64_t n = herd_gguf_arr_len(g, i);
		put_u32(&w->kv, at);
		put_u64(&w->kv, n);
		for (uint64_t j = 0; j < n; j++)
			put_value(&w->kv, g, i, at, (int64_t)j);
	} else {
		put_value(&w->kv, g, i, t, -1);
	}
	w->n_kv++;
}

void herd_gguf_writer_tensor(struct herd_gguf_writer *w, const char *name, enum herd_type type, int n_dims,
			     const int64_t *ne, herd_gguf_fill_fn *fill, void *ud)
{
	HERD_ASSERT(n_dims >= 1 && n_dims <= 4);
	w->t = herd_xrealloc(w->t, (size_t)(w->n_t + 1) * sizeof *w->t);
	struct wtensor *t = &w->t[w->n_t++];
	*t = (struct wtensor){.name = herd_xstrdup(name), .type = type, .n_dims = n_dims, .fill = fill, .ud = ud};
	int64_t rows = 1;
	for (int d = 0; d < 4; d++) {
		t->ne[d] = d < n_dims ? ne[d] : 1;
		if (d > 0)
			rows *= t->ne[d];
	}
	t->nbytes = (uint64_t)rows * herd_type_row_bytes(type, t->ne[0]);
	t->offset = w->data_bytes;
	w->data_bytes = (w->data_bytes + t->nbytes + w->alignment - 1) / w->alignment * w->alignment;
}

static bool write_all(FILE *f, const void *p, size_t n)
{
	return fwrite(p, 1, n, f) == n;
}

static bool pad(FILE *f, uint64_t pos, uint64_t alignment)
{
	static const uint8_t zeros[64];
	uint64_t n = (alignment - pos % alignment) % alignment;
	while (n) {
		size_t k = n > sizeof zeros ? sizeof zeros : (size_t)n;
		if (!write_all(f, zeros, k))
			return false;
		n -= k;
	}
	return true;
}

enum herd_err herd_gguf_writer_save(struct herd_gguf_writer *w, const char *path)
{
	struct herd_buf h = {0};
	herd_buf_add(&h, "GGUF", 4);
	put_u32(&h, 3);
	put_u64(&h, (uint64_t)w->n_t);
	put_u64(&h, (uint64_t)w->n_kv);
	herd_buf_add(&h, w->kv.p, w->kv.len);
	for (int64_t i = 0; i < w->n_t; i++) {
		const struct wtensor *t = &w->t[i];
		put_str(&h, t->name, strlen(t->name));
		put_u32(&h, (uint32_t)t->n_dims);
		for (int d = 0; d < t->n_dims; d++)
			put_u64(&h, (uint64_t)t->ne[d]);
		put_u32(&h, t->type);
		put_u64(&h, t->offset);
	}
	FILE *f = fopen(path, "wb");
	enum herd_err e = HERD_OK;
	if (!f) {
		e = herd_fail(HERD_ERR_IO, "%s: %s", path, strerror(errno));
		goto out;
	}
	bool ok = write_all(f, h.p, h.len) && pad(f, h.len, w->alignment);
	void *data = NULL;
	uint64_t cap = 0;
	for (int64_t i = 0; ok && i < w->n_t; i++) {
		const struct wtensor *t = &w->t[i];
		if (t->nbytes > cap)
			data = herd_xrealloc(data, cap = t->nbytes);
		memset(data, 0, t->nbytes);
		if (t->fill)
			t->fill(t->ud, i, data, t->nbytes);
		ok = write_all(f, data, t->nbytes) && pad(f, t->nbytes, w->alignment);
	}
	free(data);
	if (fclose(f) != 0 || !ok)
		e = herd_fail(HERD_ERR_IO, "%s: write failed: %s", path, strerror(errno));
out:
	free(h.p);
	return e;
}
