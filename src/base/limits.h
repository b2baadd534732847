/* limits — every size and count limit of herd, with the reason beside it.
 * Input beyond a limit is refused with HERD_ERR_LIMIT / a clear message, never truncated. */
#ifndef HERD_LIMITS_H
#define HERD_LIMITS_H

/* ---- proto: jobs, fragments, requests ---- */
#define HERD_MAX_FRAGMENTS 16384              /* one job's fan-out: 6 per slot for ~2,700 slots (dynamic sizing); overlap copies stay <= 8 MiB */
#define HERD_MAX_INPUT_BYTES (64u << 20)      /* one job's text: 64 MiB, held in memory twice at most */
#define HERD_MAX_ARRAY_ITEMS 100000           /* items of an array job */
#define HERD_MAX_JSON_DEPTH 64                /* real requests nest 3-4 deep; bounds recursion */
#define HERD_MAX_REQUEST_BYTES (80u << 20)    /* HTTP body: the input limit plus JSON overhead */
#define HERD_MAX_TOKENS 32768                 /* max_tokens per fragment */
#define HERD_MAX_CONTEXT_OVERLAP (1u << 20)   /* bytes of context on each side of a fragment */
#define HERD_MAX_PROMPT_TEMPLATE_BYTES (64u << 10) /* a template is a few lines, copied to every fragment */

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
#define HERD_HTTP_MAX_CONNECTIONS 1024        /* one thread each; a coordinator holds ~64-256, clients add some */
#define HERD_HTTP_THREAD_STACK_BYTES (512u << 10) /* per connection thread: handlers call into the engine,
                                                     whose big buffers are on the heap; 1024 x 512 KiB of address space */
#define HERD_HTTP_IDLE_TIMEOUT_S 600          /* a keep-alive connection idle this long is closed */
#define HERD_SSE_HEARTBEAT_MS 15000           /* idle streams send a comment: dead clients are noticed within ~2 of these */
#define HERD_HTTP_SHUTDOWN_DRAIN_MS 2000     /* at shutdown, open SSE streams get this long to end cleanly */
#define HERD_SSE_MAX_QUEUED_BYTES (16u << 20) /* events waiting for a slow client; beyond it the producer is told */
#define HERD_SSE_MAX_EVENT_BYTES (HERD_MAX_REQUEST_BYTES) /* one received event: a whole job result fits */
#define HERD_HTTP_CONNECT_TIMEOUT_MS 5000     /* a live peer on a LAN answers a SYN in milliseconds */
#define HERD_HTTP_DEFAULT_TIMEOUT_MS 30000    /* blocking JSON calls (PING, NODE_INFO); jobs pass their own */

/* ---- node: jobs, peers, OpenAI API ---- */
#define HERD_NODE_KEEP_JOBS 256               /* finished jobs kept for GET /v1/jobs/{id}: a few KiB each */
#define HERD_NODE_KEEP_JOBS_MS (10 * 60 * 1000) /* and for at most 10 minutes */
#define HERD_NODE_MAX_PEERS 256               /* --peer URLs */
#define HERD_NODE_PEER_INFO_TIMEOUT_MS 2000   /* NODE_INFO of a --peer: a live peer answers in ms */
#define HERD_NODE_PEER_RETRY_MS 5000          /* a peer that was down is asked again after this */
#define HERD_NODE_FRAGMENT_TIMEOUT_MS (30 * 60 * 1000) /* one fragment on a peer: max_tokens of a big model on a slow CPU */
#define HERD_NODE_JOB_ERROR_BYTES 16384    /* a failed job's error names every attempt of every fragment */
#define HERD_MAX_CHAT_MESSAGES 1024           /* messages of one chat completion */
#define HERD_NODE_MAX_MODELS 8                /* -m models per node (a capability record lists 8) */

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
#define HERD_DISCOVERY_VERIFY_TIMEOUT_MS 2000 /* NODE_INFO check of a discovered peer: a live peer answers in ms */
#define HERD_DISCOVERY_RECHECK_MS 60000       /* a verified peer is checked again this often (it may have been replaced) */
#define HERD_DISCOVERY_RETRY_MS 5000          /* a peer that failed the check is tried again after this */
#define HERD_DISCOVERY_HASH_CHUNK (1u << 20)  /* bytes read at a time while hashing a model file */

/* ---- swarm: scheduler ---- */
#define HERD_SCHED_MAX_ID 128                 /* peer / job id bytes: a hex ed25519 key or host:port fits */
#define HERD_SCHED_MAX_ATTEMPTS 16            /* per fragment; past a few, more attempts only delay the error */
#define HERD_SCHED_MAX_JOBS 4096              /* jobs scheduled at once on one coordinator */
#define HERD_SCHED_MAX_JOB_FRAGMENTS (1u << 20) /* per job: ~100 bytes each, bounds memory at ~100 MiB */
#define HERD_SCHED_FRAGMENTS_PER_SLOT 6       /* dynamic sizing: fast peers pull more, the tail stays short */
#define HERD_SCHED_MIN_FRAGMENT_TOKENS 256    /* dynamic sizing: smaller is not worth a round trip + overlap */
#define HERD_SIZING_SAMPLE_BYTES (1u << 20) /* dynamic sizing: tokens counted in the first MiB, scaled (~4 MB/s) */

#endif
