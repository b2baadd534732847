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

/* ---- net / node ---- */
#define HERD_MAX_PEERS 4096                   /* entries in the peer table */
#define HERD_MAX_SLOTS 256                    /* --slots */

/* ---- swarm: discovery (capability records from the DHT are input from strangers) ---- */
#define HERD_CAP_MAX_BYTES 4096               /* one signed record; real ones are ~600 bytes, DHT values must stay < 64 KiB */
#define HERD_CAP_MAX_MODELS 8                 /* models listed in a record: 8 full entries still fit 4 KiB */
#define HERD_CAP_MAX_TENSOR_TYPES 6           /* tensor types listed per model (q4_0, q8_0, f16, f32 ...) */
#define HERD_CAP_MAX_TYPE_NAME 15             /* "q4_k", "iq2_xxs": the longest ggml type name is 7 */
#define HERD_CAP_MAX_NAME 64                  /* model names (the -m NAME) */
#define HERD_CAP_MAX_SWARM 64                 /* swarm names: part of the DHT key string */
#define HERD_CAP_MAX_ADDRESS 128              /* "host:port"; DNS names can be 253 but fit the record budget */
#define HERD_CAP_MAX_VERSION 32               /* herd version string */
#define HERD_CAP_MAX_CORES 65536              /* cpu_cores: larger is a lie */
#define HERD_CAP_MAX_MEMORY_MB (1ll << 32)    /* memory_mb: 4 PiB, larger is a lie */
#define HERD_CAP_MAX_FUTURE_MS 60000          /* a record stamped further ahead of our clock is refused (skew or a lie) */
#define HERD_CAP_MAX_TOKENS_PER_S 1e7         /* measured speed: larger is a lie */
#define HERD_DHT_MAX_BOOTSTRAP 64             /* --bootstrap addresses */

#endif
