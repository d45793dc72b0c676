/* sockopt.c — the socket options that change WHERE an approved TCP connection's packets go
 * (review F10, F11). One list: seccomp.c refuses setting them under blocked and proxy-only, and the
 * supervisor reads the `readable` ones back on a socket created before the sandbox and refuses to
 * connect it if any is set. Numbers from include/uapi/linux/in6.h, in.h and asm-generic/socket.h
 * (stable ABI); harmless options (TCP_NODELAY, SO_REUSEADDR, IPV6_V6ONLY, …) are not here. */
#include "internal.h"

const struct nono_sockopt nono_rerouting_sockopts[] = {
	{41 /* SOL_IPV6 */, 3, false, "IPV6_2292HOPOPTS"},
	{41, 4, false, "IPV6_2292DSTOPTS"},
	{41, 5, false, "IPV6_2292RTHDR: RFC 2292 routing header"},
	{41, 6, false, "IPV6_2292PKTOPTIONS: sticky options incl. a routing header / next hop"},
	{41, 9, false, "IPV6_NEXTHOP"},
	/* The RFC 3542 forms are where the 2292 ones land too: reading these four covers both. */
	{41, 54, true, "IPV6_HOPOPTS"},
	{41, 55, true, "IPV6_RTHDRDSTOPTS"},
	{41, 57, true, "IPV6_RTHDR: segment routing sends [::1]:P anywhere (F10, unprivileged)"},
	{41, 59, true, "IPV6_DSTOPTS"},
	{0 /* SOL_IP */, 4, true, "IP_OPTIONS: loose/strict source routing (CAP_NET_RAW)"},
	{1 /* SOL_SOCKET */, 25, true, "SO_BINDTODEVICE: 127.0.0.1 sent out of another interface (F11)"},
	{1, 62, false, "SO_BINDTOIFINDEX: same, by index (5.1); read back as SO_BINDTODEVICE"},
};
const size_t nono_rerouting_sockopts_n = N_ELEMENTS(nono_rerouting_sockopts);
