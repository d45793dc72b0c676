/* probe_abi.c — escape attempts through other syscall doors, chosen by argv[1] (IP PORT follow):
 *   iouring IP PORT      IORING_OP_CONNECT through a raw io_uring (no liburing)
 *   socketcall IP PORT   i386 `int $0x80` socketcall(SYS_SOCKET) + socketcall(SYS_CONNECT)
 *   i386 IP PORT         i386 `int $0x80` socket (359) + connect (362)
 *   x32 IP PORT          socket + connect with __X32_SYSCALL_BIT set
 */
#include "probe.h"

#include <linux/io_uring.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#define __NR_io_uring_enter 426
#endif

static int iouring(const char *ip, int port)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	int fd = (int)syscall(__NR_io_uring_setup, 4, &p);
	if (fd < 0)
		return probe_denied("io_uring_setup", errno);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0)
		return probe_denied("socket", errno);
	size_t sq_sz = p.sq_off.array + p.sq_entries * sizeof(uint32_t);
	size_t cq_sz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	char *sq = mmap(NULL, sq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
			IORING_OFF_SQ_RING);
	char *cq = mmap(NULL, cq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
			IORING_OFF_CQ_RING);
	struct io_uring_sqe *sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe),
					 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
					 IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED)
		return probe_denied("mmap", errno);
	static struct sockaddr_in a;
	a = probe_v4(ip, port);
	struct io_uring_sqe *e = &sqes[0];
	memset(e, 0, sizeof *e);
	e->opcode = IORING_OP_CONNECT;
	e->fd = s;
	e->addr = (uint64_t)(uintptr_t)&a;
	e->off = sizeof a;
	uint32_t *tail = (uint32_t *)(sq + p.sq_off.tail);
	uint32_t mask = *(uint32_t *)(sq + p.sq_off.ring_mask);
	uint32_t *array = (uint32_t *)(sq + p.sq_off.array);
	array[*tail & mask] = 0;
	__atomic_store_n(tail, *tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		return probe_denied("io_uring_enter", errno);
	uint32_t head = __atomic_load_n((uint32_t *)(cq + p.cq_off.head), __ATOMIC_ACQUIRE);
	struct io_uring_cqe *cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	int res = cqes[head & *(uint32_t *)(cq + p.cq_off.ring_mask)].res;
	if (res < 0)
		return probe_denied("IORING_OP_CONNECT", -res);
	return probe_escaped("io_uring connected");
}

/* i386 syscalls from a 64-bit process: `int $0x80` takes i386 numbers and 32-bit registers, so
 * pointers must live below 4 GiB (MAP_32BIT). */
static long int80(long nr, long b, long c, long d)
{
	long ret;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(b), "c"(c), "d"(d) : "memory");
	return ret;
}

static int i386(const char *how, const char *ip, int port)
{
	char *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT,
			 -1, 0);
	if (low == MAP_FAILED)
		return probe_denied("mmap(MAP_32BIT)", errno);
	struct sockaddr_in *a = (struct sockaddr_in *)low;
	*a = probe_v4(ip, port);
	uint32_t *args = (uint32_t *)(low + 64);
	long fd, r;
	if (strcmp(how, "socketcall") == 0) {
		args[0] = AF_INET;
		args[1] = SOCK_STREAM;
		args[2] = 0;
		fd = int80(102, 1 /* SYS_SOCKET */, (long)(uintptr_t)args, 0);
		if (fd < 0)
			return probe_denied("socketcall(SYS_SOCKET)", (int)-fd);
		args[0] = (uint32_t)fd;
		args[1] = (uint32_t)(uintptr_t)a;
		args[2] = sizeof *a;
		r = int80(102, 3 /* SYS_CONNECT */, (long)(uintptr_t)args, 0);
		if (r < 0)
			return probe_denied("socketcall(SYS_CONNECT)", (int)-r);
	} else {
		fd = int80(359 /* i386 socket */, AF_INET, SOCK_STREAM, 0);
		if (fd < 0)
			return probe_denied("i386 socket", (int)-fd);
		r = int80(362 /* i386 connect */, fd, (long)(uintptr_t)a, sizeof *a);
		if (r < 0)
			return probe_denied("i386 connect", (int)-r);
	}
	return probe_escaped("i386 connected");
}

static int x32(const char *ip, int port)
{
	const long X32 = 0x40000000L; /* __X32_SYSCALL_BIT */
	long fd = syscall(X32 | SYS_socket, AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return probe_denied("x32 socket", errno);
	struct sockaddr_in a = probe_v4(ip, port);
	if (syscall(X32 | SYS_connect, fd, &a, sizeof a) < 0)
		return probe_denied("x32 connect", errno);
	return probe_escaped("x32 connected");
}

int main(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	const char *ip = argv[2];
	int port = atoi(argv[3]);
	if (strcmp(argv[1], "iouring") == 0)
		return iouring(ip, port);
	if (strcmp(argv[1], "socketcall") == 0 || strcmp(argv[1], "i386") == 0)
		return i386(argv[1], ip, port);
	if (strcmp(argv[1], "x32") == 0)
		return x32(ip, port);
	return 2;
}
