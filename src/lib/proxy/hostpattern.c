/* hostpattern.c — the host-pattern mistakes np_pattern_parse answers with a precise reason instead
 * of "bad host name", and the wildcards it refuses because they would cover whole registries.
 * Library-side, so nono_proxy_config_allow_host gives the CLI, the C API and nono_py the same
 * answer. */
#include "proxy_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

int np_pattern_precheck(const char *text, char *buf, size_t cap, const char **out, const char **why)
{
	*out = text;
	for (const unsigned char *p = (const unsigned char *)text; *p; p++)
		if (*p >= 0x80)
			return (*why = "non-ASCII host name: use punycode (e.g. xn--bcher-kva.example, "
				       "from 'idn2 bücher.example')"), -EINVAL;
	if (strstr(text, "://") || strchr(text, '/') || strchr(text, '@') || strchr(text, '?'))
		return (*why = "give a host, not a URL: e.g. api.example.com or api.example.com:443, "
			       "not https://api.example.com/path"), -EINVAL;
	/* A bare IPv6 literal ("2001:db8::1", "::1"): accepted as "[...]". With a port it would be
	 * ambiguous ("::1:443" is itself an address), so that form must be bracketed. */
	const char *c1 = strchr(text, ':');
	if (text[0] != '[' && c1 && strchr(c1 + 1, ':')) {
		unsigned char a[16];
		char head[64];
		size_t hl = (size_t)(strrchr(text, ':') - text);
		bool ambiguous = hl < sizeof head &&
				 (snprintf(head, sizeof head, "%.*s", (int)hl, text),
				  inet_pton(AF_INET6, head, a) == 1);
		if (ambiguous || inet_pton(AF_INET6, text, a) != 1)
			return (*why = "bracket IPv6 literals, with or without a port: [2001:db8::1] or "
				       "[2001:db8::1]:443"), -EINVAL;
		if ((size_t)snprintf(buf, cap, "[%s]", text) >= cap)
			return (*why = "pattern too long"), -EINVAL;
		*out = buf;
	}
	return 0;
}

/* Suffixes under which unrelated parties register names (a small built-in excerpt of the Public
 * Suffix List; docs/cli.md lists it). Every single-label suffix (a TLD: "*.com", "*.dev") is
 * refused too, without needing a list. */
static const char *const public_suffixes[] = {
	"co.uk", "org.uk", "ac.uk", "gov.uk", "me.uk", "ltd.uk", "plc.uk", "net.uk",
	"com.au", "net.au", "org.au", "edu.au", "gov.au", "co.nz", "org.nz", "net.nz",
	"co.jp", "ne.jp", "or.jp", "ac.jp", "go.jp", "co.kr", "or.kr", "com.cn", "net.cn",
	"org.cn", "com.tw", "com.hk", "com.sg", "co.in", "net.in", "org.in", "com.br",
	"net.br", "org.br", "com.mx", "com.ar", "co.za", "com.tr", "co.il", "com.ua",
	"github.io", "githubusercontent.com", "gitlab.io", "herokuapp.com", "appspot.com",
	"blogspot.com", "netlify.app", "vercel.app", "pages.dev", "workers.dev", "web.app",
	"firebaseapp.com", "azurewebsites.net", "cloudfront.net", "s3.amazonaws.com",
	"compute.amazonaws.com", "elasticbeanstalk.com", "fly.dev", "onrender.com",
	"ngrok.io", "ngrok-free.app", "trycloudflare.com", "duckdns.org", "no-ip.org",
};

bool np_public_suffix(const char *suffix)
{
	if (!strchr(suffix, '.'))
		return true;
	for (size_t i = 0; i < sizeof public_suffixes / sizeof public_suffixes[0]; i++)
		if (!strcmp(suffix, public_suffixes[i]))
			return true;
	return false;
}
