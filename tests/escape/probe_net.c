/* probe_net.c — one network escape attempt, chosen by argv[1]:
 *   tcp IP PORT            plain TCP connect (proxy variables are irrelevant to a raw connect)
 *   udp_sendto IP PORT     UDP datagram with sendto(addr)
 *   udp_sendmsg IP PORT    UDP datagram with sendmsg(msg_name)
 *   udp_sendmmsg IP PORT   UDP datagram with sendmmsg(msg_name)
 *   fastopen IP PORT       TCP Fast Open: sendto(MSG_FASTOPEN, addr) connects and sends
 *   raw IP                 raw ICMP socket, one echo request
 *   icmp IP                unprivileged ICMP ("ping") socket, one echo request
 *   packet                 AF_PACKET socket
 *   unix PATH              connect to a pathname unix socket
 *   abstract NAME          connect to an abstract unix socket
 *   udp6_sendto IP6 PORT   UDP over IPv6
 *   stdin_sendmsg IP PORT  sendmsg(msg_name) on an inherited socket (fd 0)
 *   rthdr                  IPv6 TCP socket + setsockopt(IPV6_RTHDR, segment routing header whose
 *                          first hop is 2001:db8::9): the kernel would send a connection "to
 *                          [::1]" to that hop (review F10). Nothing is connected or sent.
 *   bindtodevice           TCP socket + SO_BINDTODEVICE "lo" (review F11: an approved loopback
 *                          connect leaving through another interface). Nothing is sent.
 *   ipoptions              TCP socket + IP_OPTIONS loose source route (needs CAP_NET_RAW).
 *   listen [6]             TCP socket + listen() without bind: the kernel auto-binds an
 *                          ephemeral port on every address (0.0.0.0 / ::), a listener anyone
 *                          can reach. ESCAPED when listen succeeds; the probe then connects to
 *                          the port itself and accepts, to show the listener is live.
 *   bind_any [6]           bind(0.0.0.0:0 / [::]:0) + listen.
 * For the setsockopt probes, ESCAPED means the kernel accepted the option.
 */
#include "probe.h"

#include <linux/if_ether.h>
#include <stdbool.h>
#include <netinet/ip_icmp.h>
#include <sys/un.h>

#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif

static int tcp(const char *ip, int port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0)
		return probe_denied("socket", errno);
	struct sockaddr_in a = probe_v4(ip, port);
	if (connect(s, (struct sockaddr *)&a, sizeof a) < 0)
		return probe_denied("connect", errno);
	char b[64];
	snprintf(b, sizeof b, "connected %s:%d", ip, port);
	/* Metadata-style servers answer a line: show we got bytes back. */
	char r[64] = "";
	struct timeval tv = {2, 0};
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	(void)!write(s, "GET\n", 4);
	ssize_t n = read(s, r, sizeof r - 1);
	if (n > 0) {
		r[n] = '\0';
		r[strcspn(r, "\r\n")] = '\0';
		snprintf(b, sizeof b, "connected %s:%d read '%.20s'", ip, port, r);
	}
	return probe_escaped(b);
}

static int udp(const char *how, const char *ip, int port)
{
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0)
		return probe_denied("socket", errno);
	struct sockaddr_in a = probe_v4(ip, port);
	char msg[] = "nono-escape-udp";
	struct iovec iov = {msg, sizeof msg - 1};
	struct msghdr mh = {.msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;
	if (strcmp(how, "udp_sendto") == 0) {
		n = sendto(s, msg, sizeof msg - 1, 0, (struct sockaddr *)&a, sizeof a);
	} else if (strcmp(how, "udp_sendmsg") == 0) {
		n = sendmsg(s, &mh, 0);
	} else {
		struct mmsghdr mm = {.msg_hdr = mh};
		n = sendmmsg(s, &mm, 1, 0);
	}
	if (n < 0)
		return probe_denied(how, errno);
	return probe_escaped("datagram sent");
}

