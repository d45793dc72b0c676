/* loop.c — the proxy's event loop: epoll (level-triggered) plus a binary heap of one-shot timers.
 * It knows nothing about HTTP or connections; see loop.h for the contract.
 *
 * Why our own loop rather than libevent: a tunnel's life is a handful of interest changes on two
 * sockets, and libevent pays two epoll_ctl calls (DEL + ADD) for each change of an event's mask
 * (its changelist, which would merge them, is unsafe when a descriptor number is reused). Here a
 * change is one EPOLL_CTL_MOD (none when the interest is unchanged), and a closed io's pending
 * events are dropped from the batch, so owners may free at once. A deferred "less" (change the set
 * only when an unwanted event arrives) was tried: under backpressure the still-readable source then
 * wakes the loop once per cycle for nothing, which cost bulk tunnels more than it saved. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define NP_LOOP_BATCH 256

struct np_loop {
	int ep;
	bool stop;
	int64_t now;
	struct np_timer **heap;
	size_t nheap, cap;
	struct epoll_event evs[NP_LOOP_BATCH];
	int nevs, cur; /* the batch being dispatched and the index of the event in hand */
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int np_loop_new(struct np_loop **out)
{
	struct np_loop *l = calloc(1, sizeof *l);
	if (!l)
		return -ENOMEM;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->ep < 0) {
		int e = -errno;
		free(l);
		return e;
	}
	l->now = mono_ms();
	*out = l;
	return 0;
}

void np_loop_free(struct np_loop *l)
{
	if (!l)
		return;
	close(l->ep);
	free(l->heap);
	free(l);
}

int64_t np_loop_now(const struct np_loop *l)
{
	return l->now;
}

void np_loop_stop(struct np_loop *l)
{
	l->stop = true;
}

/* ---- descriptors ---- */

void np_io_init(struct np_io *io, int fd, np_io_fn fn)
{
	io->fd = fd;
	io->want = io->reg = io->flags = 0;
	io->fn = fn;
}

static int io_ctl(struct np_loop *l, struct np_io *io, uint32_t events)
{
	int op = !events ? EPOLL_CTL_DEL : io->reg ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	struct epoll_event ev = {.events = events | (events ? io->flags : 0), .data.ptr = io};
	if (epoll_ctl(l->ep, op, io->fd, &ev) < 0)
		return -errno;
	io->reg = events;
	return 0;
}

int np_io_want(struct np_loop *l, struct np_io *io, uint32_t events)
{
	io->want = events;
	if (io->fd < 0 || events == io->reg)
		return 0;
	return io_ctl(l, io, events);
}

void np_io_detach(struct np_loop *l, struct np_io *io)
{
	if (io->fd < 0)
		return;
	if (io->reg)
		(void)io_ctl(l, io, 0);
	io->fd = -1;
	io->want = io->reg = 0;
	for (int i = l->cur + 1; i < l->nevs; i++)
		if (l->evs[i].data.ptr == io)
			l->evs[i].data.ptr = NULL;
}

void np_io_close(struct np_loop *l, struct np_io *io)
{
	int fd = io->fd;
	if (fd < 0)
		return;
	/* DEL before close: a descriptor duplicated into a child forked by the host process (between
	 * its fork and exec) would otherwise stay in the epoll set with our pointer. */
	np_io_detach(l, io);
	close(fd);
}

static void dispatch(struct np_io *io, uint32_t got)
{
	uint32_t bits = io->want ? got & (io->want | EPOLLERR | EPOLLHUP) : 0;
	if (bits)
		io->fn(io, bits);
}

/* ---- timers: a binary min-heap on `at` ---- */

static void heap_place(struct np_loop *l, size_t i, struct np_timer *t)
{
	l->heap[i] = t;
	t->slot = i + 1;
}

static void heap_up(struct np_loop *l, size_t i)
{
	struct np_timer *t = l->heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (l->heap[parent]->at <= t->at)
			break;
		heap_place(l, i, l->heap[parent]);
		i = parent;
	}
	heap_place(l, i, t);
}

static void heap_down(struct np_loop *l, size_t i)
{
	struct np_timer *t = l->heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap && l->heap[c + 1]->at < l->heap[c]->at)
			c++;
		if (t->at <= l->heap[c]->at)
			break;
		heap_place(l, i, l->heap[c]);
		i = c;
	}
	heap_place(l, i, t);
}

void np_timer_init(struct np_timer *t, np_timer_fn fn)
{
	t->at = 0;
	t->slot = 0;
	t->fn = fn;
}

void np_timer_cancel(struct np_loop *l, struct np_timer *t)
{
	if (!t->slot)
		return;
	size_t i = t->slot - 1;
	t->slot = 0;
	struct np_timer *last = l->heap[--l->nheap];
	if (last == t)
		return;
	heap_place(l, i, last);
	heap_up(l, i);
	heap_down(l, last->slot - 1);
}

int np_timer_set(struct np_loop *l, struct np_timer *t, int64_t at_ms)
{
	if (t->slot) {
		int64_t old = t->at;
		t->at = at_ms;
		if (at_ms < old)
			heap_up(l, t->slot - 1);
		else
			heap_down(l, t->slot - 1);
		return 0;
	}
	if (l->nheap == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64;
		struct np_timer **n = realloc(l->heap, ncap * sizeof *n);
		if (!n)
			return -ENOMEM;
		l->heap = n;
		l->cap = ncap;
	}
	t->at = at_ms;
	heap_place(l, l->nheap++, t);
	heap_up(l, l->nheap - 1);
	return 0;
}

static void run_timers(struct np_loop *l)
{
	while (l->nheap && l->heap[0]->at <= l->now && !l->stop) {
		struct np_timer *t = l->heap[0];
		np_timer_cancel(l, t);
		t->fn(t);
	}
}

static int next_timeout(const struct np_loop *l)
{
	if (!l->nheap)
		return -1;
	int64_t d = l->heap[0]->at - l->now;
	return d <= 0 ? 0 : d > 60000 ? 60000 : (int)d;
}

int np_loop_run(struct np_loop *l)
{
	l->stop = false;
	while (!l->stop) {
		l->nevs = epoll_wait(l->ep, l->evs, NP_LOOP_BATCH, next_timeout(l));
		l->now = mono_ms();
		if (l->nevs < 0) {
			l->nevs = 0;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (l->cur = 0; l->cur < l->nevs && !l->stop; l->cur++) {
			struct np_io *io = l->evs[l->cur].data.ptr;
			if (io)
				dispatch(io, l->evs[l->cur].events);
		}
		l->nevs = l->cur = 0;
		run_timers(l);
	}
	return 0;
}
