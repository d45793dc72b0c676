/* loop.h — a small epoll event loop that knows no protocol (the shape of redis's ae.c): owners
 * register file descriptors and timers with their own callbacks; the loop only waits and
 * dispatches. Single-threaded: every call except np_loop_new/np_loop_free runs on the loop's
 * thread. */
#ifndef NONO_PROXY_LOOP_H
#define NONO_PROXY_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

#define NP_IN EPOLLIN
#define NP_OUT EPOLLOUT

struct np_loop;
struct np_io;
struct np_timer;

/* `events` is what epoll reported, limited to what the owner wants, plus EPOLLERR/EPOLLHUP. */
typedef void (*np_io_fn)(struct np_io *io, uint32_t events);
typedef void (*np_timer_fn)(struct np_timer *t);

/* One registered descriptor. Embedded in its owner's object (container_of to get back). */
struct np_io {
	int fd;           /* -1: none */
	uint32_t want;    /* NP_IN / NP_OUT the owner wants now */
	uint32_t reg;     /* what epoll has (0: not in the epoll set) */
	uint32_t flags;   /* added to the events when registering (EPOLLEXCLUSIVE for a descriptor
	                     several loops share); such an io only ever wants NP_IN or nothing */
	np_io_fn fn;
};

/* A one-shot timer in the loop's heap (absolute monotonic milliseconds). */
struct np_timer {
	int64_t at;
	size_t slot; /* heap index + 1; 0 = not armed */
	np_timer_fn fn;
};

int np_loop_new(struct np_loop **out);
/* Frees the loop (descriptors are the owners'; call after they are gone). */
void np_loop_free(struct np_loop *l);
/* Run until np_loop_stop. Returns 0, or -errno if epoll_wait failed. */
int np_loop_run(struct np_loop *l);
void np_loop_stop(struct np_loop *l);
/* Monotonic milliseconds, read once per wake-up (cheap to call on hot paths). */
int64_t np_loop_now(const struct np_loop *l);

void np_io_init(struct np_io *io, int fd, np_io_fn fn);
/* Ask for `events` (NP_IN | NP_OUT, 0 = none): one epoll_ctl when the interest changes, none when it
 * does not. Returns 0 or -errno. */
int np_io_want(struct np_loop *l, struct np_io *io, uint32_t events);
/* Take the descriptor out of the epoll set, close it, and drop the events already fetched for this
 * io in the current wake-up: after it the owner may free the io or reuse it for a new descriptor
 * (no stale event can reach either). Every io with a descriptor ends here before its memory goes. */
void np_io_close(struct np_loop *l, struct np_io *io);

/* Like np_io_close for a descriptor this io does not own (shared by several loops): leaves the
 * epoll set, does not close. */
void np_io_detach(struct np_loop *l, struct np_io *io);

void np_timer_init(struct np_timer *t, np_timer_fn fn);
/* Arm (or move) the timer to fire at `at_ms` (np_loop_now clock). Returns 0 or -ENOMEM. */
int np_timer_set(struct np_loop *l, struct np_timer *t, int64_t at_ms);
void np_timer_cancel(struct np_loop *l, struct np_timer *t);
static inline bool np_timer_armed(const struct np_timer *t)
{
	return t->slot != 0;
}

#endif /* NONO_PROXY_LOOP_H */
