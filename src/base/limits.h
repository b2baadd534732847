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

/* ---- swarm: scheduler ---- */
#define HERD_SCHED_MAX_ID 128                 /* peer / job id bytes: a hex ed25519 key or host:port fits */
#define HERD_SCHED_MAX_ATTEMPTS 16            /* per fragment; past a few, more attempts only delay the error */
#define HERD_SCHED_MAX_JOBS 4096              /* jobs scheduled at once on one coordinator */
#define HERD_SCHED_MAX_JOB_FRAGMENTS (1u << 20) /* per job: ~100 bytes each, bounds memory at ~100 MiB */
#define HERD_SCHED_FRAGMENTS_PER_SLOT 3       /* dynamic sizing: fast peers pull more, the tail stays short */
#define HERD_SCHED_MIN_FRAGMENT_TOKENS 256    /* dynamic sizing: smaller is not worth a round trip + overlap */

#endif
