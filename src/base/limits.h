/* limits — every size and count limit of herd, with the reason beside it.
 * Input beyond a limit is refused with HERD_ERR_LIMIT / a clear message, never truncated. */
#ifndef HERD_LIMITS_H
#define HERD_LIMITS_H

/* ---- proto: jobs, fragments, requests ---- */
#define HERD_MAX_FRAGMENTS 4096               /* one job's fan-out; more only adds overhead */
#define HERD_MAX_INPUT_BYTES (64u << 20)      /* one job's text: 64 MiB, held in memory twice at most */
#define HERD_MAX_ARRAY_ITEMS 100000           /* items of an array job */
#define HERD_MAX_JSON_DEPTH 64                /* real requests nest 3-4 deep; bounds recursion */
#define HERD_MAX_REQUEST_BYTES (80u << 20)    /* HTTP body: the input limit plus JSON overhead */
#define HERD_MAX_TOKENS 32768                 /* max_tokens per fragment */
#define HERD_MAX_CONTEXT_OVERLAP (1u << 20)   /* bytes of context on each side of a fragment */

/* ---- engine: model files ---- */
#define HERD_GGUF_MAX_STRING (1u << 24)       /* 16 MiB: the largest real value is a chat template or merges entry */
#define HERD_GGUF_MAX_KV 65536                /* metadata pairs; real files have < 100 */
#define HERD_GGUF_MAX_TENSORS 65536           /* real files have < 2000 */
#define HERD_GGUF_MAX_ARRAY (1u << 24)        /* array elements: vocabularies are < 300k */
#define HERD_GGUF_MAX_DIMS 4                  /* ggml tensors have at most 4 dimensions */
#define HERD_MAX_VOCAB 1000000                /* tokens in a vocabulary */
#define HERD_MAX_CONTEXT 131072               /* tokens of context a node will allocate */
#define HERD_TOKEN_MAX_BYTES 65536            /* one vocabulary entry; real ones are < 1 KiB */
#define HERD_TOKENIZE_MAX_BYTES (256u << 20)  /* one text to tokenize: the working copy is 3x, indexes are 32-bit */

/* ---- engine: model, forward pass, sampling ---- */
#define HERD_MAX_THREADS 512                  /* per context; beyond the core count threads only contend */
#define HERD_MAX_BATCH 4096                   /* tokens per forward pass: scratch grows linearly with it */
#define HERD_MAX_LAYERS 1024                  /* llama.*.block_count; the largest Llamas have 126 */
#define HERD_MAX_EMBD 65536                   /* llama.embedding_length; the largest Llamas use 16384 */
#define HERD_MAX_FF (1 << 20)                 /* llama.feed_forward_length; the largest use 53248 */
#define HERD_MAX_HEADS 1024                   /* attention heads (and KV heads) */
#define HERD_MAX_REPEAT_LAST_N 65536          /* tokens the repetition penalty looks back over */

/* ---- net / node ---- */
#define HERD_MAX_PEERS 4096                   /* entries in the peer table */
#define HERD_MAX_SLOTS 256                    /* --slots */

#endif