static int udp6(const char *ip, int port)
{
	int s = socket(AF_INET6, SOCK_DGRAM, 0);
	if (s < 0)
		return probe_denied("socket", errno);
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((unsigned short)port)};
	inet_pton(AF_INET6, ip, &a.sin6_addr);
	if (sendto(s, "x", 1, 0, (struct sockaddr *)&a, sizeof a) < 0)
		return probe_denied("sendto", errno);
	return probe_escaped("datagram sent");
}

static int fastopen(const char *ip, int port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0)
		return probe_denied("socket", errno);
	struct sockaddr_in a = probe_v4(ip, port);
	/* Success means the kernel connected to `a` and queued the data: the target was reached
	 * (the test's listener may already have closed it again). */
	ssize_t n = sendto(s, "GET\n", 4, MSG_FASTOPEN, (struct sockaddr *)&a, sizeof a);
	if (n < 0)
		return probe_denied("sendto(MSG_FASTOPEN)", errno);
	return probe_escaped("fast-open connected and sent");
}

static unsigned short cksum(const void *p, size_t n)
{
	const unsigned short *w = p;
	unsigned long sum = 0;
	for (; n > 1; n -= 2)
		sum += *w++;
	if (n)
		sum += *(const unsigned char *)w;
	sum = (sum >> 16) + (sum & 0xffff);
	sum += sum >> 16;
	return (unsigned short)~sum;
}

static int icmp(int type, const char *ip)
{
	int s = socket(AF_INET, type, IPPROTO_ICMP);
	if (s < 0)
		return probe_denied("socket", errno);
	struct icmphdr h = {.type = ICMP_ECHO};
	h.un.echo.id = htons(0x4e4f);
	h.un.echo.sequence = htons(1);
	h.checksum = cksum(&h, sizeof h);
	struct sockaddr_in a = probe_v4(ip, 0);
	if (sendto(s, &h, sizeof h, 0, (struct sockaddr *)&a, sizeof a) < 0)
		return probe_denied("sendto", errno);
	return probe_escaped("echo request sent");
}

static int packet(void)
{
	int s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	if (s < 0)
		return probe_denied("socket", errno);
	return probe_escaped("packet socket open");
}

static int unix_connect(const char *name, int abstract)
{
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	if (s < 0)
		return probe_denied("socket", errno);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	socklen_t l = sizeof a;
	if (abstract) {
		snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "%s", name);
		l = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
	} else {
		snprintf(a.sun_path, sizeof a.sun_path, "%s", name);
	}
	if (connect(s, (struct sockaddr *)&a, l) < 0)
		return probe_denied("connect", errno);
	return probe_escaped("unix connected");
}

static int stdin_sendmsg(const char *ip, int port)
{
	struct sockaddr_in a = probe_v4(ip, port);
	char msg[] = "nono-escape-stdin";
	struct iovec iov = {msg, sizeof msg - 1};
	struct msghdr mh = {.msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &iov, .msg_iovlen = 1};
	if (sendmsg(0, &mh, 0) < 0)
		return probe_denied("sendmsg(stdin)", errno);
	return probe_escaped("datagram sent through the inherited socket");
}

/* One setsockopt on a fresh TCP socket of `family`. */
static int sockopt(int family, int level, int opt, const void *v, socklen_t len, const char *what)
{
	int s = socket(family, SOCK_STREAM, 0);
	if (s < 0)
		return probe_denied("socket", errno);
	if (setsockopt(s, level, opt, v, len) < 0)
		return probe_denied(what, errno);
	close(s);
	return probe_escaped(what);
}

static int rthdr(void)
{
	/* type 4 (SRH), 2 segments: segments[1] = 2001:db8::9 is the first hop, segments[0] = ::1 the
	 * "destination" a supervisor would check. */
	static const unsigned char srh[8 + 32] = {
		0, 4, 4, 1, 1, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9,
	};
	return sockopt(AF_INET6, IPPROTO_IPV6, 57 /* IPV6_RTHDR */, srh, sizeof srh,
		       "setsockopt-IPV6_RTHDR");
}

