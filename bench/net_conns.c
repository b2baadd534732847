/* net_conns — how many connections the HTTP server holds at once.
 *
 * Usage: bench_net_conns [N=256] [WAIT_MS=10000]
 * N requests go out at once through the multi client; the handler blocks until all N are
 * inside it (or WAIT_MS passes), so the number inside at the same moment is the number of
 * connections held simultaneously. Prints the numbers; exit 1 when fewer than N were held. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "net.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int inside, max_inside, target, done, ok;
static double wait_ms, t_all_in = -1, t0;

static void h_block(struct herd_http_req *req, struct herd_http_resp *resp, void *ud)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += (time_t)(wait_ms / 1000);
	pthread_mutex_lock(&mu);
	inside++;
	if (inside > max_inside)
		max_inside = inside;
	if (inside == target && t_all_in < 0)
		t_all_in = herd_now_ms() - t0;
	pthread_cond_broadcast(&cv);
	while (max_inside < target && pthread_cond_timedwait(&cv, &mu, &deadline) == 0)
		;
	inside--;
	pthread_mutex_unlock(&mu);
	herd_http_resp_text(resp, 200, NULL, "ok");
}

static void on_done(const struct herd_http_result *res, void *ud)
{
	pthread_mutex_lock(&mu);
	done++;
	if (res->err == HERD_OK && res->status == 200)
		ok++;
	else if (done - ok <= 3)
		fprintf(stderr, "request failed: %s (status %ld)\n", res->error, res->status);
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

int main(int argc, char **argv)
{
	target = argc > 1 ? atoi(argv[1]) : 256;
	wait_ms = argc > 2 ? atof(argv[2]) : 10000;
	if (target < 1 || target > 100000 || wait_ms <= 0) {
		fprintf(stderr, "usage: %s [N=256 (1..100000)] [WAIT_MS=10000 (> 0)]\n", argv[0]);
		return 2;
	}
	const struct herd_http_route routes[] = {{"GET", "/block", false, h_block, NULL}};
	struct herd_http_server_params p = herd_http_server_default_params();
	p.routes = routes;
	p.n_routes = 1;
	if ((unsigned)target > p.max_connections)
		p.max_connections = (unsigned)target + 16;
	struct herd_http_server *srv;
	if (herd_http_server_new(&p, &srv) != HERD_OK) {
		fprintf(stderr, "server: %s\n", herd_last_error());
		return 1;
	}
	struct herd_http_multi *m;
	if (herd_http_multi_new(&m) != HERD_OK) {
		fprintf(stderr, "client: %s\n", herd_last_error());
		return 1;
	}
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%u/block", herd_http_server_port(srv));
	t0 = herd_now_ms();
	for (int i = 0; i < target; i++) {
		struct herd_http_request q = {
		    .url = url, .timeout_ms = (long)wait_ms + 10000, .on_done = on_done};
		if (herd_http_multi_submit(m, &q, NULL) != HERD_OK) {
			fprintf(stderr, "submit: %s\n", herd_last_error());
			return 1;
		}
	}
	pthread_mutex_lock(&mu);
	while (done < target)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	double total = herd_now_ms() - t0;
	herd_http_multi_free(m);
	herd_http_server_free(srv);
	printf("connections requested   %d\n", target);
	printf("held simultaneously     %d\n", max_inside);
	printf("all inside after        %.1f ms\n", t_all_in);
	printf("answered ok             %d\n", ok);
	printf("total                   %.1f ms\n", total);
	return max_inside == target && ok == target ? 0 : 1;
}