static int ipoptions(void)
{
	/* NOP, LSRR len 7 ptr 4 via 192.0.2.9, EOL */
	static const unsigned char opt[8] = {1, 131, 7, 4, 192, 0, 2, 9};
	return sockopt(AF_INET, IPPROTO_IP, IP_OPTIONS, opt, sizeof opt, "setsockopt-IP_OPTIONS");
}

/* listen on `s` (bound or not); ESCAPED with the port, and whether a connection was accepted. */
static int listen_on(int s, int family)
{
	if (listen(s, 4) < 0)
		return probe_denied("listen", errno);
	struct sockaddr_storage me;
	socklen_t ml = sizeof me;
	if (getsockname(s, (struct sockaddr *)&me, &ml) < 0)
		return probe_denied("getsockname", errno);
	int port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&me)->sin6_port
					    : ((struct sockaddr_in *)&me)->sin_port);
	char b[96];
	int c = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in lo = probe_v4("127.0.0.1", port);
	if (c >= 0 && connect(c, (struct sockaddr *)&lo, sizeof lo) == 0 && accept(s, NULL, NULL) >= 0)
		snprintf(b, sizeof b, "listening on port %d, accepted a connection", port);
	else
		snprintf(b, sizeof b, "listening on port %d (every address: reachable from outside)",
			 port);
	return probe_escaped(b);
}

static int listen_probe(int family, bool bind_any)
{
	int s = socket(family, SOCK_STREAM, 0);
	if (s < 0)
		return probe_denied("socket", errno);
	if (bind_any) {
		struct sockaddr_storage a;
		memset(&a, 0, sizeof a);
		a.ss_family = (sa_family_t)family; /* any address, port 0 */
		socklen_t len = family == AF_INET6 ? sizeof(struct sockaddr_in6)
						   : sizeof(struct sockaddr_in);
		if (bind(s, (struct sockaddr *)&a, len) < 0)
			return probe_denied("bind", errno);
	}
	return listen_on(s, family);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	const char *m = argv[1];
	const char *a1 = argc > 2 ? argv[2] : "127.0.0.1";
	int port = argc > 3 ? atoi(argv[3]) : 0;
	if (strcmp(m, "tcp") == 0)
		return tcp(a1, port);
	if (strncmp(m, "udp_", 4) == 0)
		return udp(m, a1, port);
	if (strcmp(m, "udp6_sendto") == 0)
		return udp6(a1, port);
	if (strcmp(m, "fastopen") == 0)
		return fastopen(a1, port);
	if (strcmp(m, "raw") == 0)
		return icmp(SOCK_RAW, a1);
	if (strcmp(m, "icmp") == 0)
		return icmp(SOCK_DGRAM, a1);
	if (strcmp(m, "packet") == 0)
		return packet();
	if (strcmp(m, "stdin_sendmsg") == 0)
		return stdin_sendmsg(a1, port);
	if (strcmp(m, "unix") == 0)
		return unix_connect(a1, 0);
	if (strcmp(m, "abstract") == 0)
		return unix_connect(a1, 1);
	if (strcmp(m, "rthdr") == 0)
		return rthdr();
	if (strcmp(m, "bindtodevice") == 0)
		return sockopt(AF_INET, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3,
			       "setsockopt-SO_BINDTODEVICE");
	if (strcmp(m, "ipoptions") == 0)
		return ipoptions();
	if (strcmp(m, "listen") == 0 || strcmp(m, "bind_any") == 0)
		return listen_probe(argc > 2 && !strcmp(argv[2], "6") ? AF_INET6 : AF_INET,
				    strcmp(m, "bind_any") == 0);
	fprintf(stderr, "unknown probe %s\n", m);
	return 2;
}
